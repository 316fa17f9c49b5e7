package dev.mm4j.spark;

import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The model bundles loaded in this JVM, one per (bundle folder, device, precision): an executor loads a bundle the
 * first time one of its tasks needs it, and every later task in that JVM (concurrent ones included) uses
 * the same weights. Inference only reads the parameters, so tasks share them safely; each task owns its
 * per-batch memory through its own {@link dev.mm4j.flava.ModelStep}. Entries live until the JVM ends
 * (an executor's life), or until {@link #clear()}.
 */
public final class BundleCache {
    private BundleCache() {}

    private record Key(String path, String device, String precision) {}

    /** A loaded bundle and the manager that owns its weights. */
    record Entry(NDManager manager, ModelBundle.Loaded bundle) {}

    private static final ConcurrentHashMap<Key, Entry> LOADED = new ConcurrentHashMap<>();
    private static final AtomicInteger LOADS = new AtomicInteger();

    /**
     * The bundle at {@code path} on {@code device} (null = cpu / MM4J_DEVICE) in {@code precision} (null = the one it
     * was trained in), loading it on first use.
     */
    static Entry get(String path, String device, String precision) {
        Key key = new Key(Path.of(path).toAbsolutePath().normalize().toString(), device == null ? "" : device,
                precision == null ? "" : precision);
        return LOADED.computeIfAbsent(key, k -> {
            NDManager manager = NDManager.newBaseManager(Hardware.device(device));
            try {
                ModelBundle.Loaded b = ModelBundle.load(Path.of(k.path()), manager, precision);
                LOADS.incrementAndGet();
                return new Entry(manager, b);
            } catch (IOException e) {
                manager.close();
                throw new UncheckedIOException(e.getMessage(), e);
            } catch (RuntimeException e) {
                manager.close();
                throw e;
            }
        });
    }

    /** How many bundles this JVM has loaded since it started (or since {@link #clear()}). */
    public static int loads() {
        return LOADS.get();
    }

    /** Frees every loaded bundle (benchmarks: each run pays its own load). Not while tasks run. */
    public static synchronized void clear() {
        for (Entry e : LOADED.values()) {
            e.bundle().close();
            e.manager().close();
        }
        LOADED.clear();
        LOADS.set(0);
    }
}
