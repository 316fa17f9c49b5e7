package dev.mm4j.train;

import dev.mm4j.data.Batch;
import dev.mm4j.data.LabelledExamples;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.eval.AccuracyByType;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.report.TextTable;
import dev.mm4j.train.dist.ProcessGroup;
import dev.mm4j.train.dist.Rendezvous;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Fine-tunes FLAVA for classification on a VQA dataset: the library's training entry point, which
 * {@code mm4j finetune} calls. Built with {@link #builder()}, which takes the command line's settings as Java types:
 *
 * <pre>{@code
 * Finetuner.Result r = Finetuner.builder()
 *         .preset(Preset.TORCHMULTIMODAL)
 *         .checkpointFromHub("facebook/flava-full")
 *         .data(Path.of("textvqa"))                    // or .trainingData(myDataset)
 *         .vocabulary(Path.of("answers.txt"))          // or .buildVocabulary(2)
 *         .maxSteps(1000).batchSize(8)
 *         .outputDir(Path.of("runs/mine"))
 *         .listener(new TrainingListener() {
 *             public void onStep(Step s) { System.out.println(s.index() + " " + s.loss()); }
 *         })
 *         .build()
 *         .run();
 * }</pre>
 *
 * <p>A run has three parts: {@link RunSetup} (data, model, optimizer, resume), {@link TrainingLoop} (steps, validation,
 * checkpoints; progress, metrics and memory are its listeners) and {@link RunOutputs} (exported model, predictions,
 * curves, report). {@link #cancel()} from any thread stops it at the next step boundary with a checkpoint that
 * {@link Builder#resume(boolean) resume} continues exactly as if it had not stopped.
 */
public final class Finetuner {

    /** How a run ended. */
    public enum Status {
        /** All steps ran; the model was exported (and validated, with a validation split). */
        COMPLETED,
        /** {@link #cancel()} stopped it at a step boundary; the latest checkpoint resumes it. */
        CANCELLED,
        /** A non-finite loss stopped it; no update was made for that step, the last good checkpoint is kept. */
        STOPPED_ON_NON_FINITE_LOSS
    }

    /**
     * What a run did.
     *
     * @param status how it ended
     * @param steps the optimizer steps done in all (with those before a resume): the last checkpoint's step
     * @param losses the training loss of each step this run made
     * @param valAccuracy the final validation's VQA accuracy in [0, 1] (null without validation or unless completed)
     * @param baselineAccuracy the majority-answer baseline's accuracy on the validation split (null likewise)
     * @param baselineAnswer the training split's most common answer
     * @param outDir the run's output folder (settings, metrics.jsonl, checkpoints/, report)
     * @param modelDir the exported model bundle ({@code OUT/model}, for {@code VqaModel.load}); null unless completed
     * @param lastCheckpoint the latest checkpoint folder (null when none was written)
     * @param rssAtStep the process's RSS in bytes after steps 100 and 1000 (when reached)
     * @param byType the final validation's accuracy by question type (null likewise)
     */
    public record Result(Status status, long steps, List<Double> losses, Double valAccuracy, Double baselineAccuracy,
            String baselineAnswer, Path outDir, Path modelDir, Path lastCheckpoint, Map<Long, Long> rssAtStep,
            AccuracyByType byType) {
        /** Whether a non-finite loss stopped the run. */
        public boolean stoppedOnNonFinite() {
            return status == Status.STOPPED_ON_NON_FINITE_LOSS;
        }

        /** Whether {@link Finetuner#cancel()} stopped the run. */
        public boolean cancelled() {
            return status == Status.CANCELLED;
        }
    }

    /** Step counts after which the process's RSS is printed and reported (memory must stay flat). */
    static final Set<Long> RSS_AT_STEPS = Set.of(100L, 1000L);

    private final FinetuneSettings s;
    private final PrintStream out;
    private final List<TrainingListener> listeners;
    private final VqaDataset trainData;
    private final VqaDataset valData;
    private final boolean resume;
    private final boolean progressBar;
    private final Rendezvous rendezvous;
    private volatile boolean cancelRequested;

    private Finetuner(Builder b, FinetuneSettings settings) {
        this.s = settings;
        this.out = b.log;
        this.listeners = List.copyOf(b.listeners);
        this.trainData = b.trainData;
        this.valData = b.valData;
        this.resume = b.resume;
        this.progressBar = b.progressBar;
        this.rendezvous = b.rendezvous;
    }

    /** A builder starting from the {@link Preset#DEFAULT default} settings. */
    public static Builder builder() {
        return new Builder();
    }

    /** The effective settings of this run (a copy: changing it changes nothing). */
    public FinetuneSettings settings() {
        return s.copy();
    }

    /**
     * Asks the run to stop; safe from any thread, before or during {@link #run()}. The run finishes the step in
     * progress, writes a checkpoint and returns with {@link Status#CANCELLED}.
     */
    public void cancel() {
        cancelRequested = true;
    }

    /** Whether {@link #cancel()} was called. */
    public boolean isCancelRequested() {
        return cancelRequested;
    }

    /**
     * Runs the fine-tuning in the calling thread: until all steps ran, {@link #cancel()} was called, or a non-finite
     * loss. Bad records are skipped and counted, never fatal.
     *
     * @throws IOException when data, vocabulary, checkpoint or output folder cannot be read or written (e.g. the
     *     output folder already holds a run and {@code resume} was not asked)
     * @throws IllegalArgumentException for settings that cannot work (no data, unknown preset, bad model kwargs)
     */
    public Result run() throws IOException {
        boolean labelled = trainData == null && s.data != null && !s.isRetrieval()
                && LabelledExamples.recognizes(Path.of(s.data));
        if (rendezvous != null && rendezvous.worldSize() > 1) {
            if (labelled) {
                throw new IllegalArgumentException("labelled text / image classification runs in one process for now: "
                        + "leave out --nproc (distributed()) for " + s.data);
            }
            return runDataParallel();
        }
        if (labelled) {
            return runLabelled();
        }
        try (RunSetup run = RunSetup.open(s, resume, out, trainData, valData);
                MetricsLog metrics = RunOutputs.openMetrics(run);
                TrainingListeners.Progress progress = progressBar
                        ? new TrainingListeners.Progress(run.totalSteps, run.state.step) : null) {
            TrainingListeners.Memory memory = new TrainingListeners.Memory(out, RSS_AT_STEPS);
            List<TrainingListener> all = new ArrayList<>(List.of(TrainingListeners.console(out, s.printLoss),
                    TrainingListeners.metrics(metrics, s.logEvery), memory));
            if (progress != null) {
                all.add(progress);
            }
            all.addAll(listeners);
            TrainingLoop<Batch> loop = run.loop().listeners(all).log(out).cancelWhen(() -> cancelRequested);
            TrainingLoop.Outcome o = loop.run();
            if (progress != null) {
                progress.close();
            }
            if (o.stoppedOnNonFinite()) {
                return new Result(Status.STOPPED_ON_NON_FINITE_LOSS, run.state.step, o.losses(), null, null,
                        run.majorityAnswer, run.outDir, null, o.lastCheckpoint(), memory.rssAtStep(), null);
            }
            Path last = loop.checkpoint();
            if (o.cancelled()) {
                out.printf("%ncancelled after %d of %d steps; checkpoint %s (resume to continue)%n", run.state.step,
                        run.totalSteps, last);
                return new Result(Status.CANCELLED, run.state.step, o.losses(), null, null, run.majorityAnswer,
                        run.outDir, null, last, memory.rssAtStep(), null);
            }
            Evaluator.Result ev = run.valLoader != null ? loop.validate() : null;
            metrics.close();
            RunOutputs.Scores scores = RunOutputs.write(run, ev, memory.rssAtStep());
            out.printf("%ndone: %d steps; final loss %.4f; model exported to %s; last checkpoint %s%n", run.state.step,
                    run.state.lastLoss, RunOutputs.modelDir(run), last);
            if (ev != null) {
                out.printf("validation VQA accuracy %.2f%% (majority-answer baseline \"%s\": %.2f%%) over %d questions%n",
                        100 * ev.accuracy(), run.majorityAnswer, 100 * scores.baseline(), ev.count());
                out.print(TextTable.format("  ", AccuracyByType.header(), scores.byType().cells()));
            }
            return new Result(Status.COMPLETED, run.state.step, o.losses(), ev == null ? null : ev.accuracy(),
                    scores == null ? null : scores.baseline(), run.majorityAnswer, run.outDir, RunOutputs.modelDir(run),
                    last, memory.rssAtStep(), scores == null ? null : scores.byType());
        }
    }

    /**
     * Data-parallel: joins the process group, then rank 0 runs as a single process would (reports, checkpoints,
     * validation, outputs) while every rank trains on its shard of each global batch with the gradients averaged; the
     * other ranks write nothing and print nothing but errors.
     */
    private Result runDataParallel() throws IOException {
        int rank = rendezvous.rank();
        PrintStream log = rank == 0 ? out : new PrintStream(OutputStream.nullOutputStream());
        log.printf("data-parallel: %d processes (rendezvous %s:%d, timeout %d s)%n", rendezvous.worldSize(),
                rendezvous.masterAddr(), rendezvous.masterPort(), rendezvous.timeout().toSeconds());
        try (ProcessGroup group = ProcessGroup.open(rendezvous);
                RunSetup run = RunSetup.open(s, resume, log, trainData, valData, rank, rendezvous.worldSize());
                MetricsLog metrics = rank == 0 ? RunOutputs.openMetrics(run) : null;
                TrainingListeners.Progress progress = progressBar && rank == 0
                        ? new TrainingListeners.Progress(run.totalSteps, run.state.step) : null) {
            TrainingListeners.Memory memory = new TrainingListeners.Memory(log, RSS_AT_STEPS);
            List<TrainingListener> all = new ArrayList<>();
            if (rank == 0) {
                all.addAll(List.of(TrainingListeners.console(log, s.printLoss), TrainingListeners.metrics(metrics, s.logEvery),
                        memory));
                if (progress != null) {
                    all.add(progress);
                }
                all.addAll(listeners);
            }
            TrainingLoop<Batch> loop = run.loop().dataParallel(rank, rendezvous.worldSize(), new DataParallelSync(group))
                    .listeners(all).log(log).cancelWhen(() -> cancelRequested);
            TrainingLoop.Outcome o = loop.run();
            if (progress != null) {
                progress.close();
            }
            if (o.stoppedOnNonFinite()) {
                return new Result(Status.STOPPED_ON_NON_FINITE_LOSS, run.state.step, o.losses(), null, null,
                        run.majorityAnswer, run.outDir, null, o.lastCheckpoint(), memory.rssAtStep(), null);
            }
            Path last = loop.checkpoint();
            if (o.cancelled()) {
                return new Result(Status.CANCELLED, run.state.step, o.losses(), null, null, run.majorityAnswer,
                        run.outDir, null, last, memory.rssAtStep(), null);
            }
            if (rank != 0) {
                return new Result(Status.COMPLETED, run.state.step, o.losses(), null, null, run.majorityAnswer,
                        run.outDir, null, last, memory.rssAtStep(), null);
            }
            Evaluator.Result ev = run.valLoader != null ? loop.validate() : null;
            metrics.close();
            RunOutputs.Scores scores = RunOutputs.write(run, ev, memory.rssAtStep());
            log.printf("%ndone: %d steps on %d processes; final loss %.4f; model exported to %s; last checkpoint %s%n",
                    run.state.step, rendezvous.worldSize(), run.state.lastLoss, RunOutputs.modelDir(run), last);
            return new Result(Status.COMPLETED, run.state.step, o.losses(), ev == null ? null : ev.accuracy(),
                    scores == null ? null : scores.baseline(), run.majorityAnswer, run.outDir, RunOutputs.modelDir(run),
                    last, memory.rssAtStep(), scores == null ? null : scores.byType());
        }
    }

    /**
     * Labelled text, images or both ({@link LabelledExamples}) instead of VQA data: {@link ClassificationFinetuner}
     * with this run's settings and listeners; its result as this run's (the validation accuracy, the majority-class
     * baseline; {@link #lastLabelled()} has the rest: macro-F1, per class, the head).
     */
    private Result runLabelled() throws IOException {
        ClassificationFinetuner f = new ClassificationFinetuner(s, out).resume(resume).cancelWhen(() -> cancelRequested);
        listeners.forEach(f::listener);
        ClassificationFinetuner.Result r = f.run();
        lastLabelled = r;
        return new Result(r.status(), r.steps(), r.losses(), r.metrics() == null ? null : r.metrics().accuracy(),
                r.baselineAccuracy(), r.majorityClass(), r.outDir(), r.modelDir(), r.lastCheckpoint(), Map.of(), null);
    }

    private volatile ClassificationFinetuner.Result lastLabelled;

    /**
     * After {@link #run()} on labelled text / image / image + text data: that run's full result (macro-F1 and
     * per-class metrics, class names, the head); null for VQA data or before it ran.
     */
    public ClassificationFinetuner.Result lastLabelled() {
        return lastLabelled;
    }

    /**
     * The settings of a run, as Java types. They are applied in this order: the {@link #preset(Preset) preset} (or
     * {@link #settings(FinetuneSettings) given settings}), the {@link #settingsFile(Path) YAML file}, then every
     * setter in the order called. Each setter is a settings key (as in {@code OUT/settings.yaml} and {@code --set});
     * keys without a setter of their own ({@code warmup_steps}, {@code schedule}, {@code precision}, {@code task},
     * ...) go through {@link #set(String, Object)}.
     */
    public static final class Builder extends RunBuilder<Builder> {
        private VqaDataset trainData;
        private VqaDataset valData;

        private Builder() {
            super(new PrintStream(OutputStream.nullOutputStream())); // default: the run prints nowhere
        }

        /** The training data: a TextVQA folder or file (official JSON, parquet) or a JSON Lines / CSV manifest. */
        public Builder data(Path path) {
            return set("data", path.toString());
        }

        /**
         * Train on the caller's dataset instead of {@link #data(Path)} (see {@code VqaDataset.of}); the run reads it
         * once per epoch and does not close it. Validation then needs {@link #validationData} (or a data path).
         */
        public Builder trainingData(VqaDataset train) {
            this.trainData = Objects.requireNonNull(train, "train");
            return this;
        }

        /** Validate on the caller's dataset (not closed by the run). */
        public Builder validationData(VqaDataset validation) {
            this.valData = Objects.requireNonNull(validation, "validation");
            return this;
        }

        /** Which split of {@link #data(Path)} to train on (default train). */
        public Builder trainSplit(String split) {
            return set("train_split", split);
        }

        /** Which split of {@link #data(Path)} to validate on (default val). */
        public Builder validationSplit(String split) {
            return set("val_split", split);
        }

        /** No validation split: the run trains and exports only. */
        public Builder noValidation() {
            return set("val_split", "none");
        }

        /** The answer vocabulary: one answer per line, line index = class id (default DATA/answers.txt). */
        public Builder vocabulary(Path answers) {
            return set("vocab", answers.toString());
        }

        /**
         * Build the answer vocabulary from the training split: the answers given at least {@code minCount} times,
         * most frequent first, after {@code <unk>} on line 0; written to OUT/answers.txt.
         */
        public Builder buildVocabulary(int minCount) {
            set("vocab", "build");
            return set("vocab_min_count", minCount);
        }

        /**
         * The finetuner, its settings fixed.
         *
         * @throws IllegalArgumentException for an unknown key or a value of the wrong type (one line naming the key)
         * @throws IOException when the settings file cannot be read
         */
        public Finetuner build() throws IOException {
            FinetuneSettings s = resolve("Finetuner.Builder");
            if (s.isPretraining()) {
                throw new IllegalArgumentException("task pretraining is run by Pretrainer.builder(), not Finetuner");
            }
            return new Finetuner(this, s);
        }
    }
}
