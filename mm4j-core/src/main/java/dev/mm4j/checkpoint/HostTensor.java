package dev.mm4j.checkpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.Supplier;

/**
 * A tensor in host memory as a checkpoint stores it: a dtype, a shape, and its elements.
 *
 * <p>{@link #data()} always gives contiguous row-major little-endian elements of {@link #dataType()}: float32
 * for floating sources (float16/bfloat16/float64 are converted), int64 for integer and bool sources. For the
 * common case (a contiguous float32 or int64 tensor in a memory-mapped file) it is a read-only view of the
 * file without a copy; otherwise each call converts / gathers into a fresh heap buffer, so callers that load
 * tensor by tensor never hold two copies of a whole checkpoint.
 */
public final class HostTensor {
    private final DType dtype;
    private final long[] shape;
    private final long numel;
    /** Gives the raw little-endian source storage (position 0, limit = storage bytes). */
    private final Supplier<ByteBuffer> storage;
    private final long offset;
    private final long[] stride;

    /**
     * A tensor over a source storage, with element offset and strides (all already validated to stay inside
     * the storage). Package-private: readers build these.
     */
    HostTensor(DType dtype, long[] shape, Supplier<ByteBuffer> storage, long offset, long[] stride) {
        this.dtype = dtype;
        this.shape = shape.clone();
        this.numel = numelOf(shape);
        this.storage = storage;
        this.offset = offset;
        this.stride = stride.clone();
    }

    /** A contiguous float32 tensor holding a copy of {@code data}. */
    public static HostTensor ofFloats(float[] data, long... shape) {
        checkCount(data.length, shape);
        ByteBuffer b = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(data);
        return contiguous(DType.FLOAT32, b, shape);
    }

    /** A contiguous int64 tensor holding a copy of {@code data}. */
    public static HostTensor ofLongs(long[] data, long... shape) {
        checkCount(data.length, shape);
        ByteBuffer b = ByteBuffer.allocate(data.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(data);
        return contiguous(DType.INT64, b, shape);
    }

    static HostTensor contiguous(DType dtype, ByteBuffer raw, long[] shape) {
        ByteBuffer ro = raw.asReadOnlyBuffer();
        return new HostTensor(dtype, shape, () -> ro.duplicate().order(ByteOrder.LITTLE_ENDIAN), 0,
                contiguousStrides(shape));
    }

    private static void checkCount(int length, long[] shape) {
        if (numelOf(shape) != length)
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has " + numelOf(shape)
                    + " elements, data has " + length);
    }

    /** The dtype stored in the file (e.g. float16), not the loaded type. */
    public DType dtype() { return dtype; }

    /** The type of {@link #data()}: FLOAT32 for floating sources, INT64 otherwise. */
    public DType dataType() { return dtype.loadedAs(); }

    public boolean isFloating() { return dtype.isFloating(); }

    public long[] shape() { return shape.clone(); }

    public long numel() { return numel; }

    /** Whether {@link #data()} is a view of the source without conversion or copying. */
    public boolean isZeroCopy() { return dtype == dtype.loadedAs() && isContiguous(); }

    /** Contiguous row-major little-endian elements of {@link #dataType()}; position 0. */
    public ByteBuffer data() {
        ByteBuffer src = storage.get();
        int outSize = dataType().size();
        if (isZeroCopy()) {
            return src.slice(Math.toIntExact(offset * outSize), Math.toIntExact(numel * outSize))
                    .asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        long bytes = numel * outSize;
        if (bytes > Integer.MAX_VALUE - 16)
            throw new IllegalStateException("tensor of " + numel + " elements does not fit one buffer");
        ByteBuffer out = ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (numel == 0) return out;
        src = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int rank = shape.length;
        int es = dtype.size();
        long[] idx = new long[rank];
        long inner = rank == 0 ? 1 : shape[rank - 1];
        long innerStride = rank == 0 ? 0 : stride[rank - 1];
        long base = offset;
        int pos = 0;
        while (true) {
            long e = base;
            for (long i = 0; i < inner; i++, e += innerStride) {
                int at = (int) (e * es);
                switch (dtype) {
                    case FLOAT32 -> out.putFloat(pos, src.getFloat(at));
                    case FLOAT16 -> out.putFloat(pos, halfToFloat(src.getShort(at)));
                    case BFLOAT16 -> out.putFloat(pos, Float.intBitsToFloat((src.getShort(at) & 0xffff) << 16));
                    case FLOAT64 -> out.putFloat(pos, (float) src.getDouble(at));
                    case INT64 -> out.putLong(pos, src.getLong(at));
                    case INT32 -> out.putLong(pos, src.getInt(at));
                    case INT16 -> out.putLong(pos, src.getShort(at));
                    case INT8 -> out.putLong(pos, src.get(at));
                    case UINT8 -> out.putLong(pos, src.get(at) & 0xff);
                    case BOOL -> out.putLong(pos, src.get(at) != 0 ? 1 : 0);
                    case UINT16 -> out.putLong(pos, src.getShort(at) & 0xffffL);
                    case UINT32 -> out.putLong(pos, src.getInt(at) & 0xffffffffL);
                    case UINT64 -> out.putLong(pos, uint64(src.getLong(at)));
                    case FLOAT8_E4M3FN -> out.putFloat(pos, e4m3fnToFloat(src.get(at)));
                    case FLOAT8_E5M2 -> out.putFloat(pos, halfToFloat((short) (src.get(at) << 8)));
                }
                pos += outSize;
            }
            // advance the outer multi-index (all dims but the last), odometer style
            int d = rank - 2;
            while (d >= 0) {
                idx[d]++;
                base += stride[d];
                if (idx[d] < shape[d]) break;
                base -= stride[d] * shape[d];
                idx[d] = 0;
                d--;
            }
            if (d < 0) break;
        }
        return out;
    }

    /** The elements as floats (integer sources are converted). */
    public float[] toFloatArray() {
        ByteBuffer b = data();
        float[] f = new float[Math.toIntExact(numel)];
        if (isFloating()) {
            b.asFloatBuffer().get(f);
        } else {
            for (int i = 0; i < f.length; i++) f[i] = b.getLong(i * 8);
        }
        return f;
    }

    /** The elements as longs; only for integer and bool sources. */
    public long[] toLongArray() {
        if (isFloating()) throw new IllegalStateException("tensor is " + dtype + ", not an integer type");
        long[] l = new long[Math.toIntExact(numel)];
        data().asLongBuffer().get(l);
        return l;
    }

    private boolean isContiguous() {
        long expect = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && stride[d] != expect) return false;
            expect *= shape[d];
        }
        return true;
    }

    static long[] contiguousStrides(long[] shape) {
        long[] s = new long[shape.length];
        long acc = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            s[d] = acc;
            acc *= shape[d];
        }
        return s;
    }

    static long numelOf(long[] shape) {
        long n = 1;
        for (long s : shape) {
            if (s < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n = Math.multiplyExact(n, s);
        }
        return n;
    }

    /** IEEE 754 half to float (Float.float16ToFloat needs Java 20). */
    static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0x1f) return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13)); // inf / nan
        if (exp == 0) {
            if (mant == 0) return Float.intBitsToFloat(sign);
            float v = mant * 0x1p-24f; // subnormal: mant * 2^-24
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /** float8_e4m3fn to float: bias 7, subnormals at exponent 0, no infinities, NaN at S.1111.111. */
    static float e4m3fnToFloat(byte b) {
        int bits = b & 0xff;
        int exp = (bits >>> 3) & 0xf;
        int mant = bits & 0x7;
        float v = exp == 0xf && mant == 0x7 ? Float.NaN
                : exp == 0 ? mant * 0x1p-9f // subnormal: mant/8 * 2^-6
                : Float.intBitsToFloat(((exp + 120) << 23) | (mant << 20));
        return (bits & 0x80) != 0 ? -v : v;
    }

    /** A uint64 value as the int64 a tensor loads as; 2^63 and above do not fit. */
    private static long uint64(long v) {
        if (v < 0) throw new IllegalStateException("uint64 value " + Long.toUnsignedString(v) + " does not fit the int64 it loads as");
        return v;
    }

    @Override
    public String toString() {
        return "HostTensor[" + dtype + " " + Arrays.toString(shape) + "]";
    }
}
