package dev.mm4j.cli;

import ai.djl.ndarray.NDManager;
import dev.mm4j.bench.PretrainBench;
import dev.mm4j.bench.TrainBench;
import dev.mm4j.flava.FlavaConfig;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j bench}: matrix-multiply peak vs. full-size FLAVA train/inference steps, side by side. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Measures this machine's matrix-multiply peak through libtorch (the best over square and the model's "
                + "shapes, the shape printed), then full-size FLAVA "
                + "(" + FlavaConfig.TEXTVQA_CLASSES + " classes) train steps (forward + backward + AdamW) and inference in "
                + "the tutorial mode (text padded to 512, multimodal encoder attends padding) and the dynamic mode (padded "
                + "to the longest question, padding masked), and prints s/step, samples/s, GFLOP/step, GFLOP/s, %% of peak "
                + "and peak RSS per mode. With --precision fp32,bf16: one row per precision, each against its own matmul peak, and "
                + "the bf16 logits' difference from fp32 on the same model and batch.",
                "--task pretraining: the full-size pretraining step instead (FLAVAForPreTraining with the codebook, "
                        + "ITM, MMM and contrastive losses on a batch of image-text pairs, text padded to --text-len 77), fp32 and bf16 by default, "
                        + "s/step and peak RSS, and the command that times TorchMultimodal's on PyTorch eager beside it."})
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

    @Option(names = "--skip-train", description = "inference only")
    boolean skipTrain;

    @Option(names = "--breakdown", description = "also print where a train step's time and memory go: forward / backward / "
            + "AdamW (against the memory bandwidth), weights / gradients / moments / activations per encoder / JVM heap / "
            + "allocator slack, the allocator's live bytes when the backward pass starts and ends, and inference forward "
            + "per encoder")
    boolean breakdown;

    @Option(names = "--variants", split = ",", description = "side by side, each with its own model: baseline (the previous "
            + "optimizer: decay pass + libtorch Adam op, gradients kept and zeroed), default (one-pass AdamW, gradients "
            + "released after the step), checkpointing (default + activation checkpointing per transformer layer) "
            + "(default: ${DEFAULT-VALUE})")
    List<String> variants = List.of("default");

    @Option(names = "--task", paramLabel = "classification|pretraining", description = "classification (default: the "
            + "fine-tuning step, as above) or pretraining")
    String task = "classification";

    @Option(names = "--text-len", description = "with --task pretraining: caption length, padded (default: ${DEFAULT-VALUE}, "
            + "as TorchMultimodal's VL transform pads)")
    int textLen = 77;

    @Mixin ModelOptions model = new ModelOptions();
    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        int threads = engine.configureThreads();
        if (task.equals("pretraining")) {
            List<dev.mm4j.nn.Precision> precisions = engine.precisionSpec() == null
                    ? List.of(dev.mm4j.nn.Precision.FP32, dev.mm4j.nn.Precision.BF16) : engine.precisions(engine.device());
            int batch = batchSizes.equals(List.of(2, 1)) ? 2 : batchSizes.get(0);
            var options = new PretrainBench.Options(model.load(new FlavaConfig()), batch, textLen, repeats, precisions);
            try (NDManager manager = NDManager.newBaseManager(engine.device())) {
                new PretrainBench(options, System.out).run(manager, threads);
            }
            return 0;
        }
        if (!task.equals("classification")) {
            throw new IllegalArgumentException("--task: classification or pretraining, got '" + task + "'");
        }
        var options = new TrainBench.Options(model.load(), modes, batchSizes, sweep, repeats, questionTokens, skipTrain,
                breakdown, variants, engine.precisions(engine.device()));
        try (NDManager manager = NDManager.newBaseManager(engine.device())) {
            new TrainBench(options, System.out).run(manager, threads);
        }
        return 0;
    }
}
