package dev.mm4j.eval;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.LabelledExamples;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A bundle fine-tuned on labelled text, images or both ({@code bundle.json} task classification) run over a split of
 * such data, as {@code mm4j evaluate} does it: its predictions (JSON Lines) and, where the split has labels, accuracy,
 * macro-F1 and per-class figures; or over one example ({@code mm4j predict}).
 *
 * @param metrics null when the split has no labels (e.g. GLUE's test files)
 * @param predictionsJsonl one line per example: id, prediction, probability, label
 */
public record LabelledBundleEvaluation(ClassificationMetrics metrics, String predictionsJsonl, int count,
        String head, List<String> classes) {

    /** Whether {@code dir} holds a bundle that {@code train.ClassificationFinetuner} wrote. */
    public static boolean isLabelledBundle(Path dir) {
        Path info = dir.resolve(ModelBundle.INFO);
        if (!Files.isRegularFile(info)) {
            return false;
        }
        try {
            JsonNode n = new ObjectMapper().readTree(info.toFile());
            return n.has("task") && "classification".equals(n.get("task").asText());
        } catch (IOException e) {
            return false;
        }
    }

    /** @param limit at most this many examples (0 = all) */
    public static LabelledBundleEvaluation run(Path bundle, Path data, String split, int batchSize, int limit,
            Device device, String precision) throws IOException {
        List<LabelledExamples.Example> examples = LabelledExamples.read(data, split).examples();
        if (limit > 0 && examples.size() > limit) {
            examples = examples.subList(0, limit);
        }
        try (NDManager manager = NDManager.newBaseManager(device);
                ModelBundle.Loaded b = ModelBundle.load(bundle, manager, precision)) {
            LabelledClassifier c = LabelledClassifier.of(b);
            List<LabelledClassifier.Prediction> p = c.predict(examples, Math.max(1, batchSize));
            boolean labelled = examples.stream().allMatch(e -> e.label() != null);
            return new LabelledBundleEvaluation(labelled ? c.score(p) : null, c.toJsonLines(p), p.size(),
                    c.head().name().toLowerCase(), c.classes());
        }
    }

    /** One example's class probabilities, by class id. */
    public record Classified(List<String> classes, float[] probabilities) {}

    /** Classifies one example: an image file and/or a text (and its pair), as the bundle's head needs. */
    public static Classified classify(Path bundle, Path image, String text, String textPair, Device device,
            String precision) throws IOException {
        try (NDManager manager = NDManager.newBaseManager(device);
                ModelBundle.Loaded b = ModelBundle.load(bundle, manager, precision)) {
            LabelledClassifier c = LabelledClassifier.of(b);
            boolean needsImage = c.head() != dev.mm4j.flava.RequiredEmbedding.TEXT;
            boolean needsText = c.head() != dev.mm4j.flava.RequiredEmbedding.IMAGE;
            if (needsImage && image == null || needsText && text == null) {
                throw new IllegalArgumentException("this model's head reads " + c.head().name().toLowerCase() + ": give "
                        + (needsImage && needsText ? "--image FILE and --text TEXT" : needsImage ? "--image FILE" : "--text TEXT"));
            }
            LabelledExamples.Example e = new LabelledExamples.Example("input", text, textPair, image, null,
                    image != null ? image.toString() : "--text");
            return new Classified(c.classes(), c.predict(List.of(e), 1).get(0).probabilities());
        }
    }
}
