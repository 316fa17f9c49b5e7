package dev.mm4j.bench;

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
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Checkpoint loading of the full-size model: writes its random weights as .pt (torch.save zip) and/or
 * .safetensors, loads each into a fresh model, and prints sizes, write / parse / load times, MB/s, RSS and
 * peak RSS side by side, with a check that a few tensors came back exactly.
 */
public final class LoadBench {

    /** Which files to measure. */
    public enum Format { pt, safetensors, both }

    private final Format format;
    private final Path dir;
    private final boolean keep;
    private final int classes;
    private final PrintStream out;

    /** @param dir where to write the files (null: a temp folder) @param keep keep the files afterwards */
    public LoadBench(Format format, Path dir, boolean keep, int classes, PrintStream out) {
        this.format = format;
        this.dir = dir;
        this.keep = keep;
        this.classes = classes;
        this.out = out;
    }

    /** One format's measurements. */
    private static final class Result {
        String name;
        Path file;
        long fileBytes;
        double writeS, parseS, loadS, totalS;
        long writePeak, buildRss, rssAfter, anonAfter, fileRssAfter, peak;
        String check;
    }

    /** Runs the benchmark; true when every format loaded back the tensors exactly. */
    public boolean run() throws IOException {
        FlavaConfig config = FlavaConfig.fullSize(classes);
        List<Result> results = new ArrayList<>();
        if (format != Format.safetensors) results.add(result("pt"));
        if (format != Format.pt) results.add(result("safetensors"));

        boolean tempDir = dir == null;
        Path where = tempDir ? Files.createTempDirectory("mm4j-bench-load") : dir;
        Files.createDirectories(where);
        for (Result r : results) r.file = where.resolve("flava_full." + r.name);

        out.printf("JVM max heap %.2f GB; RSS at start %s%n", Runtime.getRuntime().maxMemory() / 1e9, gb(Hardware.rssBytes()));
        Map<String, float[]> originals = new LinkedHashMap<>();
        long params;
        try {
            // ---- build the model with random weights and write it in each format
            TrainBench.resetPeakRss();
            long t0 = System.nanoTime();
            try (NDManager manager = NDManager.newBaseManager()) {
                FlavaForClassification model = FlavaForClassification.create(config, manager);
                params = model.parameterCount();
                out.printf("built full-size model (%d classes): %,d parameters = %.1f MB of float32 weights in %.1f s;"
                        + " RSS %s%n", classes, params, params * 4 / 1e6, secs(t0), gb(Hardware.rssBytes()));
                Map<String, Parameter> named = model.namedParameters();
                for (String n : checkNames(named)) originals.put(n, named.get(n).array().toFloatArray());
                Map<String, NDArray> arrays = new LinkedHashMap<>();
                named.forEach((n, p) -> arrays.put(n, p.array()));
                for (Result r : results) {
                    TrainBench.resetPeakRss();
                    long w0 = System.nanoTime();
                    if (r.name.equals("pt")) {
                        TorchCheckpoints.writeNDArrays(r.file, arrays);
                    } else {
                        SafeTensors.writeNDArrays(r.file, arrays, Map.of());
                    }
                    r.writeS = secs(w0);
                    r.writePeak = Hardware.peakRssBytes();
                    r.fileBytes = Files.size(r.file);
                    out.printf("wrote %s (%.1f MB) in %.1f s%n", r.file, r.fileBytes / 1e6, r.writeS);
                }
            }
            gc();
            out.printf("model freed; RSS %s%n", gb(Hardware.rssBytes()));

            // ---- load each file into a fresh model
            for (Result r : results) {
                try (NDManager manager = NDManager.newBaseManager()) {
                    FlavaForClassification model = FlavaForClassification.create(config, manager);
                    r.buildRss = Hardware.rssBytes();
                    TrainBench.resetPeakRss();
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
                    out.printf("loaded %s in %.2f s%n", r.file.getFileName(), r.totalS);
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
        out.println();
        out.printf("model weights: %,d parameters x 4 B = %.1f MB (%.2f GB)%n", params, modelMb, params * 4 / 1e9);
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
        for (Result r : results) out.println(r.name + ": " + r.check);
        out.println("(files were just written, so they are read from the page cache; peak RSS is VmHWM, reset via"
                + " /proc/self/clear_refs before each phase)");
        return results.stream().allMatch(r -> r.check.startsWith("OK"));
    }

    private static Result result(String name) {
        Result r = new Result();
        r.name = name;
        return r;
    }

    private interface Cell { String of(Result r); }

    private void row(String fmt, String label, List<Result> rs, Cell cell) {
        Object[] args = new Object[rs.size() + 1];
        args[0] = label;
        for (int i = 0; i < rs.size(); i++) args[i + 1] = cell.of(rs.get(i));
        out.printf(fmt, args);
    }

    /** The first, the largest, a middle and the last parameter. */
    private static List<String> checkNames(Map<String, Parameter> named) {
        List<String> names = new ArrayList<>(named.keySet());
        String largest = names.stream().max(Comparator.comparingLong(n -> named.get(n).size())).orElseThrow();
        return Stream.of(names.get(0), largest, names.get(names.size() / 2), names.get(names.size() - 1)).distinct().toList();
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
