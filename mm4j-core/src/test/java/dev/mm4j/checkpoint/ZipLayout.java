package dev.mm4j.checkpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where things are in a small (non-ZIP64) zip archive's bytes, read independently of {@link ZipIndex}: for tests
 * that corrupt a chosen field.
 */
record ZipLayout(long centralDirectory, long endOfCentralDirectory, Map<String, Entry> entries) {

    /** One entry: its central directory record, local header and data positions. */
    record Entry(String name, int centralRecord, int localHeader, int data, int compressedSize) {}

    static ZipLayout of(byte[] zip) {
        ByteBuffer b = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
        int eocd = -1;
        for (int i = zip.length - 22; i >= 0; i--) {
            if (b.getInt(i) == 0x06054b50) {
                eocd = i;
                break;
            }
        }
        if (eocd < 0) throw new IllegalArgumentException("no end of central directory");
        int count = b.getShort(eocd + 10) & 0xffff;
        int cd = b.getInt(eocd + 16);
        Map<String, Entry> entries = new LinkedHashMap<>();
        int p = cd;
        for (int i = 0; i < count; i++) {
            int nameLen = b.getShort(p + 28) & 0xffff, extra = b.getShort(p + 30) & 0xffff, comment = b.getShort(p + 32) & 0xffff;
            int comp = b.getInt(p + 20);
            int local = b.getInt(p + 42);
            String name = new String(zip, p + 46, nameLen, StandardCharsets.UTF_8);
            int data = local + 30 + (b.getShort(local + 26) & 0xffff) + (b.getShort(local + 28) & 0xffff);
            entries.put(name, new Entry(name, p, local, data, comp));
            p += 46 + nameLen + extra + comment;
        }
        return new ZipLayout(cd, eocd, entries);
    }

    /** The entry whose name ends with {@code suffix}. */
    Entry endingWith(String suffix) {
        return entries.values().stream().filter(e -> e.name().endsWith(suffix)).findFirst().orElseThrow();
    }
}
