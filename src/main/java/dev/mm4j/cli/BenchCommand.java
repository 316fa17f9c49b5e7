package dev.mm4j.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.engine.Engine;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaFlops;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.train.AdamW;
import dev.mm4j.train.TrainingStep;
import dev.mm4j.util.Runtime;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mm4j bench}: matrix-multiply peak vs. full-size FLAVA train/inference steps, side by side. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Measures this machine's float32 matrix-multiply peak through libtorch, then full-size FLAVA "
                + "(3997 classes) train steps (forward + backward + AdamW) and inference in the tutorial mode "
                + "(text padded to 512, multimodal encoder attends padding) and the dynamic mode (padded to the "
                + "longest question, padding masked), and prints s/step, samples/s, GFLOP/step, GFLOP/s, %% of peak "
                + "and peak RSS per mode."})
public final class BenchCommand implements Callable<Integer> {

    @Option(names = "--modes", split = ",", description = "tutorial and/or dynamic (default: ${DEFAULT-VALUE})")
    List<String> modes = List.of("tutorial", "dynamic");

    @Option(names = "--batch-sizes", split = ",", description = "batch sizes (default: ${DEFAULT-VALUE})")
    List<Integer> batchSizes = List.of(2, 1);

    @Option(names = "--sweep", split = ",", description = "dynamic-mode training batch sizes for the samples/s sweep, e.g. 1,2,4,8 (default: none)")
    List<Integer> sweep = List.of();

    @Option(names = "--repeats", description = "timed repetitions per measurement after warm-up (default: ${DEFAULT-VALUE})")
    int repeats = 3;

    @Option(names = "--question-tokens", description = "question length incl. [CLS]/[SEP] in dynamic mode (default: ${DEFAULT-VALUE}, typical of TextVQA)")
    int questionTokens = 24;

    @Option(names = "--config", description = "FLAVA config (YAML/JSON of TorchMultimodal kwargs); default full size, 3997 classes")
    Path config;

    @Option(names = "--threads", description = "libtorch intra-op threads; 0 = all cores (default: ${DEFAULT-VALUE})")
    int threads = 0;

    @Option(names = "--device", description = "cpu, gpu, gpu:N or auto (default: cpu, or MM4J_DEVICE)")
    String device;

    @Option(names = "--skip-train", description = "inference only")
    boolean skipTrain;

    @Option(names = "--breakdown", description = "also print where a train step's time goes: forward / backward / optimizer, and forward per encoder")
    boolean breakdown;

    @Override
    public Integer call() throws Exception {
        int nThreads = Runtime.configureThreads(threads);
        FlavaConfig cfg = config != null ? FlavaConfig.load(config) : FlavaConfig.fullSize(3997);
        System.out.printf("libtorch %s, %d intra-op threads, %d cores%n", Engine.getInstance().getVersion(), nThreads,
                java.lang.Runtime.getRuntime().availableProcessors());
        try (NDManager manager = NDManager.newBaseManager(Runtime.device(device))) {
            double peak = matmulPeak(manager);
            System.out.printf("float32 matmul 2048x2048x2048: %.1f GFLOP/s (best of 5)%n%n", peak);

            long t0 = System.nanoTime();
            FlavaForClassification model = FlavaForClassification.create(cfg, manager);
            System.out.printf("model: %,d parameters, built in %.1f s, RSS %.2f GB%n%n", model.parameterCount(),
                    (System.nanoTime() - t0) / 1e9, Runtime.rssBytes() / 1e9);
            AdamW optimizer = skipTrain ? null : new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), manager);
            System.out.printf("%-9s %5s %5s %6s %9s %9s %10s %10s %9s %6s %8s%n", "mode", "batch", "text", "phase",
                    "s/step", "min s", "samples/s", "GFLOP/step", "GFLOP/s", "%peak", "peakRSS");
            for (String mode : modes) {
                for (int b : batchSizes) {
                    runMode(model, optimizer, manager, mode, b, peak, !skipTrain);
                }
            }
            if (!sweep.isEmpty() && !skipTrain) {
                System.out.println();
                System.out.println("dynamic-mode training sweep:");
                for (int b : sweep) {
                    runMode(model, optimizer, manager, "dynamic", b, peak, true);
                }
            }
            if (optimizer != null) {
                optimizer.close();
            }
        }
        return 0;
    }

    private void runMode(FlavaForClassification model, AdamW optimizer, NDManager manager, String mode, int batch,
            double peak, boolean train) {
        boolean dynamic = mode.equals("dynamic");
        if (!dynamic && !mode.equals("tutorial")) {
            throw new IllegalArgumentException("unknown mode " + mode + " (tutorial, dynamic)");
        }
        FlavaConfig cfg = model.config();
        int textLen = dynamic ? questionTokens : cfg.maxPositionEmbeddings;
        model.flava().setMaskTextPaddingInMultimodal(dynamic);
        try (NDManager inputs = manager.newSubManager()) {
            Random rnd = new Random(batch * 31L + textLen);
            long[] ids = new long[batch * textLen];
            for (int i = 0; i < batch; i++) {
                int len = Math.min(textLen, questionTokens - (i % 3)); // questions of slightly different length
                ids[i * textLen] = 101;
                for (int t = 1; t < len - 1; t++) {
                    ids[i * textLen + t] = 1000 + rnd.nextInt(cfg.vocabSize - 1000);
                }
                ids[i * textLen + len - 1] = 102;
            }
            NDArray text = inputs.create(ids, new Shape(batch, textLen));
            NDArray image = inputs.randomUniform(0f, 1f, new Shape(batch, cfg.numChannels, cfg.imageSize, cfg.imageSize));
            NDArray labels = inputs.create(new long[batch]).add(1).toType(DataType.INT64, false);
            if (train) {
                TrainingStep step = new TrainingStep(model, optimizer);
                var in = List.of(new TrainingStep.Inputs(image, text, labels));
                resetPeakRss();
                double[] t = time(() -> step.run(in, 1e-5, 0, false));
                print(mode, batch, textLen, "train", t, FlavaFlops.trainStep(cfg, batch, textLen), peak);
                if (breakdown) {
                    breakdown(model, optimizer, image, text, labels);
                }
            }
            model.setTraining(false);
            resetPeakRss();
            double[] t = time(() -> {
                try (NDScope scope = new NDScope()) {
                    model.forward(image, text, null).logits().toFloatArray();
                }
            });
            print(mode, batch, textLen, "infer", t, FlavaFlops.forward(cfg, batch, textLen), peak);
        }
    }

    /** Median seconds of forward, backward and optimizer phases, and of each encoder's forward. */
    private void breakdown(FlavaForClassification model, AdamW optimizer, NDArray image, NDArray text, NDArray labels) {
        int n = Math.max(2, repeats);
        double[][] t = new double[4][n];
        long[] rss = new long[4];
        for (int i = 0; i < n; i++) {
            try (NDScope scope = new NDScope()) {
                long a;
                long b;
                try (ai.djl.training.GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    a = System.nanoTime();
                    NDArray loss = model.forward(image, text, labels).loss();
                    loss.getFloat();
                    b = System.nanoTime();
                    rss[0] = Runtime.rssBytes();
                    gc.backward(loss);
                }
                long c = System.nanoTime();
                rss[1] = Runtime.rssBytes();
                optimizer.step(1e-5, 1.0);
                long d = System.nanoTime();
                rss[2] = Runtime.rssBytes();
                optimizer.zeroGrad();
                long e = System.nanoTime();
                t[0][i] = (b - a) / 1e9;
                t[1][i] = (c - b) / 1e9;
                t[2][i] = (d - c) / 1e9;
                t[3][i] = (e - d) / 1e9;
            }
        }
        System.out.printf("    train step: forward %.3f s, backward %.3f s, AdamW %.3f s, zero grads %.3f s%n",
                med(t[0]), med(t[1]), med(t[2]), med(t[3]));
        System.out.printf("    RSS after forward %.2f GB, after backward %.2f GB, after AdamW %.2f GB (weights %.2f GB, grads %.2f GB, "
                + "AdamW moments %.2f GB)%n", rss[0] / 1e9, rss[1] / 1e9, rss[2] / 1e9, model.parameterCount() * 4 / 1e9,
                model.parameterCount() * 4 / 1e9, model.parameterCount() * 8 / 1e9);
        model.setTraining(false);
        double[][] e = new double[4][n];
        for (int i = 0; i < n; i++) {
            try (NDScope scope = new NDScope()) {
                long a = System.nanoTime();
                var img = model.flava().forward(image, null, dev.mm4j.flava.RequiredEmbedding.IMAGE);
                img.image().hiddenBeforeNorm().getFloat(0, 0, 0);
                long b = System.nanoTime();
                var txt = model.flava().forward(null, text, dev.mm4j.flava.RequiredEmbedding.TEXT);
                txt.text().hiddenBeforeNorm().getFloat(0, 0, 0);
                long c = System.nanoTime();
                var all = model.flava().forward(image, text, dev.mm4j.flava.RequiredEmbedding.MM);
                all.multimodal().hiddenBeforeNorm().getFloat(0, 0, 0);
                long d = System.nanoTime();
                e[0][i] = (b - a) / 1e9;
                e[1][i] = (c - b) / 1e9;
                e[2][i] = (d - c) / 1e9 - e[0][i] - e[1][i];
            }
        }
        System.out.printf("    inference forward: image encoder %.3f s, text encoder %.3f s, multimodal encoder (+projections) %.3f s%n",
                med(e[0]), med(e[1]), med(e[2]));
    }

    private static double med(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c[c.length / 2];
    }

    private double[] time(Runnable r) {
        r.run(); // warm-up
        double[] t = new double[repeats];
        for (int i = 0; i < repeats; i++) {
            long s = System.nanoTime();
            r.run();
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        Arrays.sort(t);
        return t;
    }

    private static void print(String mode, int batch, int textLen, String phase, double[] sorted, double flop, double peak) {
        double median = sorted[sorted.length / 2];
        double gflops = flop / 1e9 / median;
        System.out.printf("%-9s %5d %5d %6s %9.3f %9.3f %10.2f %10.1f %9.1f %5.0f%% %7.2fG%n", mode, batch, textLen,
                phase, median, sorted[0], batch / median, flop / 1e9, gflops, 100 * gflops / peak,
                Runtime.peakRssBytes() / 1e9);
    }

    static double matmulPeak(NDManager manager) {
        try (NDManager m = manager.newSubManager()) {
            NDArray a = m.randomUniform(-1f, 1f, new Shape(2048, 2048));
            NDArray b = m.randomUniform(-1f, 1f, new Shape(2048, 2048));
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 6; i++) {
                try (NDScope scope = new NDScope()) {
                    long s = System.nanoTime();
                    a.matMul(b).getFloat(0, 0);
                    double dt = (System.nanoTime() - s) / 1e9;
                    if (i > 0) {
                        best = Math.min(best, dt);
                    }
                }
            }
            return 2.0 * 2048 * 2048 * 2048 / best / 1e9;
        }
    }

    /** Resets the kernel's peak-RSS counter (VmHWM) so that each mode reports its own peak. */
    private static void resetPeakRss() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (Exception e) {
            // not Linux, or not permitted: the peak then covers the whole run
        }
    }
}
