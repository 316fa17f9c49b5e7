package dev.mm4j.checkpoint;

import java.io.Closeable;
import java.io.IOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Named tensors in file order. Keeps the file it was read from open until {@link #close()}; tensors of a
 * memory-mapped file remain readable after close only as long as the JVM keeps the mapping, so copy what you
 * need (e.g. into NDArrays) before closing.
 */
public final class StateDict implements AutoCloseable {
    private final Map<String, HostTensor> tensors;
    private final Map<String, String> metadata;
    private final Closeable resource;

    StateDict(LinkedHashMap<String, HostTensor> tensors, Map<String, String> metadata, Closeable resource) {
        this.tensors = Collections.unmodifiableMap(tensors);
        this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        this.resource = resource;
    }

    /** Tensor names in file order. */
    public Set<String> names() { return tensors.keySet(); }

    /** The tensor called {@code name}, or null. */
    public HostTensor get(String name) { return tensors.get(name); }

    public boolean contains(String name) { return tensors.containsKey(name); }

    public int size() { return tensors.size(); }

    /** Unmodifiable name to tensor map in file order. */
    public Map<String, HostTensor> asMap() { return tensors; }

    /** String metadata (safetensors {@code __metadata__}); empty for torch files. */
    public Map<String, String> metadata() { return metadata; }

    @Override
    public void close() throws IOException {
        if (resource != null) resource.close();
    }
}
