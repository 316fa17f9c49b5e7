package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import java.util.function.Supplier;

/**
 * A block's intermediate arrays freed as soon as the block returns, not when the step that owns them
 * ends. The step ({@code flava.ModelStep}) stays the owner of what is kept; this only lets go of what no
 * one will read again.
 *
 * <p>Why this matters: a DJL array is a handle on a libtorch tensor, and the tensor lives while any
 * handle or the autograd graph refers to it. Autograd keeps exactly what the backward pass needs (and
 * frees it as the backward pass goes); a handle kept until the end of the step keeps everything else, and
 * keeps the saved tensors alive after the backward pass has used them. Dropping a layer's handles when it
 * returns is what PyTorch does when its Python references go out of scope: inference then holds one
 * layer's intermediates at a time, and training's backward pass frees activations while it allocates
 * gradients.
 */
public final class Transients {
    private Transients() {}

    /**
     * Runs {@code block}; every array it creates on this thread is closed when it returns, except its result,
     * which goes to the enclosing scope (the step's), as if the block had made it there: an op's result
     * belongs to its first operand's manager, which may be the model's, so only a scope frees it in time.
     */
    public static NDArray keepResult(Supplier<NDArray> block) {
        NDArray result;
        try (NDScope scope = new NDScope()) {
            result = block.get();
            NDScope.unregister(result);
        }
        NDScope.register(result);
        return result;
    }
}
