package dev.mm4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.data.BlockMasking;
import dev.mm4j.data.MlmMasking;
import dev.mm4j.data.PretrainingBatch;
import dev.mm4j.data.PretrainingSource;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForPreTraining;
import dev.mm4j.util.NativeHeap;
import dev.mm4j.nn.Precision;
import dev.mm4j.train.AdamW;
import dev.mm4j.train.TrainingStep;
import dev.mm4j.util.Hardware;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The full-size pretraining step ({@code bench --task pretraining}): {@link FlavaForPreTraining} (codebook input 112)
 * on a batch of image-text pairs as the reference's VL data gives it (text padded to 77, 75 of 196 patches masked by
 * block masking, 15% of the caption's tokens masked, ITM labels: ITM, MMM text, MMM image and the global contrastive
 * loss, as the reference computes for pairs), forward + backward + AdamW through the training
 * loop's {@link TrainingStep}, per precision: s/step (median and fastest of the repeats after a warm-up step) and the
 * process's peak RSS (reset before each precision, its model built afresh). TorchMultimodal's
 * {@code FLAVAForPreTraining} on PyTorch eager (fp32 and bf16 autocast) runs from {@code tools/bench_pretraining_reference.py};
 * the command is printed below the rows.
 */
public final class PretrainBench {

    /**
     * @param config the full-size FLAVA (pretraining keys at their defaults: codebook_image_size 112)
     * @param batch samples per step (2)
     * @param textLen caption length in tokens, padded (77, as VLTransform pads)
     * @param repeats timed steps after the warm-up step
     * @param precisions one row each
     * @param variants per precision, one row each: {@code default}, {@code keep} (bf16 keeps every layer's
     *     activations: {@code bf16_keep_activations}; bf16 rows only, float32 has nothing to keep) and
     *     {@code checkpointing} (every layer recomputed: {@code activation_checkpointing})
     */
    public record Options(FlavaConfig config, int batch, int textLen, int repeats, List<Precision> precisions,
            List<String> variants) {}

    /** The variants of {@link Options#variants}. */
    public static final List<String> VARIANTS = List.of("default", "keep", "checkpointing");

    private final Options o;
    private final PrintStream out;

    public PretrainBench(Options options, PrintStream out) {
        this.o = options;
        this.out = out;
    }

    public void run(NDManager manager, int threads) {
        out.printf("libtorch %s, %d intra-op threads, %d cores%n", Engine.getInstance().getVersion(), threads,
                Runtime.getRuntime().availableProcessors());
        out.printf("FLAVA for pretraining: %,d parameters (codebook input %d), batch %d of image-text pairs, text %d, "
                + "its four losses (ITM, MMM text, MMM image, global contrastive; MLM and MIM are the unimodal "
                + "sources')%n%n", new FlavaForPreTraining(o.config().copy()).parameterCount(),
                o.config().codebookImageSize, o.batch(), o.textLen());
        for (String v : o.variants()) {
            if (!VARIANTS.contains(v)) {
                throw new IllegalArgumentException("unknown variant " + v + " for --task pretraining " + VARIANTS);
            }
        }
        out.printf("%-28s %-13s %-5s %5s %5s %9s %9s %10s %8s%n", "impl", "variant", "prec", "batch", "text", "s/step",
                "min s", "samples/s", "peakRSS");
        for (Precision p : o.precisions()) {
            for (String v : o.variants()) {
                if (!(v.equals("keep") && p != Precision.BF16)) {
                    row(manager, p, v);
                }
            }
        }
        out.printf("%nTorchMultimodal's FLAVAForPreTraining on PyTorch eager, the same step (AdamW, train mode):%n"
                + "  OMP_NUM_THREADS=%d TMM_PATH=<torchmultimodal export> python tools/bench_pretraining_reference.py "
                + "fp32 %d %d %d%n  (and bf16 for torch.autocast(\"cpu\", dtype=torch.bfloat16)); each prints one JSON line "
                + "with train_step_s_median and peak_rss_gb%n", threads, o.batch(), o.textLen(), o.repeats() + 1);
    }

    private void row(NDManager manager, Precision p, String variant) {
        FlavaConfig cfg = o.config().copy();
        cfg.precision = p;
        cfg.bf16KeepActivations = variant.equals("keep");
        cfg.activationCheckpointing = variant.equals("checkpointing");
        NativeHeap.trim();
        try (NDManager m = manager.newSubManager()) {
            Engine.getInstance().setRandomSeed(0);
            FlavaForPreTraining model = FlavaForPreTraining.create(cfg, m);
            PretrainingBatch batch = batch(cfg, o.batch(), o.textLen());
            try (AdamW optimizer = new AdamW(model.trainableParameters(), AdamW.Settings.torchDefaults(), m)) {
                TrainingStep<PretrainingBatch> step = new TrainingStep<>(model, optimizer, m);
                TrainBench.resetPeakRss();
                double[] t = time(() -> step.run(List.of(batch), 1e-5, 0, false, true));
                double median = t[t.length / 2];
                out.printf("%-28s %-13s %-5s %5d %5d %9.3f %9.3f %10.2f %7.2fG%n", "mm4j (libtorch "
                        + Engine.getInstance().getVersion() + ")", variant, p.code(), o.batch(), o.textLen(), median,
                        t[0], o.batch() / median, Hardware.peakRssBytes() / 1e9);
            }
        }
    }

    private double[] time(Runnable r) {
        r.run(); // warm-up
        double[] t = new double[Math.max(1, o.repeats())];
        for (int i = 0; i < t.length; i++) {
            long s = System.nanoTime();
            r.run();
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        Arrays.sort(t);
        return t;
    }

    /**
     * A pairs batch as the loader makes it, from fixed random draws: images in the encoder's and the codebook's ranges,
     * block-masked patches, captions of 20-30 tokens padded to {@code textLen} with 15% of their tokens masked, ITM
     * labels half matching.
     */
    static PretrainingBatch batch(FlavaConfig cfg, int n, int textLen) {
        Random rnd = new Random(0);
        int size = cfg.imageSize;
        int cb = cfg.codebookImageSize;
        float[] image = new float[n * 3 * size * size];
        for (int i = 0; i < image.length; i++) {
            image[i] = rnd.nextFloat() * 4 - 2;
        }
        float[] forCodebook = new float[n * 3 * cb * cb];
        for (int i = 0; i < forCodebook.length; i++) {
            forCodebook[i] = 0.1f + 0.8f * rnd.nextFloat();
        }
        int grid = size / cfg.patchSize;
        BlockMasking masking = grid == BlockMasking.DEFAULT_WINDOW ? new BlockMasking()
                : new BlockMasking(grid, grid, Math.max(1, grid * grid * 75 / 196), 1, null, 0.3, null);
        long[] mask = new long[n * grid * grid];
        for (int b = 0; b < n; b++) {
            System.arraycopy(masking.draw(rnd), 0, mask, b * grid * grid, grid * grid);
        }
        long[] text = new long[n * textLen];
        long[] masked = new long[n * textLen];
        long[] labels = new long[n * textLen];
        Arrays.fill(labels, MlmMasking.IGNORE_INDEX);
        for (int b = 0; b < n; b++) {
            int len = Math.min(textLen, 20 + rnd.nextInt(11));
            for (int t = 0; t < len; t++) {
                long id = t == 0 ? 101 : t == len - 1 ? 102 : 1000 + rnd.nextInt(cfg.vocabSize - 1000);
                text[b * textLen + t] = id;
                masked[b * textLen + t] = id;
                if (t > 0 && t < len - 1 && rnd.nextDouble() < 0.15) {
                    masked[b * textLen + t] = 103;
                    labels[b * textLen + t] = id;
                }
            }
            labels[b * textLen + 1] = text[b * textLen + 1]; // at least one masked token per caption
            masked[b * textLen + 1] = 103;
        }
        long[] itm = new long[n];
        for (int b = 0; b < n; b++) {
            itm[b] = b % 2 == 0 ? 1 : 0;
        }
        return new PretrainingBatch(PretrainingSource.Kind.PAIRS, "bench", 0, image, size, forCodebook, cb, mask, grid,
                grid, text, masked, labels, textLen, itm, Collections.nCopies(n, "bench"));
    }
}
