package dev.mm4j.checkpoint;

import dev.mm4j.checkpoint.TorchPickle.StorageRef;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The legacy {@code torch.save} format (PyTorch before 1.6, and {@code _use_new_zipfile_serialization=False} since):
 * five pickles in a row (torch's magic number, protocol version 1001, system info, the object with a persistent id
 * per storage, the sorted list of storage keys), then each storage in that order as its element count (int64) and
 * its bytes. Read with the same restricted unpickler as the zip format; storages are memory-mapped.
 */
final class TorchLegacyFormat {
    /** {@code torch.serialization.MAGIC_NUMBER}. */
    private static final BigInteger MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);

    private static final long PROTOCOL_VERSION = 1001;

    private TorchLegacyFormat() {}

    /** Where each storage's bytes lie in the file. */
    private record Table(Object top, Map<String, long[]> storages) {}

    /** The state dict at {@code keyPath} (as {@link TorchCheckpoints#read(Path, String)}) of a legacy file. */
    static StateDict read(Path file, FileChannel ch, String keyPath) throws IOException {
        Table t = table(file, ch);
        Map<?, ?> dict = TorchCheckpoints.select(file, t.top(), keyPath);
        Map<String, Supplier<ByteBuffer>> mapped = new HashMap<>();
        return TorchCheckpoints.stateDict(file, dict, ch, new TorchCheckpoints.Storages() {
            @Override
            public long size(String key, String tensor) throws CheckpointException {
                long[] at = t.storages().get(key);
                if (at == null) throw bad(file, "tensor '" + tensor + "': storage '" + key + "' is not in the file's storage list");
                return at[1];
            }

            @Override
            public Supplier<ByteBuffer> bytes(String key) throws IOException {
                Supplier<ByteBuffer> done = mapped.get(key);
                if (done != null) return done;
                long[] at = t.storages().get(key);
                if (at[1] > Integer.MAX_VALUE - 16) throw bad(file, "storage '" + key + "' is larger than 2 GiB, not supported");
                ByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, at[0], at[1]).asReadOnlyBuffer();
                Supplier<ByteBuffer> s = () -> b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
                mapped.put(key, s);
                return s;
            }

            @Override
            public String holder() {
                return "the file";
            }
        });
    }

    /**
     * Checks a legacy file's structure without reading any tensor: its pickles, and storages that fill the rest of
     * the file exactly. Returns the number of storages. (The format has no checksum.)
     */
    static int verify(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return table(file, ch).storages().size();
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file + ": no such file", e);
        } catch (RuntimeException e) {
            throw new CheckpointException(file + ": unreadable checkpoint: " + e, e);
        }
    }

    private static CheckpointException bad(Path file, String what) {
        return new CheckpointException(file + ": legacy torch.save file: " + what);
    }

    private static Table table(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        ByteBuffer head = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, TorchCheckpoints.MAX_PICKLE_BYTES));
        String where = file + " [legacy torch.save]";
        Object magic = next(where, head).value();
        if (!MAGIC.equals(magic)) {
            throw new CheckpointException(file + ": a pickle, not a torch.save file (its first value is "
                    + TorchPickle.typeName(magic) + ", not torch's magic number); mm4j reads torch.save and safetensors files");
        }
        Object protocol = next(where, head).value();
        if (!Long.valueOf(PROTOCOL_VERSION).equals(protocol)) {
            throw bad(file, "protocol version " + protocol + " is not supported (only " + PROTOCOL_VERSION + ")");
        }
        if (!(next(where, head).value() instanceof Map<?, ?> sysInfo) || !Boolean.TRUE.equals(sysInfo.get("little_endian"))) {
            throw bad(file, "written on a big-endian machine or without system info; only little-endian files are read");
        }
        TorchPickle.Prefix object = next(where, head);
        if (!(next(where, head).value() instanceof List<?> keys)) throw bad(file, "the storage key list is missing");

        Map<String, StorageRef> declared = new HashMap<>();
        for (StorageRef s : object.storages()) declared.putIfAbsent(s.key(), s);
        Map<String, long[]> storages = new HashMap<>();
        long pos = head.position();
        ByteBuffer count = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (Object k : keys) {
            if (!(k instanceof String key)) throw bad(file, "a storage key is a " + TorchPickle.typeName(k) + ", not a string");
            StorageRef s = declared.get(key);
            if (s == null) throw bad(file, "storage '" + key + "' is listed but no tensor uses it");
            if (storages.containsKey(key)) throw bad(file, "storage '" + key + "' is listed twice");
            count.clear();
            while (count.hasRemaining() && ch.read(count, pos + count.position()) > 0) { }
            if (count.hasRemaining()) throw bad(file, "truncated at storage '" + key + "' (byte " + pos + " of " + size + ")");
            long numel = count.getLong(0);
            if (numel != s.numel()) {
                throw bad(file, "storage '" + key + "' holds " + numel + " elements where its tensors declare " + s.numel());
            }
            long bytes = TorchCheckpoints.declaredBytes(file, s);
            if (bytes > size - pos - 8) {
                throw bad(file, "truncated: storage '" + key + "' needs " + bytes + " bytes at byte " + (pos + 8) + " of " + size);
            }
            storages.put(key, new long[] {pos + 8, bytes});
            pos += 8 + bytes;
        }
        if (storages.size() != declared.size()) {
            throw bad(file, declared.size() + " storages are used but " + storages.size() + " are listed");
        }
        if (pos != size) throw bad(file, "its " + storages.size() + " storages end at byte " + pos + " but the file has " + size);
        return new Table(object.value(), storages);
    }

    /** The next pickle of {@code head}, which then stands after it. */
    private static TorchPickle.Prefix next(String where, ByteBuffer head) throws CheckpointException {
        TorchPickle.Prefix p = TorchPickle.loadPrefix(where, head);
        head.position(head.position() + p.length());
        return p;
    }
}
