package dev.mm4j.inference;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Image-encoder outputs by image content hash, least recently used evicted first, bounded in bytes. The
 * arrays live on the cache's own manager (handed over from a step with {@code ModelStep.keep}) and are
 * freed on eviction and on close. Thread-safe; arrays are read by {@link VqaModel} under its model lock, the only place that evicts.
 */
final class ImageCache implements AutoCloseable {
    private final NDManager manager;
    private final long maxBytes;
    private final LinkedHashMap<String, NDArray> entries = new LinkedHashMap<>(16, 0.75f, true);
    private long bytes;
    private long hits;
    private long misses;

    ImageCache(NDManager parent, long maxBytes) {
        this.manager = parent.newSubManager();
        this.maxBytes = maxBytes;
    }

    NDManager manager() {
        return manager;
    }

    boolean enabled() {
        return maxBytes > 0;
    }

    /** The cached hidden states (1, L, D) for {@code key}, or null; counts a hit or a miss. */
    synchronized NDArray get(String key) {
        NDArray a = entries.get(key);
        if (a != null) {
            hits++;
        } else {
            misses++;
        }
        return a;
    }

    synchronized boolean contains(String key) {
        return entries.containsKey(key);
    }

    /** Adds an array already attached to {@link #manager()}; evicts the least recently used to stay in bounds. */
    synchronized void put(String key, NDArray array) {
        long size = array.size() * array.getDataType().getNumOfBytes();
        if (size > maxBytes) {
            array.close();
            return;
        }
        NDArray old = entries.put(key, array);
        if (old != null) {
            bytes -= old.size() * old.getDataType().getNumOfBytes();
            old.close();
        }
        bytes += size;
        Iterator<Map.Entry<String, NDArray>> it = entries.entrySet().iterator();
        while (bytes > maxBytes && it.hasNext()) {
            Map.Entry<String, NDArray> e = it.next();
            if (e.getKey().equals(key)) {
                continue;
            }
            bytes -= e.getValue().size() * e.getValue().getDataType().getNumOfBytes();
            e.getValue().close();
            it.remove();
        }
    }

    synchronized long bytes() {
        return bytes;
    }

    synchronized int size() {
        return entries.size();
    }

    synchronized long hits() {
        return hits;
    }

    synchronized long misses() {
        return misses;
    }

    @Override
    public synchronized void close() {
        entries.clear();
        bytes = 0;
        manager.close();
    }
}
