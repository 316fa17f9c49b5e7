package dev.mm4j.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.Checkpoints;
import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.StateDictLoader;
import dev.mm4j.checkpoint.TorchCheckpoints;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Parameter;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Measures checkpoint loading of the full-size model: .pt (torch.save zip) and .safetensors side by side. */
@Command(
        name = "bench-load",
        mixinStandardHelpOptions = true,
        description = "Write the full-size FLAVA model's random weights as .pt and/or .safetensors, then load each into a "
                + "fresh model: file size, write / parse / load times, MB/s, RSS and peak RSS, and a check of a few tensors.")
public final class BenchLoadCommand implements Callable<Integer> {

    enum Format { pt, safetensors, both }

    @Option(names = "--format", description = "pt, safetensors or both (default: ${DEFAULT-VALUE})")
    Format format = Format.both;

    @Option(names = "--dir", description = "where to write the checkpoints (default: a temp dir)")
    Path dir;

    @Option(names = "--keep", description = "keep the checkpoint files (default: deleted afterwards)")
    boolean keep;

    @Option(names = "--classes", description = "answer classes of the classifier (default: ${DEFAULT-VALUE})")
    int classes = 3997;

    @Option(names = "--threads", description = "libtorch intra-op threads; 0 = all cores (default: ${DEFAULT-VALUE})")
    int threads = 0;

    /** One format's measurements. */
    private static final class Result {
        String name;
        Path file;
        long fileBytes;
        double writeS, parseS, loadS, totalS;
        long writePeak, buildRss, rssAfter, anonAfter, fileRssAfter, peak;
        String check;
    }

    @Override
    public Integer call() throws Exception {
        Hardware.configureThreads(threads);
        FlavaConfig config = FlavaConfig.fullSize(classes);
        List<Result> results = new ArrayList<>();
        if (format != Format.safetensors) results.add(result("pt"));
        if (format != Format.pt) results.add(result("safetensors"));

        boolean tempDir = dir == null;
        Path where = tempDir ? Files.createTempDirectory("mm4j-bench-load") : dir;
        Files.createDirectories(where);
        for (Result r : results) r.file = where.resolve("flava_full." + r.name);

        System.out.printf("JVM max heap %.2f GB; RSS at start %s%n", Runtime.getRuntime().maxMemory() / 1e9, gb(Hardware.rssBytes()));
        Map<String, float[]> originals = new LinkedHashMap<>();
        long params;
        try {
            // ---- build the model with random weights and write it in each format
            resetPeak();
            long t0 = System.nanoTime();
            try (NDManager manager = NDManager.newBaseManager()) {
                FlavaForClassification model = FlavaForClassification.create(config, manager);
                params = model.parameterCount();
                System.out.printf("built full-size model (%d classes): %,d parameters = %.1f MB of float32 weights in %.1f s;"
                        + " RSS %s%n", classes, params, params * 4 / 1e6, secs(t0), gb(Hardware.rssBytes()));
                Map<String, Parameter> named = model.namedParameters();
                for (String n : checkNames(named)) originals.put(n, named.get(n).array().toFloatArray());
                Map<String, NDArray> arrays = new LinkedHashMap<>();
                named.forEach((n, p) -> arrays.put(n, p.array()));
                for (Result r : results) {
                    resetPeak();
                    long w0 = System.nanoTime();
                    if (r.name.equals("pt")) {
                        TorchCheckpoints.writeNDArrays(r.file, arrays);
                    } else {
                        SafeTensors.writeNDArrays(r.file, arrays, Map.of());
                    }
                    r.writeS = secs(w0);
                    r.writePeak = Hardware.peakRssBytes();
                    r.fileBytes = Files.size(r.file);
                    System.out.printf("wrote %s (%.1f MB) in %.1f s%n", r.file, r.fileBytes / 1e6, r.writeS);
                }
            }
            gc();
            System.out.printf("model freed; RSS %s%n", gb(Hardware.rssBytes()));

            // ---- load each file into a fresh model
            for (Result r : results) {
                try (NDManager manager = NDManager.newBaseManager()) {
                    FlavaForClassification model = FlavaForClassification.create(config, manager);
                    r.buildRss = Hardware.rssBytes();
                    resetPeak();
                    long p0 = System.nanoTime();
                    try (StateDict sd = Checkpoints.read(r.file)) {
                        r.parseS = secs(p0);
                        if (sd.size() != model.namedParameters().size()) throw new IllegalStateException("tensor count differs");
                    }
                    long l0 = System.nanoTime();
                    StateDictLoader.Report report = StateDictLoader.load(model, r.file, true);
                    r.totalS = secs(l0); // load(model, file, strict) parses the file again, then copies
                    r.loadS = r.totalS - r.parseS;
                    r.peak = Hardware.peakRssBytes();
                    r.rssAfter = Hardware.rssBytes();
                    r.anonAfter = status("RssAnon:");
                    r.fileRssAfter = status("RssFile:");
                    List<String> bad = new ArrayList<>();
                    for (Map.Entry<String, float[]> e : originals.entrySet()) {
                        float[] got = model.namedParameters().get(e.getKey()).array().toFloatArray();
                        if (!Arrays.equals(e.getValue(), got)) bad.add(e.getKey());
                    }
                    r.check = (bad.isEmpty() ? "OK" : "FAIL " + bad) + " (" + originals.size() + " tensors compared; "
                            + report.loaded() + " loaded, exact=" + report.isExact() + ")";
                    System.out.printf("loaded %s in %.2f s%n", r.file.getFileName(), r.totalS);
                }
                gc();
            }
        } finally {
            if (!keep) {
                for (Result r : results) Files.deleteIfExists(r.file);
                if (tempDir) Files.deleteIfExists(where);
            }
        }

        // ---- report
        double modelMb = params * 4 / 1e6;
        System.out.println();
        System.out.printf("model weights: %,d parameters x 4 B = %.1f MB (%.2f GB)%n", params, modelMb, params * 4 / 1e9);
        String fmt = "%-38s" + "%20s".repeat(results.size()) + "%n";
        row(fmt, "", results, r -> r.name);
        row(fmt, "file size (MB)", results, r -> String.format("%.1f", r.fileBytes / 1e6));
        row(fmt, "  overhead vs weights (MB)", results, r -> String.format("%.3f", r.fileBytes / 1e6 - modelMb));
        row(fmt, "write time (s)", results, r -> String.format("%.2f", r.writeS));
        row(fmt, "peak RSS while writing (GB)", results, r -> gb(r.writePeak));
        row(fmt, "read/parse (open, index, header) (s)", results, r -> String.format("%.3f", r.parseS));
        row(fmt, "load into model (total - parse) (s)", results, r -> String.format("%.2f", r.loadS));
        row(fmt, "total load: StateDictLoader.load (s)", results, r -> String.format("%.2f", r.totalS));
        row(fmt, "load MB/s (file size / total)", results, r -> String.format("%.0f", r.fileBytes / 1e6 / r.totalS));
        row(fmt, "RSS with fresh model, before (GB)", results, r -> gb(r.buildRss));
        row(fmt, "RSS after load (GB)", results, r -> gb(r.rssAfter));
        row(fmt, "  of which anonymous / file (GB)", results, r -> gb(r.anonAfter) + " / " + gb(r.fileRssAfter));
        row(fmt, "peak RSS during load (GB)", results, r -> gb(r.peak));
        row(fmt, "  peak - before, in model sizes", results, r -> String.format("%.2fx", (r.peak - r.buildRss) / 1e6 / modelMb));
        row(fmt, "tensors equal the originals", results, r -> r.check.startsWith("OK") ? "OK" : "FAIL");
        for (Result r : results) System.out.println(r.name + ": " + r.check);
        System.out.println("(files were just written, so they are read from the page cache; peak RSS is VmHWM, reset via"
                + " /proc/self/clear_refs before each phase)");
        return results.stream().allMatch(r -> r.check.startsWith("OK")) ? 0 : 1;
    }

    private static Result result(String name) {
        Result r = new Result();
        r.name = name;
        return r;
    }

    private interface Cell { String of(Result r); }

    private static void row(String fmt, String label, List<Result> rs, Cell cell) {
        Object[] args = new Object[rs.size() + 1];
        args[0] = label;
        for (int i = 0; i < rs.size(); i++) args[i + 1] = cell.of(rs.get(i));
        System.out.printf(fmt, args);
    }

    /** The first, the largest, a middle and the last parameter. */
    private static List<String> checkNames(Map<String, Parameter> named) {
        List<String> names = new ArrayList<>(named.keySet());
        String largest = names.stream().max(Comparator.comparingLong(n -> named.get(n).size())).orElseThrow();
        return Stream.of(names.get(0), largest, names.get(names.size() / 2), names.get(names.size() - 1)).distinct().toList();
    }

    /** Resets the kernel's peak RSS (VmHWM) to the current RSS; no-op where /proc does not allow it. */
    private static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException | RuntimeException e) {
            // not Linux, or not allowed: the peak then covers the whole run
        }
    }

    private static long status(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return -1;
    }

    private static void gc() {
        System.gc();
        System.runFinalization();
        System.gc();
    }

    private static double secs(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    private static String gb(long bytes) {
        return bytes < 0 ? "n/a" : String.format("%.2f", bytes / 1e9);
    }
}
