package dev.mm4j.checkpoint;

/**
 * Element types that checkpoints store. Floating types load as float32, the others as int64. The unsigned 16-64 bit
 * and 8-bit float types (PyTorch 2.3+, {@code _rebuild_tensor_v3} on an untyped storage; safetensors' U16, F8_E4M3,
 * ...) have no typed storage class.
 */
public enum DType {
    FLOAT32("float32", 4, true, "FloatStorage", "F32"),
    FLOAT16("float16", 2, true, "HalfStorage", "F16"),
    BFLOAT16("bfloat16", 2, true, "BFloat16Storage", "BF16"),
    FLOAT64("float64", 8, true, "DoubleStorage", "F64"),
    INT64("int64", 8, false, "LongStorage", "I64"),
    INT32("int32", 4, false, "IntStorage", "I32"),
    INT16("int16", 2, false, "ShortStorage", "I16"),
    INT8("int8", 1, false, "CharStorage", "I8"),
    UINT8("uint8", 1, false, "ByteStorage", "U8"),
    BOOL("bool", 1, false, "BoolStorage", "BOOL"),
    UINT16("uint16", 2, false, null, "U16"),
    UINT32("uint32", 4, false, null, "U32"),
    /** Values of 2^63 and above do not fit the int64 a tensor loads as: reading one is an error naming it. */
    UINT64("uint64", 8, false, null, "U64"),
    /** 8-bit float, 4 exponent bits (bias 7), 3 mantissa bits, no infinities; NaN is S.1111.111. */
    FLOAT8_E4M3FN("float8_e4m3fn", 1, true, null, "F8_E4M3"),
    /** 8-bit float, 5 exponent bits, 2 mantissa bits: the upper byte of a float16. */
    FLOAT8_E5M2("float8_e5m2", 1, true, null, "F8_E5M2");

    private final String torchName;
    private final int size;
    private final boolean floating;
    private final String storageClass;
    private final String safetensorsName;

    DType(String torchName, int size, boolean floating, String storageClass, String safetensorsName) {
        this.torchName = torchName;
        this.size = size;
        this.floating = floating;
        this.storageClass = storageClass;
        this.safetensorsName = safetensorsName;
    }

    /** PyTorch's name, e.g. {@code float16}. */

    /** Bytes per element in the file. */
    public int size() { return size; }

    public boolean isFloating() { return floating; }

    /** The type a loaded tensor's {@link HostTensor#data()} holds: FLOAT32 or INT64. */
    public DType loadedAs() { return floating ? FLOAT32 : INT64; }

    /** The safetensors dtype code, e.g. {@code BF16}. */
    public String safetensorsName() { return safetensorsName; }

    /** The dtype of a {@code torch.XxxStorage} class name, or null if it is not one we read. */
    static DType ofStorageClass(String name) {
        for (DType d : values()) if (name.equals(d.storageClass)) return d;
        return null;
    }

    /** The dtype of PyTorch's name ({@code torch.float8_e4m3fn} is {@code float8_e4m3fn}), or null if we do not read it. */
    static DType ofTorchName(String name) {
        for (DType d : values()) if (d.torchName.equals(name)) return d;
        return null;
    }

    /** The names of all dtypes we read, for error messages. */
    static String readable() {
        StringBuilder sb = new StringBuilder();
        for (DType d : values()) sb.append(sb.length() == 0 ? "" : ", ").append(d.torchName);
        return sb.toString();
    }

    /** The dtype of a safetensors code, or null if unknown. */
    static DType ofSafetensors(String code) {
        for (DType d : values()) if (d.safetensorsName.equals(code)) return d;
        return null;
    }

    @Override
    public String toString() { return torchName; }
}
