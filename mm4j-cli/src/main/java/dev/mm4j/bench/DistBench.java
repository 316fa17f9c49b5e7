package dev.mm4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mm4j.data.Batch;
import dev.mm4j.data.Padding;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Precision;
import dev.mm4j.train.AdamW;
import dev.mm4j.train.DataParallelSync;
import dev.mm4j.train.GradientSync;
import dev.mm4j.train.TrainingStep;
import dev.mm4j.train.dist.Launcher;
import dev.mm4j.train.dist.ProcessGroup;
import dev.mm4j.train.dist.Rendezvous;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.Hardware;
import dev.mm4j.util.NativeHeap;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * {@code bench --nproc N}: the data-parallel fine-tuning train step (FLAVA for classification, random weights, batch
 * {@code b} per rank, the question padded to {@code questionTokens} with the padding masked, the production
 * {@link TrainingStep} with {@link DataParallelSync}) three ways, printed side by side: N ranks of 1 thread each (real
 * processes through {@link Launcher} and c10d, as {@code finetune --nproc N}), 1 process of N threads at the same global
 * batch (N micro-batches of b with gradient accumulation) and the all-reduce (average) of arrays of the model's
 * gradients' shapes in GB/s. With an {@link AnchorBench}, PyTorch DDP's rows (gloo, 2 processes x 1 thread) beside
 * ours and the s/step ratio. s/step is the median over {@code repeats} steps after a warm-up step.
 *
 * <p>The launching process ({@link #run}) starts the ranks with the same command line; each rank ({@link #rank}) writes
 * its figures to {@code $MM4J_BENCH_RESULT.rankR}, which the launching process reads and prints.
 */
public final class DistBench {
    /** Where a rank writes its figures (the launching process sets it; each rank appends {@code .rankR}). */
    public static final String RESULT = "MM4J_BENCH_RESULT";
    /** How long a rank waits for the others before the bench fails (a full-size step is seconds). */
    public static final Duration TIMEOUT = Duration.ofMinutes(10);

    /**
     * @param config the model (classification head of {@code numClasses})
     * @param batchPerRank samples per rank per step (the 1-process row: one micro-batch of it per rank)
     * @param questionTokens the question's length incl. [CLS]/[SEP], padded to it (dynamic mode)
     * @param repeats timed steps after the warm-up step; all-reduce repetitions after a warm-up one
     * @param precisions fp32 and/or bf16
     * @param threadsPerRank libtorch's intra-op threads per rank (the 1-process row gets N times as many)
     */
    public record Options(FlavaConfig config, int batchPerRank, int questionTokens, int repeats, List<Precision> precisions,
            int threadsPerRank, List<String> variants) {
        public Options {
            if (batchPerRank < 1 || repeats < 1 || threadsPerRank < 1) {
                throw new IllegalArgumentException("batch, repeats and threads must be at least 1");
            }
            for (Precision p : precisions) {
                if (p != Precision.FP32 && p != Precision.BF16) {
                    throw new IllegalArgumentException("bench --nproc times training: --precision fp32 and/or bf16, not "
                            + p.code());
                }
            }
            for (String v : variants) {
                if (!v.equals("default") && !v.equals("keep")) {
                    throw new IllegalArgumentException("bench --nproc: --variants default and/or keep, not " + v);
                }
            }
        }

        public Options(FlavaConfig config, int batchPerRank, int questionTokens, int repeats, List<Precision> precisions,
                int threadsPerRank) {
            this(config, batchPerRank, questionTokens, repeats, precisions, threadsPerRank, List.of("default"));
        }

        /** The timed setups in order: each precision with each variant, {@code keep} for bf16 only (as bench's). */
        List<Setup> setups() {
            List<Setup> setups = new ArrayList<>();
            for (Precision p : precisions) {
                for (String v : variants) {
                    if (v.equals("default") || p == Precision.BF16) {
                        setups.add(new Setup(p, v.equals("keep")));
                    }
                }
            }
            return setups;
        }
    }

    /** A precision, and whether bf16 keeps every layer's activations ({@code bf16_keep_activations}). */
    record Setup(Precision precision, boolean keep) {
        String code() {
            return precision.code() + (keep ? "-keep" : "");
        }
    }

    private final Options o;
    private final PrintStream out;

    public DistBench(Options options, PrintStream out) {
        this.o = options;
        this.out = out;
    }

    /** One timed setup: median and fastest s/step, peak RSS per process (bytes). */
    record Timing(double median, double min, List<Long> peakRss) {}

    /**
     * The launching process: runs {@code command} (this bench's own command line) as {@code nproc} ranks, then the
     * one-process row here, then the anchors (when given), and prints the table.
     */
    public void run(List<String> command, int nproc, NDManager manager, AnchorBench anchors)
            throws IOException, InterruptedException {
        long params = new FlavaForClassification(o.config()).parameterCount();
        int global = o.batchPerRank() * nproc;
        out.printf("data-parallel bench: FLAVA for classification (%,d parameters, %d classes, random weights), batch %d per "
                + "rank, question padded to %d tokens, median s/step over %d steps after a warm-up step%n", params,
                o.config().numClasses, o.batchPerRank(), o.questionTokens(), o.repeats());
        Path dir = Files.createTempDirectory("mm4j-bench-nproc");
        Path prefix = dir.resolve("rank");
        List<JsonNode> ranks = new ArrayList<>();
        try {
            out.printf("%n1. mm4j, %d processes x %d thread(s) (the launcher and c10d of finetune --nproc):%n", nproc,
                    o.threadsPerRank());
            int rc = Launcher.run(command, nproc, TIMEOUT, Map.of(RESULT, prefix.toString()), out);
            if (rc != 0) {
                throw new IllegalStateException("bench --nproc: a rank failed with exit code " + rc);
            }
            ObjectMapper json = new ObjectMapper();
            for (int r = 0; r < nproc; r++) {
                Path f = Path.of(prefix + "." + r);
                if (!Files.isRegularFile(f)) {
                    throw new IllegalStateException("bench --nproc: rank " + r + " wrote no result (" + f + ")");
                }
                ranks.add(json.readTree(f.toFile()));
            }
        } finally {
            for (int r = 0; r < nproc; r++) {
                Files.deleteIfExists(Path.of(prefix + "." + r));
            }
            Files.deleteIfExists(dir);
        }
        int oneThreads = Hardware.configureThreads(nproc * o.threadsPerRank());
        out.printf("2. mm4j, 1 process x %d threads, %d micro-batches of %d with gradient accumulation...%n", oneThreads,
                nproc, o.batchPerRank());
        List<Timing> one = new ArrayList<>();
        for (Setup setup : o.setups()) {
            one.add(train(manager, setup, nproc, 0, GradientSync.NONE));
        }
        List<JsonNode> anchorTrain = new ArrayList<>();
        JsonNode anchorReduce = null;
        String anchorError = null;
        if (anchors != null) {
            if (nproc != 2) {
                anchorError = "the DDP anchor runs 2 processes only; --nproc is " + nproc;
            } else {
                out.println("3. PyTorch DDP (tools/anchors/ddp_anchor.py, gloo, 2 processes x 1 thread)...");
                String size = fullSize() ? "full" : "tiny";
                try {
                    for (Precision p : o.precisions()) {
                        List<JsonNode> r = anchors.ddp(List.of("train", String.valueOf(o.repeats() + 1),
                                String.valueOf(o.batchPerRank()), p.code(), size));
                        anchorTrain.add(merged(r));
                    }
                    anchorReduce = merged(anchors.ddp(List.of("allreduce", String.valueOf(params),
                            String.valueOf(o.repeats()))));
                } catch (IOException e) {
                    anchorError = e.getMessage();
                }
            }
        }

        out.printf("%n%-35s %-9s %-13s %6s %9s %9s %10s  %s%n", "setup", "prec", "batch", "global", "s/step", "min s",
                "samples/s", "peak RSS per process");
        List<Setup> setups = o.setups();
        for (int i = 0; i < setups.size(); i++) {
            Setup setup = setups.get(i);
            Precision p = setup.precision();
            String keep = setup.keep() ? " keep" : "";
            Timing ours = fromRanks(ranks, setup.code());
            row(String.format("mm4j %d ranks x %d thread%s", nproc, o.threadsPerRank(), keep), setup.code(),
                    o.batchPerRank() + "/rank", global, ours);
            row(String.format("mm4j 1 process x %d threads%s", oneThreads, keep), setup.code(),
                    nproc + "x" + o.batchPerRank() + " accum", global, one.get(i));
            int a = o.precisions().indexOf(p);
            if (a < anchorTrain.size()) {
                JsonNode anchor = anchorTrain.get(a);
                List<Long> rss = new ArrayList<>();
                // the anchor's peak_rss_mb is ru_maxrss / 1024: MiB
                anchor.path("peak_rss_mb").forEach(v -> rss.add((long) (v.asDouble() * (1 << 20))));
                Timing t = new Timing(anchor.path("median").asDouble(), anchor.path("min").asDouble(), rss);
                row("pytorch DDP 2 ranks x 1 thread", p.code(), o.batchPerRank() + "/rank", global, t);
                out.printf("%-35s %-9s pytorch DDP / mm4j%s s/step: %.2fx (above 1: mm4j faster)%n", "", p.code(), keep,
                        t.median() / ours.median());
            }
        }
        JsonNode reduce = ranks.get(0).get("allreduce");
        double gb = reduce.get("floats").asLong() * 4 / 1e9;
        out.printf("%nall-reduce (average) of %,d floats (%.2f GB) between %d processes, %d repetitions after a warm-up:%n",
                reduce.get("floats").asLong(), gb, nproc, o.repeats());
        out.printf("%-52s %8s %8s %10s %10s%n", "", "best s", "mean s", "best GB/s", "mean GB/s");
        out.printf("%-52s %8.4f %8.4f %10.2f %10.2f%n", "mm4j c10d gloo (the gradients' shapes, 25 MB buckets)",
                reduce.get("best").asDouble(), reduce.get("mean").asDouble(), gb / reduce.get("best").asDouble(),
                gb / reduce.get("mean").asDouble());
        if (anchorReduce != null) {
            out.printf("%-52s %8.4f %8.4f %10.2f %10.2f%n", "pytorch gloo dist.all_reduce (one flat tensor)",
                    anchorReduce.get("min").asDouble(), anchorReduce.get("mean").asDouble(),
                    gb / anchorReduce.get("min").asDouble(), gb / anchorReduce.get("mean").asDouble());
        }
        if (!anchorTrain.isEmpty() && !fullSize()) {
            out.println("(not full size: the DDP anchor ran its own tiny model, a check of the script; compare full size only)");
        }
        if (anchorError != null) {
            out.printf("(PyTorch DDP not measured: %s)%n", anchorError);
        }
    }

    /** Whether the model is FLAVA's full size (the anchor's {@code full}); else the anchor runs its {@code tiny}. */
    private boolean fullSize() {
        FlavaConfig full = FlavaConfig.fullSize(o.config().numClasses);
        FlavaConfig c = o.config();
        return c.imageHiddenSize == full.imageHiddenSize && c.imageNumHiddenLayers == full.imageNumHiddenLayers
                && c.textNumHiddenLayers == full.textNumHiddenLayers && c.imageSize == full.imageSize
                && c.multimodalNumHiddenLayers == full.multimodalNumHiddenLayers;
    }

    /** Rank {@code rendezvous.rank()}: joins the group, times the train steps and the all-reduce, writes its figures. */
    public void rank(Rendezvous rendezvous, NDManager manager) throws IOException {
        String result = System.getenv(RESULT);
        if (result == null) {
            throw new IllegalStateException("bench --nproc: " + RESULT + " is not set (the launching bench sets it)");
        }
        Hardware.configureThreads(o.threadsPerRank());
        ObjectMapper json = new ObjectMapper();
        ObjectNode r = json.createObjectNode();
        r.put("rank", rendezvous.rank());
        try (ProcessGroup group = ProcessGroup.open(rendezvous)) {
            DataParallelSync sync = new DataParallelSync(group);
            for (Setup setup : o.setups()) {
                if (rendezvous.rank() == 0) {
                    out.printf("  %s: timing the %d-rank train step...%n", setup.code(), rendezvous.worldSize());
                }
                Timing t = train(manager, setup, 1, rendezvous.rank(), sync);
                ObjectNode row = r.putObject(setup.code());
                row.put("median", t.median());
                row.put("min", t.min());
                row.put("peak_rss", t.peakRss().get(0));
            }
            r.set("allreduce", allReduce(manager, sync));
        }
        AtomicFiles.writeString(Path.of(result + "." + rendezvous.rank()), json.writeValueAsString(r));
    }

    /**
     * Times the train step of a fresh model (the same random weights on every rank) on {@code micro} micro-batches of
     * {@code batchPerRank} ({@code variant} picks the data: a rank's own); the peak RSS is this process's.
     */
    private Timing train(NDManager manager, Setup setup, int micro, int variant, GradientSync sync) {
        FlavaConfig cfg = o.config().copy();
        cfg.maskTextPaddingInMultimodal = Padding.DYNAMIC.masksTextInMultimodal();
        cfg.precision = setup.precision();
        cfg.bf16KeepActivations = setup.keep();
        NativeHeap.trim();
        TrainBench.resetPeakRss();
        try (NDManager m = manager.newSubManager()) {
            Engine.getInstance().setRandomSeed(0);
            FlavaForClassification model = FlavaForClassification.create(cfg, m);
            try (AdamW optimizer = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                List<Batch> batches = new ArrayList<>();
                for (int k = 0; k < micro; k++) {
                    batches.add(TrainBench.batch(cfg, o.batchPerRank(), o.questionTokens(), o.questionTokens(),
                            variant + k));
                }
                TrainingStep<Batch> step = new TrainingStep<>(model, optimizer, m, sync);
                double[] t = new double[o.repeats()];
                for (int i = -1; i < o.repeats(); i++) {
                    long s = System.nanoTime();
                    if (!step.run(batches, 1e-5, 0, false, true).applied()) {
                        throw new IllegalStateException("bench --nproc: the loss is not finite");
                    }
                    if (i >= 0) {
                        t[i] = (System.nanoTime() - s) / 1e9;
                    }
                }
                Arrays.sort(t);
                return new Timing(t[t.length / 2], t[0], List.of(Hardware.peakRssBytes()));
            }
        }
    }

    /** The average over the group of arrays of the model's gradients' shapes: best and mean seconds. */
    private ObjectNode allReduce(NDManager manager, DataParallelSync sync) {
        try (NDManager m = manager.newSubManager()) {
            List<NDArray> arrays = new ArrayList<>();
            long floats = 0;
            for (Parameter p : new FlavaForClassification(o.config()).namedParameters().values()) {
                arrays.add(m.zeros(p.shape()));
                floats += p.shape().size();
            }
            double best = Double.MAX_VALUE;
            double sum = 0;
            for (int i = -1; i < o.repeats(); i++) {
                long s = System.nanoTime();
                sync.average(arrays);
                double sec = (System.nanoTime() - s) / 1e9;
                if (i >= 0) {
                    best = Math.min(best, sec);
                    sum += sec;
                }
            }
            ObjectNode r = new ObjectMapper().createObjectNode();
            r.put("floats", floats);
            r.put("best", best);
            r.put("mean", sum / o.repeats());
            return r;
        }
    }

    /** Our ranks' figures for one precision: rank 0's times (the ranks step together), every rank's peak RSS. */
    private static Timing fromRanks(List<JsonNode> ranks, String precision) {
        JsonNode r0 = ranks.get(0).get(precision);
        List<Long> rss = new ArrayList<>();
        for (JsonNode r : ranks) {
            rss.add(r.get(precision).get("peak_rss").asLong());
        }
        return new Timing(r0.get("median").asDouble(), r0.get("min").asDouble(), rss);
    }

    /** The anchor's ranks as one record: rank 0's median / min / mean, every rank's peak RSS (MiB). */
    private static JsonNode merged(List<JsonNode> ranks) {
        ObjectNode r = new ObjectMapper().createObjectNode();
        JsonNode r0 = ranks.get(0);
        r.put("median", r0.has("step_s_median_after_first") ? r0.get("step_s_median_after_first").asDouble()
                : r0.path("best_s").asDouble());
        r.put("min", r0.has("step_s_min_after_first") ? r0.get("step_s_min_after_first").asDouble()
                : r0.path("best_s").asDouble());
        r.put("mean", r0.path("mean_s").asDouble());
        ArrayNode rss = r.putArray("peak_rss_mb");
        ranks.forEach(x -> rss.add(x.path("peak_rss_mb").asDouble()));
        return r;
    }

    private void row(String setup, String p, String batch, int global, Timing t) {
        StringBuilder rss = new StringBuilder();
        for (long b : t.peakRss()) {
            rss.append(rss.length() == 0 ? "" : " ").append(String.format("%.2fG", b / 1e9));
        }
        out.printf("%-35s %-9s %-13s %6d %9.3f %9.3f %10.2f  %s%n", setup, p, batch, global, t.median(), t.min(),
                global / t.median(), rss);
    }
}
