package dev.mm4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/** Turns host tensors into DJL arrays. */
public final class DjlTensors {
    private DjlTensors() {}

    /**
     * A new NDArray on {@code manager}'s device holding {@code t}: FLOAT32 for floating sources, INT64 otherwise.
     * The data is copied into a fresh native buffer (never handed over as a view of a memory-mapped file,
     * which libtorch would otherwise use in place), then to the device if that is not the CPU.
     */
    public static NDArray toNDArray(HostTensor t, NDManager manager) {
        ByteBuffer src = t.data();
        ByteBuffer copy = ByteBuffer.allocateDirect(src.remaining()).order(ByteOrder.nativeOrder());
        if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
            copy.put(src.duplicate());
        } else if (t.isFloating()) {
            copy.asFloatBuffer().put(src.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer());
        } else {
            copy.asLongBuffer().put(src.duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer());
        }
        copy.rewind();
        DataType dt = t.isFloating() ? DataType.FLOAT32 : DataType.INT64;
        return manager.create(copy, new Shape(t.shape()), dt);
    }

    /** All tensors of {@code sd} as arrays on {@code manager}, in order, named. */
    public static Map<String, NDArray> toNDArrays(StateDict sd, NDManager manager) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : sd.asMap().entrySet()) {
            NDArray a = toNDArray(e.getValue(), manager);
            a.setName(e.getKey());
            out.put(e.getKey(), a);
        }
        return out;
    }

    /** Same as {@link #toNDArrays} but as an NDList (names set on the arrays). */
    public static NDList toNDList(StateDict sd, NDManager manager) {
        return new NDList(toNDArrays(sd, manager).values());
    }
}
