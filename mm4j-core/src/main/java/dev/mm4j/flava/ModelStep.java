package dev.mm4j.flava;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.jni.JniUtils;
import dev.mm4j.data.Batch;
import dev.mm4j.util.NativeHeap;
import java.nio.ByteBuffer;

/**
 * The native memory of one model step: a training step, an evaluation batch, a served batch or a
 * benchmark repetition. Open one per step with try-with-resources; it turns host data into model inputs
 * in libtorch's own memory, and every NDArray made on this thread while it is open — inputs,
 * activations, gradients' temporaries, logits — belongs to it and is freed when it closes. This is the
 * one owner of per-step memory in the project; nothing else opens scopes around model calls.
 *
 * <p>Why inputs are copied into libtorch's memory (on the CPU written straight into a fresh tensor): DJL's {@code manager.create(javaArray)} wraps a Java direct buffer that only
 * the Java wrapper keeps alive, while autograd may keep the tensor for the backward pass (gather keeps the
 * labels, the patch convolution the image); after a GC the backward pass would read freed memory. A copy
 * made by libtorch lives as long as any tensor refers to it. For the same reason, model code makes its
 * scalars with libtorch ({@code manager.full(new Shape(), v, dtype)}), never from a Java {@code Number}.
 *
 * <p>Not thread-safe: a step lives on the thread that opened it (DJL's scopes are per thread).
 */
public final class ModelStep implements AutoCloseable {

    /** One batch of model inputs: images (B,3,H,W) float, token ids (B,L) int64, labels (B) int64 or null. */
    public record Inputs(NDArray image, NDArray text, NDArray labels) {
        public long size() {
            return image.getShape().get(0);
        }
    }

    private final NDManager manager;
    private final NDScope scope;

    static {
        NativeHeap.keepFreedMemory(); // each step allocates what the previous one freed: reuse it, no page faults
    }

    private ModelStep(NDManager parent) {
        this.manager = parent.newSubManager();
        this.scope = new NDScope();
    }

    /** Opens a step on {@code parent}'s device (usually the model's manager). */
    public static ModelStep open(NDManager parent) {
        return new ModelStep(parent);
    }

    /** This step's manager: arrays made on it live until the step closes. */
    public NDManager manager() {
        return manager;
    }

    /** A host batch as model inputs with labels. */
    public Inputs inputs(Batch b) {
        return new Inputs(images(b.images(), b.size(), b.height(), b.width()), tokens(b.inputIds(), b.size(), b.seqLen()),
                labels(b.labels()));
    }

    /** A host batch as model inputs without labels (inference). */
    public Inputs unlabelled(Batch b) {
        return new Inputs(images(b.images(), b.size(), b.height(), b.width()), tokens(b.inputIds(), b.size(), b.seqLen()),
                null);
    }

    /** {@code n} images, NCHW floats with 3 channels of {@code height x width}. */
    public NDArray images(float[] pixels, int n, int height, int width) {
        Shape shape = new Shape(n, 3, height, width);
        if (onCpu()) {
            NDArray t = manager.create(shape, DataType.FLOAT32);
            memory(t).asFloatBuffer().put(pixels);
            return t;
        }
        return nativeCopy(manager.create(pixels, shape));
    }

    /** {@code n} rows of {@code length} token ids, row-major, 0 = padding. */
    public NDArray tokens(long[] ids, int n, int length) {
        return int64(ids, new Shape(n, length));
    }

    /** Class ids, one per sample. */
    public NDArray labels(long[] labels) {
        return int64(labels, new Shape(labels.length));
    }

    private NDArray int64(long[] values, Shape shape) {
        if (onCpu()) {
            NDArray t = manager.create(shape, DataType.INT64);
            memory(t).asLongBuffer().put(values);
            return t;
        }
        return nativeCopy(manager.create(values, shape));
    }

    private boolean onCpu() {
        return manager.getDevice().equals(Device.cpu()) && manager instanceof PtNDManager;
    }

    /**
     * The memory of a fresh contiguous CPU tensor made by libtorch, seen directly (no copy): host data is
     * written into it once, and no Java direct buffer is made. (DJL's {@code create(javaArray)} allocates
     * a direct buffer per call, off the Java heap and freed only by a garbage collection, which a training
     * loop that allocates little on the heap seldom triggers: the process grew by the inputs of every step.)
     */
    private static ByteBuffer memory(NDArray fresh) {
        return JniUtils.getByteBuffer((PtNDArray) fresh, true);
    }

    /**
     * Hands {@code array} over to {@code owner}, so that it outlives this step (e.g. a cached image-encoder
     * output). The caller becomes responsible for it through {@code owner}.
     */
    public static NDArray keep(NDArray array, NDManager owner) {
        NDScope.unregister(array);
        array.attach(owner);
        return array;
    }

    private static NDArray nativeCopy(NDArray javaBacked) {
        NDArray copy = javaBacked.duplicate();
        javaBacked.close();
        return copy;
    }

    @Override
    public void close() {
        try {
            scope.close();
        } finally {
            manager.close();
        }
    }
}
