package dev.mm4j.train.dist;

import ai.djl.engine.Engine;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;

/**
 * The native part of distributed training ({@code libmm4j_c10d.so}, built from {@code src/main/native} by the
 * {@code c10d-native} profile): libtorch's own c10d ({@code TCPStore}, {@code ProcessGroupGloo}) inside the libtorch
 * that DJL has loaded. Loaded on first use only, after DJL's PyTorch engine, so one-process use never touches it.
 */
final class C10d {
    /** The one libtorch version whose c10d declarations the native part is written against. */
    static final String LIBTORCH_VERSION = "2.7.1";

    private static boolean loaded;

    private C10d() {}

    /** The platform's folder name, or a clear error where the native part is not made. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (os.startsWith("linux") && (arch.equals("amd64") || arch.equals("x86_64"))) {
            return "linux-x86_64";
        }
        if (os.startsWith("linux") && arch.equals("aarch64")) {
            return "linux-aarch64";
        }
        throw new UnsupportedOperationException("distributed training runs on Linux x86-64 and aarch64 only, not on "
                + System.getProperty("os.name") + " " + arch);
    }

    /** Loads the native part once (after DJL's libtorch, whose copy it binds to). */
    static synchronized void load() {
        if (loaded) {
            return;
        }
        Engine engine = Engine.getEngine("PyTorch"); // DJL loads its libtorch first
        if (!LIBTORCH_VERSION.equals(engine.getVersion())) {
            throw new UnsupportedOperationException("distributed training needs DJL's libtorch " + LIBTORCH_VERSION
                    + " (its native part is built for that version); the engine is PyTorch " + engine.getVersion());
        }
        String platform = platform();
        String resource = "native/" + platform + "/libmm4j_c10d.so";
        try (InputStream in = C10d.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsupportedOperationException("distributed training's native part was not built for "
                        + platform + " (no " + resource + " next to " + C10d.class.getName() + "): build mm4j-core on "
                        + "this machine with g++ installed (Debian: apt-get install g++), which makes it");
            }
            Path dir = Files.createTempDirectory("mm4j-c10d");
            Path lib = dir.resolve("libmm4j_c10d.so");
            Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
            lib.toFile().deleteOnExit();
            dir.toFile().deleteOnExit();
            System.load(lib.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack distributed training's native part", e);
        }
        loaded = true;
    }

    /** The distinct files named {@code libtorch_cpu.so} mapped into this process (/proc/self/maps). */
    static List<String> mappedLibtorch() {
        try {
            return Files.readAllLines(Paths.get("/proc/self/maps")).stream()
                    .map(l -> l.substring(l.lastIndexOf(' ') + 1))
                    .filter(p -> p.endsWith("/libtorch_cpu.so"))
                    .distinct()
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/maps", e);
        }
    }

    /** @return a native Group (store and process group), freed by {@link #closeGroup} */
    static native long openGroup(String masterAddr, int masterPort, String selfAddr, int rank, int worldSize,
            long timeoutMs, int threads);

    static native void closeGroup(long group);

    /** Starts an in-place sum all-reduce of each at::Tensor* handle. @return a pending work, freed by awaitWork */
    static native long startAllReduceSum(long group, long[] tensorHandles);

    /** Waits for a started work and frees it; throws IllegalStateException when the collective failed. */
    static native void awaitWork(long work);
}
