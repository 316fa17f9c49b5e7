package dev.mm4j.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A minimal, defensive reader of a zip archive's central directory (with ZIP64), enough to find each entry's
 * data in the file so that STORED entries can be memory-mapped in place. Every offset and size is checked
 * against the file size before use; each local header must carry the central directory's name (as Python's
 * zipfile checks). An entry's bytes are only handed out after its CRC-32 and size were verified in one streaming
 * pass ({@link #verify}): STORED entries are read through a small buffer (nothing is mapped for it), DEFLATED
 * ones are inflated into a small buffer and never past their declared size.
 */
final class ZipIndex {
    static final int STORED = 0;
    static final int DEFLATED = 8;

    /** One entry: where its data starts in the file, how it is stored, its sizes. */
    record Entry(String name, int method, long dataOffset, long compressedSize, long size, long crc) {}

    /** Bytes per read while streaming an entry for its CRC. */
    private static final int CHUNK = 1 << 20;
    /** Output buffer of a streaming inflate. */
    private static final int INFLATE_CHUNK = 1 << 16;

    private final Path file;
    private final FileChannel channel;
    private final long fileSize;
    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private ByteBuffer whole;
    private ByteBuffer scratch;
    /**
     * Whether the archive records CRC-32s: false where every non-empty entry stores 0, as {@code torch.save} writes
     * after {@code torch.serialization.set_crc32_options(False)} (PyTorch 2.6+; torch.load never checks them). Such
     * an archive's entries are checked for their sizes and headers only.
     */
    private boolean crcRecorded = true;

    private ZipIndex(Path file, FileChannel channel) throws IOException {
        this.file = file;
        this.channel = channel;
        this.fileSize = channel.size();
    }

    static ZipIndex open(Path file, FileChannel channel) throws IOException {
        ZipIndex z = new ZipIndex(file, channel);
        z.readCentralDirectory();
        z.crcRecorded = z.entries.values().stream().anyMatch(e -> e.size() > 0 && e.crc() != 0)
                || z.entries.values().stream().noneMatch(e -> e.size() > 0);
        return z;
    }

    /** Whether the entries' CRC-32s are recorded (and so checked); see {@link #crcRecorded}. */
    boolean crcRecorded() { return crcRecorded; }

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
        Set<String> seen = new HashSet<>();
        int p = 0;
        for (long i = 0; i < count; i++) {
            if (p + 46 > cd.limit() || cd.getInt(p) != 0x02014b50) throw bad("corrupt central directory entry #" + i);
            int flags = cd.getShort(p + 8) & 0xffff;
            int method = cd.getShort(p + 10) & 0xffff;
            long crc = cd.getInt(p + 16) & 0xffffffffL;
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
            int localNameLen = lh.getShort(26) & 0xffff;
            if (localNameLen != nameLen || !Arrays.equals(read(local + 30, localNameLen).array(), nb))
                throw bad("entry '" + name + "': the local file header names a different entry than the central directory"
                        + " (corrupt archive)");
            long dataOffset = local + 30 + localNameLen + (lh.getShort(28) & 0xffff);
            if (dataOffset + comp > fileSize || dataOffset + comp < dataOffset)
                throw bad("entry '" + name + "' extends past the end of the file (truncated?)");
            if (method == STORED && comp != size) throw bad("stored entry '" + name + "' has mismatched sizes");
            if (!seen.add(name)) throw bad("entry '" + name + "' appears twice in the central directory");
            entries.put(name, new Entry(name, method, dataOffset, comp, size, crc));
        }
    }

    /**
     * Checks that {@code e} holds exactly its declared size and CRC-32, in one streaming pass with a small
     * buffer: memory stays bounded whatever the entry claims, and inflation stops at the declared size.
     */
    synchronized void verify(Entry e) throws IOException {
        if (e.method() == STORED && !crcRecorded) {
            return; // its size was checked against the file with the central directory; there is no CRC to compare
        }
        CRC32 crc = new CRC32();
        long n;
        if (e.method() == STORED) {
            ByteBuffer buf = scratch((int) Math.min(CHUNK, Math.max(1, e.size())));
            n = 0;
            while (n < e.size()) {
                buf.clear().limit((int) Math.min(buf.capacity(), e.size() - n));
                while (buf.hasRemaining()) {
                    if (channel.read(buf, e.dataOffset() + n + buf.position()) < 0) throw bad("unexpected end of file in '" + e.name() + "'");
                }
                crc.update(buf.flip());
                n += buf.limit();
            }
        } else {
            n = inflate(e, null, crc);
        }
        checkCrc(e, n, crc);
    }

    /**
     * The entry's uncompressed bytes, verified (size and CRC-32): a read-only memory-mapped slice for STORED
     * entries, an inflated heap buffer for DEFLATED ones (grown as data arrives, never past the declared size).
     * Little-endian, position 0.
     */
    synchronized ByteBuffer bytes(Entry e) throws IOException {
        if (e.size() > Integer.MAX_VALUE - 16) throw bad("entry '" + e.name() + "' is larger than 2 GiB, not supported");
        if (e.method() == STORED) {
            verify(e);
            if (e.size() == 0) return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
            if (fileSize <= Integer.MAX_VALUE) {
                // one mapping for the whole file, sliced per entry (a mapping per entry costs a kernel map each)
                if (whole == null) whole = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize);
                return whole.slice((int) e.dataOffset(), (int) e.size()).order(ByteOrder.LITTLE_ENDIAN);
            }
            return channel.map(FileChannel.MapMode.READ_ONLY, e.dataOffset(), e.size()).order(ByteOrder.LITTLE_ENDIAN);
        }
        ByteBuffer[] out = {ByteBuffer.allocate((int) Math.min(e.size(), INFLATE_CHUNK))};
        CRC32 crc = new CRC32();
        long n = inflate(e, out, crc);
        checkCrc(e, n, crc);
        return out[0].flip().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A reusable read buffer of at least {@code size} bytes (size at most {@link #CHUNK}). */
    private ByteBuffer scratch(int size) {
        if (scratch == null || scratch.capacity() < size) scratch = ByteBuffer.allocate(Math.max(size, 64 << 10));
        return scratch;
    }

    private void checkCrc(Entry e, long n, CRC32 crc) throws CheckpointException {
        if (n != e.size()) throw bad("entry '" + e.name() + "' holds " + n + " bytes, its header says " + e.size() + " (corrupt archive)");
        if (crcRecorded && crc.getValue() != e.crc())
            throw bad(String.format("entry '%s' fails its CRC-32 check (stored %08x, computed %08x): the file is corrupt%s",
                    e.name(), e.crc(), crc.getValue(), e.crc() == 0 ? ", or it was saved under torch.serialization.skip_data()"
                            + " and its tensors' bytes were never written" : ""));
    }

    /**
     * Inflates a DEFLATED entry chunk by chunk into {@code out[0]} (grown by doubling up to the declared size) or,
     * when {@code out} is null, into a scratch buffer that is thrown away; updates {@code crc}. Fails as soon as
     * the data would exceed the declared size. Returns the number of bytes produced.
     */
    private long inflate(Entry e, ByteBuffer[] out, CRC32 crc) throws IOException {
        Inflater inf = new Inflater(true);
        ByteBuffer in = ByteBuffer.allocate((int) Math.min(CHUNK, Math.max(1, e.compressedSize())));
        ByteBuffer scratch = out == null ? ByteBuffer.allocate(INFLATE_CHUNK) : null;
        long readPos = 0, produced = 0;
        try {
            while (!inf.finished()) {
                if (inf.needsInput()) {
                    if (readPos >= e.compressedSize()) break;
                    in.clear().limit((int) Math.min(in.capacity(), e.compressedSize() - readPos));
                    while (in.hasRemaining()) {
                        if (channel.read(in, e.dataOffset() + readPos + in.position()) < 0) throw bad("unexpected end of file in '" + e.name() + "'");
                    }
                    readPos += in.limit();
                    inf.setInput(in.flip());
                }
                ByteBuffer dst;
                if (out == null) {
                    dst = scratch.clear();
                } else {
                    dst = out[0];
                    if (!dst.hasRemaining()) {
                        if (dst.capacity() >= e.size()) {
                            // full at the declared size: one more byte would be too many
                            dst = scratch = scratch == null ? ByteBuffer.allocate(1) : scratch.clear();
                        } else {
                            ByteBuffer bigger = ByteBuffer.allocate((int) Math.min(e.size(), Math.max(2L * dst.capacity(), INFLATE_CHUNK)));
                            out[0] = dst = bigger.put(dst.flip());
                        }
                    }
                }
                int before = dst.position();
                int k = inf.inflate(dst);
                if (k > 0) {
                    if (produced + k > e.size())
                        throw bad("entry '" + e.name() + "' inflates to more than its declared " + e.size() + " bytes (corrupt archive)");
                    crc.update(dst.duplicate().flip().position(before));
                    produced += k;
                } else if (inf.needsDictionary()) {
                    throw bad("entry '" + e.name() + "' is corrupt: it needs a preset dictionary");
                } else if (inf.needsInput() && readPos >= e.compressedSize()) {
                    break;
                }
            }
            if (!inf.finished()) throw bad("entry '" + e.name() + "' is corrupt: its compressed data ends early");
        } catch (DataFormatException ex) {
            throw new CheckpointException(file + ": entry '" + e.name() + "' is corrupt: " + ex.getMessage(), ex);
        } finally {
            inf.end();
        }
        return produced;
    }
}
