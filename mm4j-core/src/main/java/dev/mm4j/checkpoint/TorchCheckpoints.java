package dev.mm4j.checkpoint;

import ai.djl.ndarray.NDArray;
import dev.mm4j.checkpoint.TorchPickle.StorageRef;
import dev.mm4j.checkpoint.TorchPickle.TensorRef;
import dev.mm4j.checkpoint.TorchPickle.UnreadableTensor;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads state dicts from {@code torch.save} zip archives (and legacy files: {@link TorchLegacyFormat}) without
 * Python and without executing anything: a restricted unpickler ({@link TorchPickle}) plus memory-mapped storages.
 * Tensors of any device load on the host; floating tensors as float32, integer/bool tensors as int64 (the dtypes of
 * {@link DType}, including PyTorch 2.3+'s uint16/32/64 and float8 tensors). Also writes such archives
 * ({@link #write}, {@link #writeNDArrays}).
 */
public final class TorchCheckpoints {
    private static final Logger log = LoggerFactory.getLogger(TorchCheckpoints.class);

    /** Keys under which a wrapping dict commonly keeps the state dict, tried in this order. */
    static final List<String> WRAPPER_KEYS = List.of("state_dict", "model_state_dict", "model", "module", "net");

    private TorchCheckpoints() {}

    /**
     * Reads the state dict of {@code file}: the top-level dict if its values are tensors, otherwise the dict
     * under one of {@code state_dict}, {@code model_state_dict}, {@code model}, {@code module}, {@code net}.
     */
    public static StateDict read(Path file) throws IOException {
        return read(file, null);
    }

    /**
     * Reads the tensors of the dict at {@code keyPath} inside the top-level object: a dot-free key, or
     * several keys separated by {@code '/'} for deeper nesting (e.g. {@code "checkpoint/state_dict"}).
     * A null or empty path means: detect, as {@link #read(Path)}.
     */
    public static StateDict read(Path file, String keyPath) throws IOException {
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file + ": no such file", e);
        }
        try {
            StateDict sd = read(file, ch, keyPath);
            ch = null; // owned by the StateDict now
            return sd;
        } catch (CheckpointException e) {
            throw e;
        } catch (RuntimeException | OutOfMemoryError e) {
            throw new CheckpointException(file + ": unreadable checkpoint: " + e, e);
        } finally {
            if (ch != null) ch.close();
        }
    }

    private static StateDict read(Path file, FileChannel ch, String keyPath) throws IOException {
        ByteBuffer magic = ByteBuffer.allocate(4);
        ch.read(magic, 0);
        if (magic.position() >= 1 && (magic.get(0) & 0xff) == 0x80) return TorchLegacyFormat.read(file, ch, keyPath);
        if (magic.position() < 4 || magic.getInt(0) != 0x504b0304)
            throw new CheckpointException(file + ": not a torch.save file (no zip signature 'PK\\3\\4' at the start, nor the"
                    + " pickle of a legacy one)");
        ZipIndex zip = ZipIndex.open(file, ch);

        ZipIndex.Entry pkl = null;
        for (ZipIndex.Entry e : zip.entries().values()) {
            String n = e.name();
            int slash = n.indexOf('/');
            if (slash > 0 && n.substring(slash + 1).equals("data.pkl")) { pkl = e; break; }
        }
        if (pkl == null) throw new CheckpointException(file + ": no '<archive>/data.pkl' entry; not a torch.save checkpoint");
        String prefix = pkl.name().substring(0, pkl.name().length() - "data.pkl".length());
        ZipIndex.Entry order = zip.get(prefix + "byteorder");
        if (order != null) {
            ByteBuffer b = zip.bytes(order);
            byte[] bs = new byte[Math.min(b.remaining(), 16)];
            b.get(bs);
            String s = new String(bs, StandardCharsets.US_ASCII).trim();
            if (!s.equals("little")) throw new CheckpointException(file + ": byteorder '" + s + "' is not supported, only little");
        }
        if (pkl.size() > MAX_PICKLE_BYTES) throw new CheckpointException(file + ": data.pkl is " + pkl.size() + " bytes, too large");

        Object top = TorchPickle.load(file + " [" + pkl.name() + "]", zip.bytes(pkl));
        Map<?, ?> dict = select(file, top, keyPath);
        Map<String, Supplier<ByteBuffer>> storageBytes = new HashMap<>();
        return stateDict(file, dict, ch, new Storages() {
            @Override
            public long size(String key, String tensor) throws CheckpointException {
                ZipIndex.Entry e = zip.get(prefix + "data/" + key);
                if (e == null) {
                    throw new CheckpointException(file + ": tensor '" + tensor + "': storage entry '" + prefix + "data/" + key + "' is missing");
                }
                return e.size();
            }

            @Override
            public Supplier<ByteBuffer> bytes(String key) throws IOException {
                return storage(zip, zip.get(prefix + "data/" + key), storageBytes);
            }

            @Override
            public String holder() {
                return "its zip entry";
            }
        });
    }

    /** The pickles of a checkpoint may take at most this many bytes (a zip's data.pkl, a legacy file's pickles). */
    static final long MAX_PICKLE_BYTES = 512L << 20;

    /** Where a checkpoint's storages are, by key: a zip archive's entries or a legacy file's storage table. */
    interface Storages {
        /** The storage's size in bytes; an error naming {@code tensor} if the file has no such storage. */
        long size(String key, String tensor) throws CheckpointException;

        /** The storage's bytes (little-endian), once {@link #size} has found it. */
        Supplier<ByteBuffer> bytes(String key) throws IOException;

        /** What holds a storage's bytes, for error messages ("its zip entry"). */
        String holder();
    }

    /**
     * The tensors of {@code dict} (an unpickled state dict) over {@code storages}, every storage and tensor validated
     * before anything is handed out: a storage's declared size against its bytes, each view inside its storage.
     */
    static StateDict stateDict(Path file, Map<?, ?> dict, FileChannel ch, Storages storages) throws IOException {
        Map<String, StorageRef> seenStorages = new HashMap<>();
        LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
        List<String> skipped = new ArrayList<>();
        for (Map.Entry<?, ?> kv : dict.entrySet()) {
            if (!(kv.getKey() instanceof String name)) {
                throw new CheckpointException(file + ": state dict key of type " + TorchPickle.typeName(kv.getKey()) + " is not a string");
            }
            if (kv.getValue() instanceof UnreadableTensor u) {
                throw new CheckpointException(file + ": tensor '" + name + "' has dtype " + u.dtype() + ", which mm4j does not read"
                        + " (it reads " + DType.readable() + ")");
            }
            if (!(kv.getValue() instanceof TensorRef t)) {
                skipped.add(name);
                continue;
            }
            StorageRef s = t.storage();
            long declared = declaredBytes(file, s);
            // one storage may back tensors of several dtypes (an untyped storage viewed as float8_e4m3fn and as
            // float8_e5m2): its bytes must agree
            StorageRef seen = seenStorages.putIfAbsent(s.key(), s);
            if (seen != null && seen.numel() * seen.dtype().size() != declared)
                throw new CheckpointException(file + ": storage '" + s.key() + "' is declared as both " + seen.dtype() + "[" + seen.numel()
                        + "] and " + s.dtype() + "[" + s.numel() + "]");
            long size = storages.size(s.key(), name);
            if (declared != size)
                throw new CheckpointException(file + ": tensor '" + name + "': storage '" + s.key() + "' declares " + s.numel() + " "
                        + s.dtype() + " elements (" + declared + " bytes) but " + storages.holder() + " holds " + size + " bytes");
            checkBounds(file, name, t);
            tensors.put(name, new HostTensor(s.dtype(), t.shape(), storages.bytes(s.key()), t.offset(), t.stride()));
        }
        if (tensors.isEmpty()) throw new CheckpointException(file + ": the selected dict holds no tensors");
        if (!skipped.isEmpty()) log.warn("{}: skipped {} non-tensor entries: {}", file, skipped.size(), skipped);
        return new StateDict(tensors, Map.of(), ch);
    }

    /** A storage's size in bytes as its persistent id declares it. */
    static long declaredBytes(Path file, StorageRef s) throws CheckpointException {
        try {
            return Math.multiplyExact(s.numel(), (long) s.dtype().size());
        } catch (ArithmeticException ex) {
            throw new CheckpointException(file + ": storage '" + s.key() + "' declares an impossible numel " + s.numel());
        }
    }

    /**
     * The bytes of a storage entry, each entry verified (size, CRC-32) once before any tensor uses it. A STORED
     * entry is memory-mapped; a DEFLATED one is verified by streaming it through a small buffer and inflated
     * again (bounded by its verified size) each time a tensor's data is asked for, so that reading or inspecting
     * a file never holds all of its inflated storages at once.
     */
    private static Supplier<ByteBuffer> storage(ZipIndex zip, ZipIndex.Entry e, Map<String, Supplier<ByteBuffer>> done)
            throws IOException {
        Supplier<ByteBuffer> s = done.get(e.name());
        if (s != null) return s;
        if (e.method() == ZipIndex.STORED) {
            ByteBuffer mapped = zip.bytes(e).asReadOnlyBuffer();
            s = () -> mapped.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        } else {
            zip.verify(e);
            s = () -> {
                try {
                    return zip.bytes(e).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
                } catch (IOException ex) {
                    throw new UncheckedIOException(ex);
                }
            };
        }
        done.put(e.name(), s);
        return s;
    }

    /**
     * Checks every entry of a torch.save archive, whether a load would read it or not: the central directory and
     * local headers, and each entry's size and CRC-32 (streaming, constant memory). Returns the line that says so,
     * e.g. "all 8 zip entries pass their CRC-32 check".
     */
    static String verifyArchive(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ZipIndex zip = ZipIndex.open(file, ch);
            for (ZipIndex.Entry e : zip.entries().values()) zip.verify(e);
            int n = zip.entries().size();
            return zip.crcRecorded() ? "all " + n + " zip entries pass their CRC-32 check"
                    : "written without CRC-32s (torch.serialization.set_crc32_options(False)): the " + n
                    + " zip entries' sizes and headers check out, their bytes cannot be checked";
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file + ": no such file", e);
        } catch (RuntimeException e) {
            throw new CheckpointException(file + ": unreadable checkpoint: " + e, e);
        }
    }

    // ------------------------------------------------------------------ writing

    /**
     * Writes {@code tensors} (in map order) as a {@code torch.save}-compatible zip archive, atomically (temp file +
     * rename): an {@code OrderedDict} of contiguous tensors, floating ones as {@code torch.FloatStorage} (float32),
     * integer/bool ones as {@code torch.LongStorage} (int64); storage keys "0", "1", ... in order; entries stored
     * uncompressed with 64-byte aligned data like PyTorch's writer. {@code torch.load(file)} gives the state dict.
     * Only one tensor's bytes are fetched ({@link HostTensor#data()}) at a time.
     */
    public static void write(Path file, Map<String, HostTensor> tensors) throws IOException {
        AtomicFiles.write(file, out -> TorchZipWriter.write(out, tensors));
    }

    /**
     * Writes DJL arrays (e.g. a model's parameters, in map order) like {@link #write}: floating arrays as float32
     * (converted if needed), integer/bool arrays as int64. Each array is copied to the host only while it is
     * being written. (Not an overload of {@code write}: both maps erase to the same type.)
     */
    public static void writeNDArrays(Path file, Map<String, NDArray> arrays) throws IOException {
        write(file, DjlTensors.hostTensors(arrays));
    }

    /** Checks that every element the view (offset, shape, stride) addresses lies inside its storage. */
    static void checkBounds(Path file, String name, TensorRef t) throws CheckpointException {
        long numel = t.storage().numel();
        String where = file + ": tensor '" + name + "' (offset " + t.offset() + ", size " + java.util.Arrays.toString(t.shape())
                + ", stride " + java.util.Arrays.toString(t.stride()) + ")";
        if (t.offset() < 0) throw new CheckpointException(where + " has a negative offset");
        try {
            long last = t.offset();
            boolean empty = false;
            for (int d = 0; d < t.shape().length; d++) {
                if (t.shape()[d] < 0 || t.stride()[d] < 0) throw new CheckpointException(where + " has a negative size or stride");
                if (t.shape()[d] == 0) empty = true;
                else last = Math.addExact(last, Math.multiplyExact(t.shape()[d] - 1, t.stride()[d]));
            }
            long n = HostTensor.numelOf(t.shape());
            if (n > (Integer.MAX_VALUE - 16) / 8) throw new CheckpointException(where + " is too large for one buffer");
            if (!empty && last >= numel)
                throw new CheckpointException(where + " reaches element " + last + " outside its storage '" + t.storage().key()
                        + "' of " + numel + " elements");
        } catch (ArithmeticException ex) {
            throw new CheckpointException(where + " overflows");
        }
    }

    static Map<?, ?> select(Path file, Object top, String keyPath) throws CheckpointException {
        if (!(top instanceof Map<?, ?> m)) throw new CheckpointException(file + ": top-level object is a " + TorchPickle.typeName(top) + ", not a dict");
        if (keyPath != null && !keyPath.isEmpty()) {
            Object cur = m;
            for (String k : keyPath.split("/")) {
                if (!(cur instanceof Map<?, ?> cm) || !cm.containsKey(k))
                    throw new CheckpointException(file + ": no dict at '" + keyPath + "' (missing '" + k + "'); top-level keys: " + keysOf(m));
                cur = cm.get(k);
            }
            if (!(cur instanceof Map<?, ?> sel)) throw new CheckpointException(file + ": '" + keyPath + "' is a " + TorchPickle.typeName(cur) + ", not a dict");
            return sel;
        }
        if (hasTensors(m)) return m;
        for (String k : WRAPPER_KEYS) {
            if (m.get(k) instanceof Map<?, ?> inner && hasTensors(inner)) return inner;
        }
        throw new CheckpointException(file + ": no state dict found; top-level keys: " + keysOf(m)
                + " (pass the key of the nested state dict)");
    }

    private static boolean hasTensors(Map<?, ?> m) {
        for (Object v : m.values()) if (v instanceof TensorRef || v instanceof UnreadableTensor) return true;
        return false;
    }

    private static String keysOf(Map<?, ?> m) {
        List<String> ks = new ArrayList<>();
        for (Object k : m.keySet()) {
            if (ks.size() == 20) { ks.add("..."); break; }
            ks.add(String.valueOf(k));
        }
        return ks.toString();
    }
}
