package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The bfloat16 weight copies of one recorded bf16 layer run, held in buffers that every layer shares instead of in
 * copies of its own. Autograd keeps the bfloat16 copy of each weight for the input's gradient: a layer that keeps its
 * activations would otherwise hold its own copies (2 bytes per weight, 14 MB for a full-size FLAVA layer, 0.42 GB for
 * the model) from its forward pass until its backward pass. Here each copy is written into a buffer of the
 * {@link Pool} (one per position in the layer and weight shape), through an alias of the buffer that autograd tracks
 * apart ({@code ops.prim.data}: its own version counter), so that autograd keeps the buffer and the next layer may
 * overwrite it; {@link #refill} writes this run's copies back (the same bfloat16 values: the same numbers) just
 * before the backward pass goes through the run. This is how FSDP frees and restores the weights that autograd
 * keeps.
 *
 * <p>Only valid where every recorded run's backward pass goes through its own graph alone, right after
 * {@link #refill}: {@link ActivationCheckpointing#forwardKept}'s layers (each layer's graph apart, a leaf between
 * layers), back-propagated one by one by {@link ActivationCheckpointing#backward(java.util.function.Consumer)}.
 */
final class SharedBf16Copies {

    private static final ThreadLocal<SharedBf16Copies> CURRENT = new ThreadLocal<>();

    /** The buffer that held {@code weight}'s copy in this run. */
    private record Copy(TorchOps ops, NDArray weight, NDArray buffer) {}

    private final Pool pool;
    private final List<Copy> copies = new ArrayList<>();

    SharedBf16Copies(Pool pool) {
        this.pool = pool;
    }

    /** The run whose bf16 calls on this thread write their weight copies into shared buffers now, or null. */
    static SharedBf16Copies current() {
        return CURRENT.get();
    }

    /** Runs {@code body} (one layer's forward pass) with its bf16 calls' weight copies in this run's shared buffers. */
    NDArray during(Supplier<NDArray> body) {
        SharedBf16Copies outer = CURRENT.get();
        CURRENT.set(this);
        try {
            return body.get();
        } finally {
            CURRENT.set(outer);
        }
    }

    /** The buffer for the next weight matrix {@code w} that this run's calls read (on {@code ops}' device). */
    NDArray next(TorchOps ops, NDArray w) {
        NDArray buffer = pool.buffer(ops, copies.size(), w);
        copies.add(new Copy(ops, w, buffer));
        return buffer;
    }

    /** Writes this run's copies back into the buffers (untracked, see TorchOps#refillBf16): call before its backward pass. */
    void refill() {
        for (Copy c : copies) {
            c.ops().refillBf16(c.weight(), c.buffer());
        }
    }

    /**
     * The shared buffers of one model's layers, by op library (device), position of the weight among a layer's and
     * its shape: a full-size FLAVA layer's six (14 MB) serve all its encoders. Freed when the pool is no longer
     * reachable (its model is gone).
     */
    static final class Pool {
        private static final Cleaner CLEANER = Cleaner.create();

        private record Key(TorchOps ops, int position, Shape shape) {}

        private final Map<Key, NDArray> buffers;

        Pool() {
            Map<Key, NDArray> made = new HashMap<>();
            this.buffers = made;
            CLEANER.register(this, () -> {
                synchronized (made) {
                    made.values().forEach(NDArray::close);
                    made.clear();
                }
            });
        }

        private NDArray buffer(TorchOps ops, int position, NDArray w) {
            synchronized (buffers) {
                return buffers.computeIfAbsent(new Key(ops, position, w.getShape()), k -> ops.newBf16Buffer(w));
            }
        }
    }
}
