package dev.mm4j.serve;

import java.nio.file.attribute.BasicFileAttributes;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Encoded thumbnails by image hash and size, least recently used evicted first, bounded in bytes. An entry holds while
 * its file's size and modification time are those it was made from. Thread-safe.
 */
final class ThumbnailCache {
    private record Entry(byte[] bytes, long fileSize, long fileModified) {}

    private final long maxBytes;
    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
    private long bytes;

    ThumbnailCache(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** The thumbnail for {@code key} made from a file that still has these attributes, or null. */
    synchronized byte[] get(String key, BasicFileAttributes file) {
        Entry e = entries.get(key);
        if (e == null) {
            return null;
        }
        if (e.fileSize != file.size() || e.fileModified != file.lastModifiedTime().toMillis()) {
            entries.remove(key);
            bytes -= e.bytes.length;
            return null;
        }
        return e.bytes;
    }

    synchronized void put(String key, byte[] thumbnail, BasicFileAttributes file) {
        if (thumbnail.length > maxBytes) {
            return;
        }
        Entry old = entries.put(key, new Entry(thumbnail, file.size(), file.lastModifiedTime().toMillis()));
        bytes += thumbnail.length - (old == null ? 0 : old.bytes.length);
        Iterator<Map.Entry<String, Entry>> it = entries.entrySet().iterator();
        while (bytes > maxBytes && it.hasNext()) {
            Map.Entry<String, Entry> e = it.next();
            if (!e.getKey().equals(key)) {
                bytes -= e.getValue().bytes.length;
                it.remove();
            }
        }
    }

    synchronized int size() {
        return entries.size();
    }
}
