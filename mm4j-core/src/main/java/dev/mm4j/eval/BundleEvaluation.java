package dev.mm4j.eval;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A fine-tuned model bundle scored on a split in this process, as {@code mm4j evaluate} does it: the
 * bundle's own input preparation (padding, max length, transform) and precision, batches in file order, eval mode.
 *
 * @param result accuracy, count and predictions
 * @param skipped questions the loader skipped (unreadable images, empty questions), by reason
 */
public record BundleEvaluation(Evaluator.Result result, long skipped, Map<String, Integer> skippedByReason) {

    /**
     * @param limit at most this many questions (0 = all)
     * @throws IllegalStateException when the split has no usable question
     */
    public static BundleEvaluation run(Path bundle, Path data, String split, int batchSize, int limit, Device device)
            throws IOException {
        return run(bundle, data, split, batchSize, limit, device, null);
    }

    /**
     * As {@link #run(Path, Path, String, int, int, Device)} with the matrix products in {@code precision} (fp32, bf16,
     * auto; null: the precision the bundle was trained in, see {@link ModelBundle#load(Path, NDManager, String)}).
     */
    public static BundleEvaluation run(Path bundle, Path data, String split, int batchSize, int limit, Device device,
            String precision) throws IOException {
        try (VqaDataset ds = TextVqaDatasets.open(data, split);
                NDManager manager = NDManager.newBaseManager(device);
                ModelBundle.Loaded b = ModelBundle.load(bundle, manager, precision);
                DataLoader loader = DataLoader.builder(limit > 0 ? first(ds, limit) : ds).transform(b.transform())
                        .tokenizer(b.tokenizer()).vocab(b.vocab()).batchSize(batchSize).padding(b.info().padding)
                        .requireAnswers(false).build()) {
            Evaluator.Result r = Evaluator.evaluate(b.model(), loader.epoch(0, 0), b.vocab(), manager, 0);
            return new BundleEvaluation(r, loader.skipped(), loader.skippedByReason());
        }
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
