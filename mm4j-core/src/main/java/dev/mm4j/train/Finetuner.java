package dev.mm4j.train;

import dev.mm4j.eval.AccuracyByType;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.report.TextTable;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Fine-tunes FLAVA for classification on a TextVQA-format dataset, in three parts: {@link RunSetup}
 * (data, model, optimizer, resume), {@link TrainingLoop} (steps, validation, checkpoints; progress,
 * metrics and memory are its listeners) and {@link RunOutputs} (exported model, predictions, curves,
 * report).
 */
public final class Finetuner {

    /** What a run did. */
    public record Result(long steps, List<Double> losses, Double valAccuracy, Double baselineAccuracy,
            String baselineAnswer, boolean stoppedOnNonFinite, Path outDir, Map<Long, Long> rssAtStep,
            AccuracyByType byType) {}

    /** Step counts after which the process's RSS is printed and reported (memory must stay flat). */
    static final Set<Long> RSS_AT_STEPS = Set.of(100L, 1000L);

    private final FinetuneSettings s;
    private final PrintStream out;

    public Finetuner(FinetuneSettings settings, PrintStream out) {
        this.s = settings;
        this.out = out;
    }

    public Result run(boolean resume) throws IOException {
        try (RunSetup run = RunSetup.open(s, resume, out);
                MetricsLog metrics = RunOutputs.openMetrics(run);
                TrainingListeners.Progress progress = new TrainingListeners.Progress(run.totalSteps, run.state.step)) {
            TrainingListeners.Memory memory = new TrainingListeners.Memory(out, RSS_AT_STEPS);
            TrainingLoop loop = new TrainingLoop(run, List.of(TrainingListeners.console(out, s.printLoss),
                    TrainingListeners.metrics(metrics, s.logEvery), progress, memory), out);
            TrainingLoop.Outcome o = loop.run();
            progress.close();
            if (o.stoppedOnNonFinite()) {
                return new Result(run.state.step, o.losses(), null, null, run.majorityAnswer, true, run.outDir,
                        memory.rssAtStep(), null);
            }
            Path last = loop.checkpoint();
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
            return new Result(run.state.step, o.losses(), ev == null ? null : ev.accuracy(),
                    scores == null ? null : scores.baseline(), run.majorityAnswer, false, run.outDir, memory.rssAtStep(),
                    scores == null ? null : scores.byType());
        }
    }
}
