package dev.mm4j.inference;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Zero-shot classification, CLIP-style: each label becomes a prompt ({@code template} with {@code {}} replaced by
 * the label), the image is scored against every prompt by exp(logit_scale) x cosine similarity, and a softmax over
 * the labels gives probabilities. No training: the classes are whatever the caller names.
 */
public final class ZeroShotClassifier {
    /** A label and its probability. */
    public record Score(String label, double probability) {}

    private final Embedder embedder;
    private final List<String> labels;
    private final float[][] prompts;

    /** Embeds the prompts once; the labels must differ, and {@code template} must contain {@code {}}. */
    public ZeroShotClassifier(Embedder embedder, List<String> labels, String template) {
        if (labels.isEmpty()) {
            throw new IllegalArgumentException("no labels: give at least one (e.g. --labels \"stop,open,closed\")");
        }
        Set<String> seen = new HashSet<>();
        for (String label : labels) {
            if (!seen.add(label)) {
                throw new IllegalArgumentException("label '" + label + "' is given twice: give each label once");
            }
        }
        if (!template.contains("{}")) {
            throw new IllegalArgumentException("template '" + template + "' has no {} where the label goes");
        }
        this.embedder = embedder;
        this.labels = List.copyOf(labels);
        this.prompts = embedder.texts(labels.stream().map(l -> template.replace("{}", l)).toList());
    }

    /** The labels with their probabilities for one encoded image, most likely first. */
    public List<Score> classify(byte[] image, String name) throws IOException {
        float[] v = embedder.images(List.of(image), List.of(name))[0];
        double scale = embedder.temperatureScale();
        double[] logits = new double[labels.size()];
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < logits.length; i++) {
            logits[i] = scale * Embedder.cosine(v, prompts[i]);
            max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            logits[i] = Math.exp(logits[i] - max);
            sum += logits[i];
        }
        List<Score> out = new ArrayList<>();
        for (int i = 0; i < logits.length; i++) {
            out.add(new Score(labels.get(i), logits[i] / sum));
        }
        out.sort(Comparator.comparingDouble(Score::probability).reversed());
        return out;
    }
}
