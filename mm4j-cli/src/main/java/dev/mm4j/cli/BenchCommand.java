package dev.mm4j.cli;

import ai.djl.ndarray.NDManager;
import dev.mm4j.bench.AdamWBench;
import dev.mm4j.bench.AnchorBench;
import dev.mm4j.bench.DistBench;
import dev.mm4j.bench.PretrainBench;
import dev.mm4j.bench.TrainBench;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.nn.Precision;
import dev.mm4j.train.dist.Launcher;
import dev.mm4j.train.dist.Rendezvous;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code mm4j bench}: matrix-multiply peak vs. full-size FLAVA train/inference steps, side by side. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Measures this machine's matrix-multiply peak through libtorch (the best over square and the model's "
                + "shapes, the shape printed), then full-size FLAVA "
                + "(" + FlavaConfig.TEXTVQA_CLASSES + " classes) train steps (forward + backward + AdamW) and inference in "
                + "the tutorial mode (text padded to 512, multimodal encoder attends padding) and the dynamic mode (padded "
                + "to the longest question, padding masked), and prints s/step, samples/s, GFLOP/step, GFLOP/s, %% of peak "
                + "and peak RSS per mode. With --precision fp32,bf16: one row per precision, each against its own matmul peak, and "
                + "the bf16 logits' difference from fp32 on the same model and batch; int8 (fp32,int8): inference rows only, "
                + "against the int8 linear peak (oneDNN's int8 products, each input quantized per call), and int8's logit "
                + "difference from fp32.",
                "--task pretraining: the full-size pretraining step instead (FLAVAForPreTraining with the codebook, "
                        + "ITM, MMM and contrastive losses on a batch of image-text pairs, text padded to --text-len 77), fp32 and bf16 by default, "
                        + "s/step and peak RSS, and the command that times TorchMultimodal's on PyTorch eager beside it.",
                "--nproc N: the data-parallel fine-tuning step (batch 2 per rank, or the first --batch-sizes; question "
                        + "padded to --question-tokens; fp32 by default, --precision fp32,bf16, --variants default,keep for bf16 with "
                        + "bf16_keep_activations too) three ways: N processes x 1 "
                        + "thread (--threads) through finetune --nproc's launcher and c10d, 1 process x N threads at the same "
                        + "global batch (N micro-batches with gradient accumulation), and the all-reduce of the model's "
                        + "gradients in GB/s; with --anchors, PyTorch DDP's rows (tools/anchors/ddp_anchor.py, gloo, 2 x 1 "
                        + "thread) and the s/step ratio beside them."})
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
            + "optimizer: decay pass + libtorch Adam op, gradients kept and zeroed), default (one-pass AdamW: libtorch's "
            + "fused kernel, gradients released after the step), checkpointing (default + activation checkpointing per transformer layer), "
            + "keep (default + bf16_keep_activations; the training step recomputes no bf16 layer anyway, so the same as "
            + "default there; bf16 rows only) "
            + "(default: ${DEFAULT-VALUE}; --task pretraining: default, keep, checkpointing)")
    List<String> variants = List.of("default");

    @Option(names = "--task", paramLabel = "classification|pretraining", description = "classification (default: the "
            + "fine-tuning step, as above) or pretraining")
    String task = "classification";

    @Option(names = "--text-len", description = "with --task pretraining: caption length, padded (default: ${DEFAULT-VALUE}, "
            + "as TorchMultimodal's VL transform pads)")
    int textLen = 77;

    @Option(names = "--adamw-only", description = "time only the optimizer step (AdamW) on the model's parameters, each "
            + "mode in turn per round (--repeats rounds): libtorch's fused kernel (the default), the same with a clipping "
            + "factor, the Java one-pass update and the per-op baseline, against the memory-bandwidth floor")
    boolean adamwOnly;

    @Option(names = "--adamw-params", description = "with --adamw-only: at most this many parameters, the model's first "
            + "(0: all; default: ${DEFAULT-VALUE})")
    long adamwParams = 0;

    @Option(names = "--anchors", paramLabel = "PYTHON", description = "after our rows, run the reference bench of "
            + "tools/anchors (TorchMultimodal on PyTorch eager fp32/bf16, torch.compile bf16, PyTorch dynamic int8, ONNX "
            + "Runtime fp32/int8) with this Python interpreter of the reference environment and print its rows beside ours "
            + "(README: Speed, the reference bench)")
    Path anchors;

    @Option(names = "--anchors-scripts", description = "with --anchors: the anchor scripts' folder (default: ${DEFAULT-VALUE})")
    Path anchorsScripts = Path.of("tools", "anchors");

    @Option(names = "--anchors-tmm", description = "with --anchors: the folder holding TorchMultimodal's torchmultimodal "
            + "package (default: $TMM_PATH)")
    Path anchorsTmm;

    @Option(names = "--nproc", paramLabel = "N", description = "time data-parallel training in N processes on this "
            + "machine against 1 process with N times the threads (see above) (default: 1, the single-process bench)")
    int nproc = 1;

    @Spec CommandSpec spec;

    @Mixin ModelOptions model = new ModelOptions();
    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        if (nproc > 1) {
            return dataParallel();
        }
        AnchorBench anchorBench = null;
        if (anchors != null) { // checked before our bench runs: a wrong path fails at once, not after it
            String env = System.getenv("TMM_PATH");
            Path tmm = anchorsTmm != null ? anchorsTmm : Path.of(env == null ? "" : env);
            int n = engine.threads > 0 ? engine.threads : Runtime.getRuntime().availableProcessors();
            anchorBench = new AnchorBench(anchors, anchorsScripts, tmm, n, System.out);
        }
        int threads = engine.configureThreads();
        if (adamwOnly) {
            try (NDManager manager = NDManager.newBaseManager(engine.device())) {
                AdamWBench.run(model.load(), manager, adamwParams, Math.max(1, repeats), System.out);
            }
            return 0;
        }
        if (task.equals("pretraining")) {
            List<dev.mm4j.nn.Precision> precisions = engine.precisions(engine.device(), List.of("fp32", "bf16"));
            int batch = batchSizes.equals(List.of(2, 1)) ? 2 : batchSizes.get(0);
            var options = new PretrainBench.Options(model.load(new FlavaConfig()), batch, textLen, repeats, precisions,
                    variants);
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
        if (anchorBench != null) {
            anchorBench.run(modes, questionTokens, repeats, skipTrain, dev.mm4j.nn.TorchOps.fastBf16(engine.device()));
        }
        return 0;
    }

    /** {@code --nproc N}: launches the ranks (this command line again), or is one of them ({@code RANK} is set). */
    private int dataParallel() throws Exception {
        if (!task.equals("classification") || adamwOnly || skipTrain || breakdown || !sweep.isEmpty()
                || !List.of("default", "keep").containsAll(variants) || !modes.equals(List.of("tutorial", "dynamic"))) {
            throw new IllegalArgumentException("--nproc times the classification fine-tuning step in dynamic mode only: "
                    + "leave out --task, --adamw-only, --skip-train, --breakdown, --sweep and --modes; --variants takes "
                    + "default and keep");
        }
        List<Precision> precisions = engine.precisions(engine.device());
        int batch = batchSizes.equals(List.of(2, 1)) ? 2 : batchSizes.get(0);
        var options = new DistBench.Options(model.load(), batch, questionTokens, Math.max(1, repeats), precisions,
                engine.threads > 0 ? engine.threads : 1, variants);
        Rendezvous rank = Rendezvous.fromEnvironment(System.getenv()); // set by the launcher for each process
        try (NDManager manager = NDManager.newBaseManager(engine.device())) {
            if (rank != null) {
                new DistBench(options, System.out).rank(rank, manager);
                return 0;
            }
            AnchorBench anchorBench = null;
            if (anchors != null) { // checked before the bench runs: a wrong path fails at once
                String env = System.getenv("TMM_PATH");
                Path tmm = anchorsTmm != null ? anchorsTmm : Path.of(env == null ? "" : env);
                anchorBench = new AnchorBench(anchors, anchorsScripts, tmm, 1, System.out);
            }
            List<String> given = spec.commandLine().getParseResult().originalArgs();
            List<String> args = given.subList(given.indexOf(spec.name()), given.size());
            new DistBench(options, System.out).run(Launcher.sameJvm(Main.class.getName(), args), nproc, manager,
                    anchorBench);
        }
        return 0;
    }
}
