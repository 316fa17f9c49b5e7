package dev.mm4j.cli;

import dev.mm4j.eval.BundleEvaluation;
import dev.mm4j.eval.PredictionsWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j evaluate}: VQA accuracy of a fine-tuned model on a split, and its predictions file. */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = {"Scores a fine-tuned model (a folder written by finetune, OUT/model) on a split with the official "
                + "VQA accuracy (normalized answers; mean over the 10 leave-one-out subsets of min(1, matches/3)) and writes "
                + "predictions as [{\"question_id\", \"answer\"}], the format of the TextVQA evaluation server."})
public final class EvaluateCommand implements Callable<Integer> {
    @Mixin SplitOptions target = new SplitOptions();

    @Option(names = "--predictions", paramLabel = "FILE", description = "where to write predictions (default: ${DEFAULT-VALUE})")
    Path predictions = Path.of("predictions.json");

    @Option(names = "--limit", description = "at most N questions (0 = all)")
    int limit;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        engine.configureThreads();
        BundleEvaluation e = BundleEvaluation.run(target.model(), target.data(), target.split(), target.batchSize(), limit, engine.device(),
                engine.modelPrecision());
        PredictionsWriter.write(predictions, e.result().predictions());
        System.out.printf("VQA accuracy %.2f%% over %d questions (%s, split %s); predictions written to %s%n",
                100 * e.result().accuracy(), e.result().count(), target.data(), target.split(), predictions);
        if (e.skipped() > 0) {
            System.out.printf("%d questions skipped (unreadable images or empty questions): %s%n", e.skipped(),
                    e.skippedByReason());
        }
        return 0;
    }
}
