package dev.mm4j.checkpoint;

import ai.djl.ndarray.NDArray;
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

    /**
     * DJL arrays as host tensors for the writers (in map order): floating arrays as FLOAT32 (converted if
     * needed), integer and boolean arrays as INT64. Each array is copied to the host only when its data is
     * asked for, so a writer holds one tensor's bytes at a time.
     */
    public static Map<String, HostTensor> hostTensors(Map<String, NDArray> arrays) {
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : arrays.entrySet()) {
            NDArray a = e.getValue();
            DataType dt = a.getDataType();
            boolean floating = dt.isFloating();
            if (!floating && !dt.isInteger() && dt != DataType.BOOLEAN) {
                throw new IllegalArgumentException("array '" + e.getKey() + "' has unsupported type " + dt);
            }
            long[] shape = a.getShape().getShape();
            DataType want = floating ? DataType.FLOAT32 : DataType.INT64;
            tensors.put(e.getKey(), new HostTensor(floating ? DType.FLOAT32 : DType.INT64, shape,
                    () -> hostBytes(a, want), 0, HostTensor.contiguousStrides(shape)));
        }
        return tensors;
    }

    /** One host copy of {@code a} as little-endian {@code want} elements. */
    private static ByteBuffer hostBytes(NDArray a, DataType want) {
        NDArray c = a.getDataType() == want ? a : a.toType(want, false);
        try {
            ByteBuffer b = c.toByteBuffer(); // a copy into a heap buffer, native order, contiguous
            if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
                return b.order(ByteOrder.LITTLE_ENDIAN);
            }
            ByteBuffer le = ByteBuffer.allocate(b.remaining()).order(ByteOrder.LITTLE_ENDIAN);
            if (want == DataType.FLOAT32) {
                le.asFloatBuffer().put(b.asFloatBuffer());
            } else {
                le.asLongBuffer().put(b.asLongBuffer());
            }
            return le;
        } finally {
            if (c != a) {
                c.close();
            }
        }
    }

    /** Writes a buffer's remaining bytes (heap or direct/mapped) to a stream in chunks of at most 1 MiB. */
    static void writeBuffer(java.io.OutputStream out, ByteBuffer data) throws java.io.IOException {
        if (data.hasArray() && !data.isReadOnly()) {
            out.write(data.array(), data.arrayOffset() + data.position(), data.remaining());
            return;
        }
        byte[] chunk = new byte[(int) Math.min(1 << 20, Math.max(1, data.remaining()))];
        ByteBuffer d = data.duplicate();
        while (d.hasRemaining()) {
            int k = Math.min(chunk.length, d.remaining());
            d.get(chunk, 0, k);
            out.write(chunk, 0, k);
        }
    }
}
