package dev.mm4j.eval;

import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.LabelledExamples;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.flava.RequiredEmbedding;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * FLAVA's classification head over labelled examples ({@link LabelledExamples}: text, image or both): turns examples
 * into host batches as the head needs them (text tokenized as BERT does, a pair as {@code [CLS] a [SEP] b [SEP]},
 * padded to the batch's longest; images through the transform) and predicts their classes. Training
 * ({@code train.ClassificationFinetuner}), evaluation and prediction use the same batches.
 */
public final class LabelledClassifier {
    private final FlavaForClassification model;
    private final List<String> classes;
    private final Map<String, Integer> classIds = new HashMap<>();
    private final QuestionTokenizer tokenizer;
    private final ImageTransform transform;
    private final RequiredEmbedding head;
    /** Where the model's weights live: each prediction batch's memory is opened on it. */
    private final NDManager manager;

    /**
     * @param classes class names by id (the run's {@code classes.txt})
     * @param head the encoder the head reads (image, text or mm)
     */
    public LabelledClassifier(FlavaForClassification model, List<String> classes, QuestionTokenizer tokenizer,
            ImageTransform transform, RequiredEmbedding head) {
        this.model = model;
        this.classes = List.copyOf(classes);
        for (int i = 0; i < classes.size(); i++) {
            classIds.put(classes.get(i), i);
        }
        this.tokenizer = tokenizer;
        this.transform = transform;
        this.head = head;
        this.manager = model.flava().namedParameters().values().iterator().next().array().getManager();
    }

    /**
     * The classifier of a bundle that {@code train.ClassificationFinetuner} wrote ({@code bundle.json} task
     * classification): its class names, tokenizer, transform and head.
     */
    public static LabelledClassifier of(ModelBundle.Loaded bundle) {
        if (!"classification".equals(bundle.info().task)) {
            throw new IllegalArgumentException("the bundle was trained for " + (bundle.info().task == null ? "vqa"
                    : bundle.info().task) + ", not for labelled text / image classification (bundle.json task)");
        }
        List<String> classes = new ArrayList<>();
        for (int i = 0; i < bundle.vocab().size(); i++) {
            classes.add(bundle.vocab().answer(i));
        }
        RequiredEmbedding head = RequiredEmbedding.valueOf(bundle.info().requiredEmbedding.toUpperCase(Locale.ROOT));
        return new LabelledClassifier(bundle.model(), classes, bundle.tokenizer(), bundle.transform(), head);
    }

    /** The head TorchMultimodal would use for {@code kind} unless {@code override} (image, text, mm) names one. */
    public static RequiredEmbedding head(LabelledExamples.Kind kind, String override) {
        String name = override == null || override.isBlank() ? kind.requiredEmbedding() : override;
        RequiredEmbedding h = switch (name.toLowerCase(Locale.ROOT)) {
            case "image" -> RequiredEmbedding.IMAGE;
            case "text" -> RequiredEmbedding.TEXT;
            case "mm" -> RequiredEmbedding.MM;
            default -> throw new IllegalArgumentException("required_embedding '" + name + "' is not image, text or mm");
        };
        boolean hasImage = kind != LabelledExamples.Kind.TEXT;
        boolean hasText = kind != LabelledExamples.Kind.IMAGE;
        if (h == RequiredEmbedding.IMAGE && !hasImage || h == RequiredEmbedding.TEXT && !hasText
                || h == RequiredEmbedding.MM && !(hasImage && hasText)) {
            throw new IllegalArgumentException("required_embedding " + name + " needs " + (h == RequiredEmbedding.MM
                    ? "images and texts" : name + "s") + ", but the data has " + kind.name().toLowerCase(Locale.ROOT).replace('_', '+'));
        }
        return h;
    }

    public List<String> classes() {
        return classes;
    }

    public RequiredEmbedding head() {
        return head;
    }

    public ImageTransform transform() {
        return transform;
    }

    /** The class id of an example's label; one line naming the record when the label is not a class. */
    public int classId(LabelledExamples.Example e) {
        Integer id = e.label() == null ? null : classIds.get(e.label());
        if (id == null) {
            throw new IllegalArgumentException(e.origin() + ": label '" + e.label() + "' is not one of the "
                    + classes.size() + " classes of the training split (" + String.join(", ", classes.subList(0,
                    Math.min(10, classes.size()))) + (classes.size() > 10 ? ", ..." : "") + ")");
        }
        return id;
    }

    /** The images the head reads, decoded, or null per example where it reads none. */
    public float[] pixels(LabelledExamples.Example e) throws IOException {
        if (head == RequiredEmbedding.TEXT) {
            return null;
        }
        return transform.apply(java.nio.file.Files.readAllBytes(e.image()), e.origin());
    }

    /**
     * A host batch of {@code examples}; {@code pixels} holds each one's decoded image (or null to decode here).
     *
     * @param labelled whether to carry the labels (training, evaluation)
     */
    public FlavaForClassification.Examples batch(List<LabelledExamples.Example> examples, List<float[]> pixels,
            boolean labelled, int epoch, int index) throws IOException {
        int n = examples.size();
        float[] images = null;
        if (head != RequiredEmbedding.TEXT) {
            int len = transform.outputLength();
            images = new float[n * len];
            for (int i = 0; i < n; i++) {
                float[] px = pixels != null && pixels.get(i) != null ? pixels.get(i) : pixels(examples.get(i));
                System.arraycopy(px, 0, images, i * len, len);
            }
        }
        long[] ids = null;
        int seqLen = 0;
        if (head != RequiredEmbedding.IMAGE) {
            List<long[]> rows = new ArrayList<>(n);
            for (LabelledExamples.Example e : examples) {
                long[] r = e.textPair() != null ? tokenizer.encodePair(e.text(), e.textPair()).ids() : tokenizer.encode(e.text());
                rows.add(r);
                seqLen = Math.max(seqLen, r.length);
            }
            ids = new long[n * seqLen]; // 0 = [PAD]; the text encoder masks it
            for (int i = 0; i < n; i++) {
                System.arraycopy(rows.get(i), 0, ids, i * seqLen, rows.get(i).length);
            }
        }
        long[] labels = null;
        if (labelled) {
            labels = new long[n];
            for (int i = 0; i < n; i++) {
                labels[i] = classId(examples.get(i));
            }
        }
        return new FlavaForClassification.Examples(images, transform.height(), transform.width(), ids, seqLen, labels,
                head, n, epoch, index);
    }

    /** A prediction: the class id, its softmax probability, and every class's probability. */
    public record Prediction(LabelledExamples.Example example, int classId, double probability, float[] probabilities) {}

    /** The predicted classes of {@code examples}, in batches of {@code batchSize}, the model in eval mode. */
    public List<Prediction> predict(List<LabelledExamples.Example> examples, int batchSize) throws IOException {
        List<Prediction> out = new ArrayList<>(examples.size());
        for (int start = 0; start < examples.size(); start += batchSize) {
            List<LabelledExamples.Example> part = examples.subList(start, Math.min(examples.size(), start + batchSize));
            out.addAll(predict(part, null, start / batchSize));
        }
        return out;
    }

    /**
     * The predicted classes of one batch, the model in eval mode; {@code pixels} holds each example's decoded image
     * ({@link #transform()}'s output; null, or a null entry, to read the example's image file), as a server that
     * received the images' bytes has them.
     */
    public List<Prediction> predict(List<LabelledExamples.Example> examples, List<float[]> pixels, int index)
            throws IOException {
        model.setTraining(false);
        FlavaForClassification.Examples b = batch(examples, pixels, false, 0, index);
        List<Prediction> out = new ArrayList<>(examples.size());
        try (ModelStep step = ModelStep.open(manager)) {
            float[] p = model.forward(step, b).logits().softmax(-1).toFloatArray();
            int k = classes.size();
            for (int i = 0; i < examples.size(); i++) {
                float[] row = java.util.Arrays.copyOfRange(p, i * k, (i + 1) * k);
                int best = 0;
                for (int c = 1; c < k; c++) {
                    if (row[c] > row[best]) {
                        best = c;
                    }
                }
                out.add(new Prediction(examples.get(i), best, row[best], row));
            }
        }
        return out;
    }

    /** The metrics of {@code predictions} against their examples' labels. */
    public ClassificationMetrics score(List<Prediction> predictions) {
        int[] gold = new int[predictions.size()];
        int[] pred = new int[predictions.size()];
        for (int i = 0; i < gold.length; i++) {
            gold[i] = classId(predictions.get(i).example());
            pred[i] = predictions.get(i).classId();
        }
        return ClassificationMetrics.of(gold, pred, classes);
    }

    /** Predictions as JSON Lines: id, predicted class, probability, and the gold label where there is one. */
    public String toJsonLines(List<Prediction> predictions) {
        StringBuilder sb = new StringBuilder();
        for (Prediction p : predictions) {
            sb.append(String.format(Locale.ROOT, "{\"id\": %s, \"prediction\": %s, \"probability\": %.6f",
                    ClassificationMetrics.quote(p.example().id()), ClassificationMetrics.quote(classes.get(p.classId())),
                    p.probability()));
            if (p.example().label() != null) {
                sb.append(", \"label\": ").append(ClassificationMetrics.quote(p.example().label()));
            }
            sb.append("}\n");
        }
        return sb.toString();
    }
}
