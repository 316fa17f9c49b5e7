package dev.mm4j.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A minimal, defensive reader of a zip archive's central directory (with ZIP64), enough to find each entry's
 * data in the file so that STORED entries can be memory-mapped in place. Every offset and size is checked
 * against the file size before use.
 */
final class ZipIndex {
    static final int STORED = 0;
    static final int DEFLATED = 8;

    /** One entry: where its data starts in the file, how it is stored, its sizes. */
    record Entry(String name, int method, long dataOffset, long compressedSize, long size) {}

    private final Path file;
    private final FileChannel channel;
    private final long fileSize;
    private final Map<String, Entry> entries = new LinkedHashMap<>();

    private ZipIndex(Path file, FileChannel channel) throws IOException {
        this.file = file;
        this.channel = channel;
        this.fileSize = channel.size();
    }

    static ZipIndex open(Path file, FileChannel channel) throws IOException {
        ZipIndex z = new ZipIndex(file, channel);
        z.readCentralDirectory();
        return z;
    }

    Map<String, Entry> entries() { return entries; }

    Entry get(String name) { return entries.get(name); }

    private CheckpointException bad(String what) {
        return new CheckpointException(file + ": " + what);
    }

    private ByteBuffer read(long pos, int len) throws IOException {
        if (pos < 0 || len < 0 || pos + len > fileSize) throw bad("zip structure points outside the file (truncated?)");
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            int n = channel.read(b, pos + b.position());
            if (n < 0) throw bad("unexpected end of file");
        }
        return b.flip();
    }

    private void readCentralDirectory() throws IOException {
        if (fileSize < 22) throw bad("too small to be a zip archive (" + fileSize + " bytes)");
        int tailLen = (int) Math.min(fileSize, 22 + 65535);
        ByteBuffer tail = read(fileSize - tailLen, tailLen);
        int eocd = -1;
        for (int i = tailLen - 22; i >= 0; i--) {
            if (tail.getInt(i) == 0x06054b50) { eocd = i; break; }
        }
        if (eocd < 0) throw bad("no zip end-of-central-directory record: the file is truncated or not a zip archive");
        long eocdPos = fileSize - tailLen + eocd;
        long count = tail.getShort(eocd + 10) & 0xffff;
        long cdSize = tail.getInt(eocd + 12) & 0xffffffffL;
        long cdOffset = tail.getInt(eocd + 16) & 0xffffffffL;
        if (count == 0xffff || cdSize == 0xffffffffL || cdOffset == 0xffffffffL) {
            if (eocdPos < 20) throw bad("ZIP64 locator missing");
            ByteBuffer loc = read(eocdPos - 20, 20);
            if (loc.getInt(0) != 0x07064b50) throw bad("ZIP64 locator missing");
            long z64 = loc.getLong(8);
            ByteBuffer rec = read(z64, 56);
            if (rec.getInt(0) != 0x06064b50) throw bad("bad ZIP64 end-of-central-directory record");
            count = rec.getLong(32);
            cdSize = rec.getLong(40);
            cdOffset = rec.getLong(48);
        }
        if (cdOffset < 0 || cdSize < 0 || cdOffset + cdSize > eocdPos || cdSize > Integer.MAX_VALUE)
            throw bad("central directory lies outside the file (truncated?)");
        if (count < 0 || count > cdSize / 46) throw bad("central directory claims " + count + " entries in " + cdSize + " bytes");
        ByteBuffer cd = read(cdOffset, (int) cdSize);
        int p = 0;
        for (long i = 0; i < count; i++) {
            if (p + 46 > cd.limit() || cd.getInt(p) != 0x02014b50) throw bad("corrupt central directory entry #" + i);
            int flags = cd.getShort(p + 8) & 0xffff;
            int method = cd.getShort(p + 10) & 0xffff;
            long comp = cd.getInt(p + 20) & 0xffffffffL;
            long size = cd.getInt(p + 24) & 0xffffffffL;
            int nameLen = cd.getShort(p + 28) & 0xffff;
            int extraLen = cd.getShort(p + 30) & 0xffff;
            int commentLen = cd.getShort(p + 32) & 0xffff;
            long local = cd.getInt(p + 42) & 0xffffffffL;
            if (p + 46 + nameLen + extraLen + commentLen > cd.limit()) throw bad("corrupt central directory entry #" + i);
            byte[] nb = new byte[nameLen];
            cd.get(p + 46, nb);
            String name = new String(nb, StandardCharsets.UTF_8);
            // ZIP64 extra field: the 0xffffffff fields, in order size, compressed size, local header offset
            int e = p + 46 + nameLen, eEnd = e + extraLen;
            while (e + 4 <= eEnd) {
                int id = cd.getShort(e) & 0xffff, len = cd.getShort(e + 2) & 0xffff;
                if (e + 4 + len > eEnd) break;
                if (id == 0x0001) {
                    int q = e + 4;
                    if (size == 0xffffffffL && q + 8 <= e + 4 + len) { size = cd.getLong(q); q += 8; }
                    if (comp == 0xffffffffL && q + 8 <= e + 4 + len) { comp = cd.getLong(q); q += 8; }
                    if (local == 0xffffffffL && q + 8 <= e + 4 + len) { local = cd.getLong(q); }
                }
                e += 4 + len;
            }
            p += 46 + nameLen + extraLen + commentLen;
            if ((flags & 1) != 0) throw bad("entry '" + name + "' is encrypted");
            if (method != STORED && method != DEFLATED)
                throw bad("entry '" + name + "' uses unsupported zip compression method " + method);
            if (size < 0 || comp < 0 || local < 0) throw bad("entry '" + name + "' has a size beyond 2^63");
            ByteBuffer lh = read(local, 30);
            if (lh.getInt(0) != 0x04034b50) throw bad("entry '" + name + "': bad local file header (truncated or corrupt)");
            long dataOffset = local + 30 + (lh.getShort(26) & 0xffff) + (lh.getShort(28) & 0xffff);
            if (dataOffset + comp > fileSize)
                throw bad("entry '" + name + "' extends past the end of the file (truncated?)");
            if (method == STORED && comp != size) throw bad("stored entry '" + name + "' has mismatched sizes");
            entries.put(name, new Entry(name, method, dataOffset, comp, size));
        }
    }

    /**
     * The entry's uncompressed bytes: a read-only memory-mapped slice for STORED entries, an inflated heap
     * buffer (checked against the declared size) for DEFLATED ones. Little-endian, position 0.
     */
    ByteBuffer bytes(Entry e) throws IOException {
        if (e.size() > Integer.MAX_VALUE) throw bad("entry '" + e.name() + "' is larger than 2 GiB, not supported");
        if (e.method() == STORED) {
            if (e.size() == 0) return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
            return channel.map(FileChannel.MapMode.READ_ONLY, e.dataOffset(), e.size()).order(ByteOrder.LITTLE_ENDIAN);
        }
        if (e.compressedSize() > Integer.MAX_VALUE) throw bad("entry '" + e.name() + "' is too large");
        ByteBuffer in = read(e.dataOffset(), (int) e.compressedSize());
        ByteBuffer out = ByteBuffer.allocate((int) e.size()).order(ByteOrder.LITTLE_ENDIAN);
        Inflater inf = new Inflater(true);
        try {
            inf.setInput(in);
            while (out.hasRemaining() && !inf.finished()) {
                int n = inf.inflate(out);
                if (n == 0 && (inf.needsInput() || inf.needsDictionary())) break;
            }
            if (out.hasRemaining() || !inf.finished())
                throw bad("entry '" + e.name() + "' does not inflate to its declared " + e.size() + " bytes");
        } catch (DataFormatException ex) {
            throw new CheckpointException(file + ": entry '" + e.name() + "' is corrupt: " + ex.getMessage(), ex);
        } finally {
            inf.end();
        }
        return out.flip();
    }
}
