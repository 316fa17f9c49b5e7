package dev.mm4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.mm4j.data.Batch;
import dev.mm4j.data.Padding;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaFlops;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.flava.RequiredEmbedding;
import dev.mm4j.train.AdamW;
import dev.mm4j.train.TrainingStep;
import dev.mm4j.util.Hardware;
import dev.mm4j.util.NativeHeap;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Precision;
import dev.mm4j.nn.TorchOps;
import java.util.EnumMap;
import java.util.Map;

/**
 * The training/inference benchmark: this machine's float32 matmul peak and memory bandwidth through
 * libtorch, then FLAVA train steps (forward + backward + AdamW, the production {@link TrainingStep}) and
 * inference per padding mode, variant and batch size, with FLOP rates against the peak and peak RSS;
 * optionally where a step's time and memory go.
 *
 * <p>Variants run side by side, each with its own model and optimizer, one after the other (the freed
 * memory is returned to the system in between, so each peak RSS is that variant's own): {@code baseline}
 * (the previous behaviour: AdamW as a decay pass plus libtorch's Adam op, gradients kept and zeroed),
 * {@code default} (one-pass AdamW: libtorch's fused kernel; gradients released after the step), {@code checkpointing} (default
 * plus activation checkpointing per transformer layer) and {@code keep} (default, bf16 keeping every layer's activations:
 * {@code bf16_keep_activations}).
 */
public final class TrainBench {

    /**
     * @param modes tutorial (text padded to max positions, padding attended) and/or dynamic (padded to
     *     {@code questionTokens}, padding masked)
     * @param sweep dynamic-mode training batch sizes for a samples/s sweep (may be empty)
     */
    public record Options(FlavaConfig config, List<String> modes, List<Integer> batchSizes, List<Integer> sweep,
            int repeats, int questionTokens, boolean skipTrain, boolean breakdown, List<String> variants,
            List<Precision> precisions) {}

    /** The variants a bench can compare; see the class comment. */
    public static final List<String> VARIANTS = List.of("baseline", "default", "checkpointing", "keep");

    private double copyGbPerS;

    private final Options o;
    private final PrintStream out;

    public TrainBench(Options options, PrintStream out) {
        this.o = options;
        this.out = out;
    }

    public void run(NDManager manager, int threads) {
        out.printf("libtorch %s, %d intra-op threads, %d cores%n", Engine.getInstance().getVersion(), threads,
                Runtime.getRuntime().availableProcessors());
        Map<Precision, Double> peaks = new EnumMap<>(Precision.class);
        for (Precision p : o.precisions()) {
            Peak peak = matmulPeak(manager, p);
            peaks.put(p, peak.gflops());
            out.printf("%s peak: %s, the best of 7 shapes (2048 and 1024 cubes, the model's)%n", switch (p) {
                case FP32 -> "float32 matmul";
                case BF16 -> "bfloat16 matmul";
                case INT8 -> "int8 linear (oneDNN, its input quantized per call)";
            }, peak.describe());
        }
        copyGbPerS = copyBandwidth(manager);
        out.printf("memory bandwidth, libtorch copy of 512 MiB: %.1f GB/s read + written (best of 5)%n%n", copyGbPerS);
        out.printf("model: %,d parameters%n%n", new FlavaForClassification(o.config()).parameterCount());
        for (String v : o.variants()) {
            if (!VARIANTS.contains(v)) {
                throw new IllegalArgumentException("unknown variant " + v + " " + VARIANTS);
            }
        }
        out.printf("%-9s %-13s %-5s %5s %5s %6s %9s %9s %10s %10s %9s %6s %8s%n", "mode", "variant", "prec", "batch", "text", "phase",
                "s/step", "min s", "samples/s", "GFLOP/step", "GFLOP/s", "%peak", "peakRSS");
        for (String mode : o.modes()) {
            for (String variant : o.variants()) {
                for (Precision p : o.precisions()) {
                    runMode(manager, mode, variant, p, o.batchSizes(), peaks.get(p), !o.skipTrain() && p != Precision.INT8);
                }
            }
        }
        if (o.precisions().contains(Precision.FP32)) {
            for (Precision p : o.precisions()) {
                if (p != Precision.FP32) {
                    for (String mode : o.modes()) {
                        fidelity(manager, mode, p);
                    }
                }
            }
        }
        if (!o.sweep().isEmpty() && !o.skipTrain()) {
            out.println();
            out.println("dynamic-mode training sweep:");
            for (String variant : o.variants()) {
                for (Precision p : o.precisions()) {
                    if (p == Precision.INT8) {
                        continue; // inference only
                    }
                    runMode(manager, "dynamic", variant, p, o.sweep(), peaks.get(p), true);
                }
            }
        }
    }

    /** One model (and optimizer) per mode, since masking the padding is part of the model's configuration. */
    private void runMode(NDManager manager, String mode, String variant, Precision precision, List<Integer> batches,
            double peak, boolean train) {
        Padding padding = switch (mode) {
            case "tutorial" -> Padding.FIXED;
            case "dynamic" -> Padding.DYNAMIC;
            default -> throw new IllegalArgumentException("unknown mode " + mode + " (tutorial, dynamic)");
        };
        FlavaConfig cfg = o.config().copy();
        cfg.maskTextPaddingInMultimodal = padding.masksTextInMultimodal();
        cfg.activationCheckpointing = variant.equals("checkpointing");
        cfg.bf16KeepActivations = variant.equals("keep");
        cfg.precision = precision;
        AdamW.Mode adamw = variant.equals("baseline") ? AdamW.Mode.BASELINE : AdamW.Mode.FUSED;
        // inference is the same in every variant: measured once, with the default one when it runs
        boolean infer = variant.equals(o.variants().contains("default") ? "default" : o.variants().get(0));
        NativeHeap.trim(); // the previous variant's freed memory back to the system: each peak is this variant's
        int textLen = padding == Padding.DYNAMIC ? o.questionTokens() : cfg.maxPositionEmbeddings;
        int textKeys = Math.min(textLen, o.questionTokens()); // the batch's longest question (see batch)
        try (NDManager m = manager.newSubManager()) {
            FlavaForClassification model = FlavaForClassification.create(cfg, m);
            try (AdamW optimizer = train ? new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m, adamw) : null) {
                for (int b : batches) {
                    Batch batch = batch(cfg, b, textLen);
                    if (train) {
                        TrainingStep<Batch> step = new TrainingStep<>(model, optimizer, m);
                        resetPeakRss();
                        double[] t = time(() -> step.run(List.of(batch), 1e-5, 0, false, true));
                        print(mode, variant, precision, b, textLen, "train", t, FlavaFlops.trainStep(cfg, b, textLen, textKeys), peak);
                        if (o.breakdown()) {
                            breakdown(model, optimizer, m, batch, step);
                        }
                    }
                    if (!infer) {
                        continue;
                    }
                    model.setTraining(false);
                    resetPeakRss();
                    // as a bundle serves it (ModelBundle.load): bf16 weights frozen, their bfloat16 forms made once
                    // (prepacked for oneDNN's linear on the CPU)
                    List<NDArray> weights = model.namedParameters().values().stream().map(Parameter::array).toList();
                    if (precision == Precision.BF16) {
                        TorchOps.freeze(weights);
                    }
                    double[] t;
                    try {
                        t = time(() -> {
                            try (ModelStep step = ModelStep.open(m)) {
                                ModelStep.Inputs in = step.unlabelled(batch);
                                model.forward(in.image(), in.text(), null).logits().toFloatArray();
                            }
                        });
                    } finally {
                        TorchOps.thaw(weights); // the next batch size trains them again
                    }
                    print(mode, variant, precision, b, textLen, "infer", t, FlavaFlops.forward(cfg, b, textLen, textKeys), peak);
                }
            }
        }
    }

    /**
     * {@code other} (bf16 or int8) against fp32 on the same model and batch (batch 2, random weights): the logits'
     * largest difference relative to the largest fp32 logit. bf16 runs as a bundle serves it, on frozen weights (their
     * bfloat16 forms, prepacked on the CPU: {@link TorchOps#freeze}).
     */
    private void fidelity(NDManager manager, String mode, Precision other) {
        Padding padding = mode.equals("dynamic") ? Padding.DYNAMIC : Padding.FIXED;
        FlavaConfig cfg = o.config().copy();
        cfg.maskTextPaddingInMultimodal = padding.masksTextInMultimodal();
        int textLen = padding == Padding.DYNAMIC ? o.questionTokens() : cfg.maxPositionEmbeddings;
        try (NDManager m = manager.newSubManager()) {
            Engine.getInstance().setRandomSeed(0);
            FlavaForClassification model = FlavaForClassification.create(cfg, m);
            model.setTraining(false);
            Batch batch = batch(cfg, 2, textLen);
            float[][] logits = new float[2][];
            Precision[] both = {Precision.FP32, other};
            List<NDArray> weights = model.namedParameters().values().stream().map(Parameter::array).toList();
            for (int k = 0; k < 2; k++) {
                model.setPrecision(both[k]);
                if (both[k] == Precision.BF16) {
                    TorchOps.freeze(weights);
                }
                try (ModelStep step = ModelStep.open(m)) {
                    ModelStep.Inputs in = step.unlabelled(batch);
                    logits[k] = model.forward(in.image(), in.text(), null).logits().toFloatArray();
                } finally {
                    TorchOps.thaw(weights);
                }
            }
            double scale = 0;
            double diff = 0;
            for (int i = 0; i < logits[0].length; i++) {
                scale = Math.max(scale, Math.abs(logits[0][i]));
                diff = Math.max(diff, Math.abs(logits[0][i] - logits[1][i]));
            }
            out.printf("%n%s fidelity, %s mode, batch 2: logits differ from fp32 by at most %.3g = %.2e x the largest fp32 "
                    + "logit (%.3g)%n", other.code(), mode, diff, diff / scale, scale);
        }
    }

    /** Random images in [0,1), questions of slightly different lengths, label 1. */
    private Batch batch(FlavaConfig cfg, int batch, int textLen) {
        return batch(cfg, batch, textLen, o.questionTokens(), 0);
    }

    /**
     * Random images in [0,1), questions of {@code questionTokens}, one less, two less tokens (in turn) padded to
     * {@code textLen}, label 1; {@code variant} 0 is the bench's own batch, others differ (a rank's or micro-batch's).
     */
    static Batch batch(FlavaConfig cfg, int batch, int textLen, int questionTokens, int variant) {
        Random rnd = new Random(batch * 31L + textLen + 1_000_003L * variant);
        long[] ids = new long[batch * textLen];
        for (int i = 0; i < batch; i++) {
            int len = Math.min(textLen, questionTokens - (i % 3));
            ids[i * textLen] = 101;
            for (int t = 1; t < len - 1; t++) {
                ids[i * textLen + t] = 1000 + rnd.nextInt(cfg.vocabSize - 1000);
            }
            ids[i * textLen + len - 1] = 102;
        }
        float[] images = new float[batch * cfg.numChannels * cfg.imageSize * cfg.imageSize];
        for (int i = 0; i < images.length; i++) {
            images[i] = rnd.nextFloat();
        }
        long[] labels = new long[batch];
        Arrays.fill(labels, 1);
        return new Batch(images, ids, textLen, labels, Collections.nCopies(batch, null), cfg.imageSize, cfg.imageSize, 0, 0);
    }

    /**
     * Where a train step's time goes (forward, backward including recomputation, AdamW against the memory
     * bandwidth, clearing gradients), where its memory goes (weights, gradients, moments, activations kept
     * for backward per encoder, data, JVM heap, allocator slack), and each encoder's inference forward.
     */
    private void breakdown(FlavaForClassification model, AdamW optimizer, NDManager manager, Batch batch, TrainingStep<Batch> step) {
        int n = Math.max(1, o.repeats());
        double[][] t = new double[4][n];
        long gradBytes = 0;
        long slack = 0;
        long liveAfterForward = 0;
        long liveAfterBackward = 0;
        model.setTraining(true);
        for (int i = 0; i < n; i++) {
            try (ModelStep s = ModelStep.open(manager)) {
                ModelStep.Inputs in = s.inputs(batch);
                long a;
                long b;
                long[] updating = {0}; // time spent updating layers during the backward pass (as TrainingStep does)
                AdamW.Update update;
                model.layerByLayer(true); // as TrainingStep's backward pass
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    a = System.nanoTime();
                    NDArray loss = model.forward(in.image(), in.text(), in.labels()).loss();
                    loss.getFloat();
                    b = System.nanoTime();
                    liveAfterForward = NativeHeap.stats().inUse();
                    update = optimizer.begin(1e-5, 1.0, false);
                    model.backward(gc, loss, params -> {
                        long u = System.nanoTime();
                        update.apply(params);
                        updating[0] += System.nanoTime() - u;
                    });
                }
                long c = System.nanoTime();
                model.layerByLayer(false);
                gradBytes = gradientBytes(model);
                liveAfterBackward = NativeHeap.stats().inUse();
                slack = NativeHeap.stats().freeHeld();
                update.applyRest();
                long d = System.nanoTime();
                optimizer.zeroGrad();
                long e = System.nanoTime();
                t[0][i] = (b - a) / 1e9;
                t[1][i] = (c - b - updating[0]) / 1e9;
                t[2][i] = (d - c + updating[0]) / 1e9;
                t[3][i] = (e - d) / 1e9;
            }
        }
        double adamw = med(t[2]);
        double floor = optimizer.bytesPerStep() / 1e9 / copyGbPerS;
        out.printf("    train step: forward %.3f s, backward %.3f s, AdamW %.3f s (%.1f GB/s; bandwidth floor %.3f s, %.2fx), "
                + "clear gradients %.3f s%n", med(t[0]), med(t[1]), adamw, optimizer.bytesPerStep() / 1e9 / adamw, floor,
                adamw / floor, med(t[3]));

        // peak of one whole step above what is resident before it: gradients + activations + temporaries
        NativeHeap.trim();
        long before = Hardware.rssBytes();
        resetPeakRss();
        step.run(List.of(batch), 1e-5, 0, false, true);
        long stepPeak = Hardware.peakRssBytes() - before;

        // activations kept for backward: allocator bytes in use after a recorded forward, per encoder
        long image = keptByForward(model, manager, batch, RequiredEmbedding.IMAGE);
        long text = keptByForward(model, manager, batch, RequiredEmbedding.TEXT);
        long all = keptByForward(model, manager, batch, null);
        long data = (long) batch.images().length * 4 + (long) batch.inputIds().length * 8 + batch.labels().length * 8L;
        Runtime rt = Runtime.getRuntime();
        long params = model.parameterCount();
        out.printf("    memory (GB): weights %.2f, gradients when the backward pass ends %.2f (recomputed layers' updated and "
                + "released during it; the rest after the step: %s), AdamW moments %.2f, "
                + "activations kept for backward %.2f (image encoder %.2f, text encoder %.2f, multimodal encoder + head %.2f), "
                + "data %.3f, JVM heap %.2f used / %.2f committed, allocator slack %.2f%n", params * 4 / 1e9, gradBytes / 1e9,
                optimizer.mode() == AdamW.Mode.BASELINE ? "no" : "yes", params * 8 / 1e9, all / 1e9, image / 1e9, text / 1e9,
                (all - image - text) / 1e9, data / 1e9, (rt.totalMemory() - rt.freeMemory()) / 1e9, rt.totalMemory() / 1e9,
                slack / 1e9);
        out.printf("    step peak above the resident state: %.2f GB (gradients when the backward pass ends %.2f + peak activations "
                + "and temporaries %.2f)%n",
                stepPeak / 1e9, gradBytes / 1e9, (stepPeak - gradBytes) / 1e9);
        out.printf("    native memory in use (the allocator's live bytes; RSS adds the freed memory it keeps, the slack): "
                + "%.2f GB when the backward pass starts, %.2f GB when it ends%n", liveAfterForward / 1e9, liveAfterBackward / 1e9);

        model.setTraining(false);
        double[][] e = new double[3][n];
        for (int i = 0; i < n; i++) {
            try (ModelStep s = ModelStep.open(manager)) {
                ModelStep.Inputs in = s.unlabelled(batch);
                long a = System.nanoTime();
                model.flava().forward(in.image(), null, RequiredEmbedding.IMAGE).image().hiddenBeforeNorm().getFloat(0, 0, 0);
                long b = System.nanoTime();
                model.flava().forward(null, in.text(), RequiredEmbedding.TEXT).text().hiddenBeforeNorm().getFloat(0, 0, 0);
                long c = System.nanoTime();
                model.flava().forward(in.image(), in.text(), RequiredEmbedding.MM).multimodal().hiddenBeforeNorm()
                        .getFloat(0, 0, 0);
                long d = System.nanoTime();
                e[0][i] = (b - a) / 1e9;
                e[1][i] = (c - b) / 1e9;
                e[2][i] = (d - c) / 1e9 - e[0][i] - e[1][i];
            }
        }
        out.printf("    inference forward: image encoder %.3f s, text encoder %.3f s, multimodal encoder (+projections) %.3f s%n",
                med(e[0]), med(e[1]), med(e[2]));
    }

    /** Allocator bytes a recorded forward holds until the backward pass (IMAGE, TEXT or the whole model when null). */
    private static long keptByForward(FlavaForClassification model, NDManager manager, Batch batch, RequiredEmbedding only) {
        model.setTraining(true);
        model.layerByLayer(true); // as TrainingStep records it
        try (ModelStep s = ModelStep.open(manager)) {
            ModelStep.Inputs in = s.inputs(batch);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                long before = NativeHeap.stats().inUse();
                if (only == null) {
                    model.forward(in.image(), in.text(), in.labels()).loss().getFloat();
                } else {
                    // libtorch runs eagerly on the CPU: the encoder's activations exist once forward returns
                    model.flava().forward(only == RequiredEmbedding.IMAGE ? in.image() : null,
                            only == RequiredEmbedding.TEXT ? in.text() : null, only);
                }
                return NativeHeap.stats().inUse() - before;
            }
        } finally {
            model.layerByLayer(false);
        }
    }

    /** Bytes of the gradients that exist now. */
    private static long gradientBytes(FlavaForClassification model) {
        long bytes = 0;
        for (Parameter p : model.namedParameters().values()) {
            NDArray g = JniUtils.getGradient((PtNDArray) p.array());
            if (g != null) {
                bytes += g.size() * 4;
                g.close();
            }
        }
        return bytes;
    }

    /** Best-of-5 copy rate of a 512 MiB float32 tensor through libtorch ({@code dst[:] = src}), bytes read + written per second. */
    static double copyBandwidth(NDManager manager) {
        try (ModelStep step = ModelStep.open(manager)) {
            long n = 128L << 20;
            NDArray src = step.manager().ones(new Shape(n));
            NDArray dst = step.manager().zeros(new Shape(n));
            NDIndex all = new NDIndex(":");
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 6; i++) {
                long s = System.nanoTime();
                dst.set(all, src); // libtorch's copy_ into existing memory: no allocation, no page faults
                dst.getFloat(n - 1);
                double dt = (System.nanoTime() - s) / 1e9;
                if (i > 0) {
                    best = Math.min(best, dt);
                }
            }
            return 2.0 * n * 4 / best / 1e9;
        }
    }

    static double med(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c[c.length / 2];
    }

    private double[] time(Runnable r) {
        r.run(); // warm-up
        double[] t = new double[o.repeats()];
        for (int i = 0; i < o.repeats(); i++) {
            long s = System.nanoTime();
            r.run();
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        Arrays.sort(t);
        return t;
    }

    private void print(String mode, String variant, Precision precision, int batch, int textLen, String phase, double[] sorted, double flop,
            double peak) {
        double median = sorted[sorted.length / 2];
        double gflops = flop / 1e9 / median;
        out.printf("%-9s %-13s %-5s %5d %5d %6s %9.3f %9.3f %10.2f %10.1f %9.1f %5.0f%% %7.2fG%n", mode, variant,
                precision.code(), batch, textLen,
                phase, median, sorted[0], batch / median, flop / 1e9, gflops, 100 * gflops / peak,
                Hardware.peakRssBytes() / 1e9);
    }

    /** A matrix multiply's rate and the shape (m, k, n) that gave it. */
    public record Peak(double gflops, long m, long k, long n) {
        String describe() {
            return String.format("%.1f GFLOP/s (%dx%d @ %dx%d)", gflops, m, k, k, n);
        }
    }

    /**
     * The matrix-multiply peak in {@code precision}: the best rate over square and the model's own shapes (a
     * 512-token text batch of 2 against the feed-forward and attention weights, forward and backward, and the
     * multimodal encoder's 1420 rows), each the best of 5 timed calls of 4 products after 2 warm-up calls, the
     * products in the op library (4 different right-hand sides summed: the casts are timed too, once per 4 products).
     * int8: 4 int8 linear layers in a row, as the model runs them (each input quantized per call, the weights once).
     */
    public static Peak matmulPeak(NDManager manager, Precision precision) {
        long[][] shapes = {{2048, 2048, 2048}, {1024, 1024, 1024}, {1024, 768, 3072}, {1024, 3072, 768},
            {768, 1024, 3072}, {1420, 768, 3072}, {1024, 768, 768}};
        Peak best = null;
        for (long[] s : shapes) {
            try (ModelStep step = ModelStep.open(manager)) {
                NDArray a = step.manager().randomUniform(-1f, 1f, new Shape(s[0], s[1]));
                int products = 4;
                NDArray b = step.manager().randomUniform(-1f, 1f, new Shape(products, s[1], s[2]));
                // int8: as its linear layers run, against weights (n, k) quantized once (the first, untimed, calls)
                NDArray[] w = new NDArray[products];
                NDArray bias = step.manager().zeros(new Shape(s[2]));
                for (int j = 0; j < products && precision == Precision.INT8; j++) {
                    w[j] = b.get(j).transpose().duplicate();
                }
                double fastest = Double.MAX_VALUE;
                for (int i = 0; i < 7; i++) {
                    long t = System.nanoTime();
                    if (precision == Precision.INT8) {
                        for (NDArray wj : w) {
                            TorchOps.on(a).linear(precision, a, wj, bias).getFloat(0, 0);
                        }
                    } else {
                        TorchOps.on(a).matmulSum(precision, a, b).getFloat(0, 0);
                    }
                    double dt = (System.nanoTime() - t) / 1e9;
                    if (i >= 2) {
                        fastest = Math.min(fastest, dt);
                    }
                }
                double gflops = 2.0 * s[0] * s[1] * s[2] * products / fastest / 1e9;
                if (best == null || gflops > best.gflops()) {
                    best = new Peak(gflops, s[0], s[1], s[2]);
                }
            }
        }
        return best;
    }

    /** Resets the kernel's peak-RSS counter (VmHWM) so that each measurement reports its own peak. */
    static void resetPeakRss() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (Exception e) {
            // not Linux, or not permitted: the peak then covers the whole run
        }
    }
}
