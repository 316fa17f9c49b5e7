package dev.mm4j.cli;

import ai.djl.ndarray.NDManager;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.checkpoint.ModelBundle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model folder (OUT/model of finetune)")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "PATH", description = "dataset (official JSON / folder or parquet)")
    Path data;

    @Option(names = "--split", description = "split (default: ${DEFAULT-VALUE})")
    String split = "val";

    @Option(names = "--predictions", paramLabel = "FILE", description = "where to write predictions (default: ${DEFAULT-VALUE})")
    Path predictions = Path.of("predictions.json");

    @Option(names = "--batch-size", description = "(default: ${DEFAULT-VALUE})")
    int batchSize = 8;

    @Option(names = "--limit", description = "at most N questions (0 = all)")
    int limit;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        engine.configureThreads();
        try (VqaDataset ds = TextVqaDatasets.open(data, split);
                NDManager manager = NDManager.newBaseManager(engine.device());
                ModelBundle.Loaded b = ModelBundle.load(model, manager);
                DataLoader loader = DataLoader.builder(limit > 0 ? first(ds, limit) : ds).transform(b.transform())
                        .tokenizer(b.tokenizer()).vocab(b.vocab()).batchSize(batchSize)
                        .padding(b.info().padding)
                        .requireAnswers(false).build()) {
            Evaluator.Result r = Evaluator.evaluate(b.model(), loader.epoch(0, 0), b.vocab(), manager, 0);
            PredictionsWriter.write(predictions, r.predictions());
            System.out.printf("VQA accuracy %.2f%% over %d questions (%s, split %s); predictions written to %s%n",
                    100 * r.accuracy(), r.count(), data, split, predictions);
            if (loader.skipped() > 0) {
                System.out.printf("%d questions skipped (unreadable images or empty questions): %s%n", loader.skipped(),
                        loader.skippedByReason());
            }
        }
        return 0;
    }

    private static List<VqaSample> first(Iterable<VqaSample> ds, int n) {
        List<VqaSample> out = new ArrayList<>();
        for (VqaSample s : ds) {
            out.add(s);
            if (out.size() >= n) {
                break;
            }
        }
        return out;
    }
}
