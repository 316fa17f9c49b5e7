package dev.mm4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
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
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The training/inference benchmark: this machine's float32 matmul peak through libtorch, then FLAVA train
 * steps (forward + backward + AdamW, the production {@link TrainingStep}) and inference per padding mode
 * and batch size, with FLOP rates against the peak and peak RSS; optionally where a step's time goes.
 */
public final class TrainBench {

    /**
     * @param modes tutorial (text padded to max positions, padding attended) and/or dynamic (padded to
     *     {@code questionTokens}, padding masked)
     * @param sweep dynamic-mode training batch sizes for a samples/s sweep (may be empty)
     */
    public record Options(FlavaConfig config, List<String> modes, List<Integer> batchSizes, List<Integer> sweep,
            int repeats, int questionTokens, boolean skipTrain, boolean breakdown) {}

    private final Options o;
    private final PrintStream out;

    public TrainBench(Options options, PrintStream out) {
        this.o = options;
        this.out = out;
    }

    public void run(NDManager manager, int threads) {
        out.printf("libtorch %s, %d intra-op threads, %d cores%n", Engine.getInstance().getVersion(), threads,
                Runtime.getRuntime().availableProcessors());
        double peak = matmulPeak(manager);
        out.printf("float32 matmul 2048x2048x2048: %.1f GFLOP/s (best of 5)%n%n", peak);
        out.printf("model: %,d parameters%n%n", new FlavaForClassification(o.config()).parameterCount());
        out.printf("%-9s %5s %5s %6s %9s %9s %10s %10s %9s %6s %8s%n", "mode", "batch", "text", "phase",
                "s/step", "min s", "samples/s", "GFLOP/step", "GFLOP/s", "%peak", "peakRSS");
        for (String mode : o.modes()) {
            runMode(manager, mode, o.batchSizes(), peak, !o.skipTrain());
        }
        if (!o.sweep().isEmpty() && !o.skipTrain()) {
            out.println();
            out.println("dynamic-mode training sweep:");
            runMode(manager, "dynamic", o.sweep(), peak, true);
        }
    }

    /** One model (and optimizer) per mode, since masking the padding is part of the model's configuration. */
    private void runMode(NDManager manager, String mode, List<Integer> batches, double peak, boolean train) {
        Padding padding = switch (mode) {
            case "tutorial" -> Padding.FIXED;
            case "dynamic" -> Padding.DYNAMIC;
            default -> throw new IllegalArgumentException("unknown mode " + mode + " (tutorial, dynamic)");
        };
        FlavaConfig cfg = o.config().copy();
        cfg.maskTextPaddingInMultimodal = padding.masksTextInMultimodal();
        int textLen = padding == Padding.DYNAMIC ? o.questionTokens() : cfg.maxPositionEmbeddings;
        try (NDManager m = manager.newSubManager()) {
            FlavaForClassification model = FlavaForClassification.create(cfg, m);
            try (AdamW optimizer = train ? new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m) : null) {
                for (int b : batches) {
                    Batch batch = batch(cfg, b, textLen);
                    if (train) {
                        TrainingStep step = new TrainingStep(model, optimizer, m);
                        resetPeakRss();
                        double[] t = time(() -> step.run(List.of(batch), 1e-5, 0, false, true));
                        print(mode, b, textLen, "train", t, FlavaFlops.trainStep(cfg, b, textLen), peak);
                        if (o.breakdown()) {
                            breakdown(model, optimizer, m, batch);
                        }
                    }
                    model.setTraining(false);
                    resetPeakRss();
                    double[] t = time(() -> {
                        try (ModelStep step = ModelStep.open(m)) {
                            ModelStep.Inputs in = step.unlabelled(batch);
                            model.forward(in.image(), in.text(), null).logits().toFloatArray();
                        }
                    });
                    print(mode, b, textLen, "infer", t, FlavaFlops.forward(cfg, b, textLen), peak);
                }
            }
        }
    }

    /** Random images in [0,1), questions of slightly different lengths, label 1. */
    private Batch batch(FlavaConfig cfg, int batch, int textLen) {
        Random rnd = new Random(batch * 31L + textLen);
        long[] ids = new long[batch * textLen];
        for (int i = 0; i < batch; i++) {
            int len = Math.min(textLen, o.questionTokens() - (i % 3));
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

    /** Median seconds of forward, backward and optimizer phases, and of each encoder's forward. */
    private void breakdown(FlavaForClassification model, AdamW optimizer, NDManager manager, Batch batch) {
        int n = Math.max(2, o.repeats());
        double[][] t = new double[4][n];
        long[] rss = new long[3];
        model.setTraining(true);
        for (int i = 0; i < n; i++) {
            try (ModelStep step = ModelStep.open(manager)) {
                ModelStep.Inputs in = step.inputs(batch);
                long a;
                long b;
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    a = System.nanoTime();
                    NDArray loss = model.forward(in.image(), in.text(), in.labels()).loss();
                    loss.getFloat();
                    b = System.nanoTime();
                    rss[0] = Hardware.rssBytes();
                    model.backward(gc, loss);
                }
                long c = System.nanoTime();
                rss[1] = Hardware.rssBytes();
                optimizer.step(1e-5, 1.0);
                long d = System.nanoTime();
                rss[2] = Hardware.rssBytes();
                optimizer.zeroGrad();
                long e = System.nanoTime();
                t[0][i] = (b - a) / 1e9;
                t[1][i] = (c - b) / 1e9;
                t[2][i] = (d - c) / 1e9;
                t[3][i] = (e - d) / 1e9;
            }
        }
        out.printf("    train step: forward %.3f s, backward %.3f s, AdamW %.3f s, zero grads %.3f s%n",
                med(t[0]), med(t[1]), med(t[2]), med(t[3]));
        out.printf("    RSS after forward %.2f GB, after backward %.2f GB, after AdamW %.2f GB (weights %.2f GB, grads %.2f GB, "
                + "AdamW moments %.2f GB)%n", rss[0] / 1e9, rss[1] / 1e9, rss[2] / 1e9, model.parameterCount() * 4 / 1e9,
                model.parameterCount() * 4 / 1e9, model.parameterCount() * 8 / 1e9);
        model.setTraining(false);
        double[][] e = new double[3][n];
        for (int i = 0; i < n; i++) {
            try (ModelStep step = ModelStep.open(manager)) {
                ModelStep.Inputs in = step.unlabelled(batch);
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

    private void print(String mode, int batch, int textLen, String phase, double[] sorted, double flop, double peak) {
        double median = sorted[sorted.length / 2];
        double gflops = flop / 1e9 / median;
        out.printf("%-9s %5d %5d %6s %9.3f %9.3f %10.2f %10.1f %9.1f %5.0f%% %7.2fG%n", mode, batch, textLen,
                phase, median, sorted[0], batch / median, flop / 1e9, gflops, 100 * gflops / peak,
                Hardware.peakRssBytes() / 1e9);
    }

    /** Best-of-5 float32 matmul rate (GFLOP/s) through libtorch on {@code manager}'s device. */
    public static double matmulPeak(NDManager manager) {
        try (ModelStep step = ModelStep.open(manager)) {
            NDArray a = step.manager().randomUniform(-1f, 1f, new Shape(2048, 2048));
            NDArray b = step.manager().randomUniform(-1f, 1f, new Shape(2048, 2048));
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 6; i++) {
                long s = System.nanoTime();
                a.matMul(b).getFloat(0, 0);
                double dt = (System.nanoTime() - s) / 1e9;
                if (i > 0) {
                    best = Math.min(best, dt);
                }
            }
            return 2.0 * 2048 * 2048 * 2048 / best / 1e9;
        }
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
