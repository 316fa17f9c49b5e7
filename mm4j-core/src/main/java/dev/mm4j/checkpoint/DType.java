package dev.mm4j.checkpoint;

/** Element types that checkpoints store. Floating types load as float32, the others as int64. */
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
    BOOL("bool", 1, false, "BoolStorage", "BOOL");

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
        for (DType d : values()) if (d.storageClass.equals(name)) return d;
        return null;
    }

    /** The dtype of a safetensors code, or null if unknown. */
    static DType ofSafetensors(String code) {
        for (DType d : values()) if (d.safetensorsName.equals(code)) return d;
        return null;
    }

    @Override
    public String toString() { return torchName; }
}
