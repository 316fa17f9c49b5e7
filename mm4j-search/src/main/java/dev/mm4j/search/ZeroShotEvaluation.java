package dev.mm4j.search;

import dev.mm4j.data.LabelledExamples;
import dev.mm4j.inference.Embedder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Zero-shot image classification measured on an ImageFolder split, as CLIP-style zero-shot ImageNet is (TorchMultimodal's
 * FLAVA example ships the class names and OpenAI's prompt templates in {@code data/imagenet_zeroshot_data.py}): each
 * class's text embedding is the mean of its prompts' L2-normalised embeddings (one prompt per template, {@code {}}
 * replaced by the class name), normalised again; each image is assigned the classes by cosine similarity; top-1 and
 * top-5 accuracy against the image's folder.
 */
public final class ZeroShotEvaluation {
    /** A few of OpenAI's ImageNet prompt templates (imagenet_zeroshot_data.py's openai_imagenet_template). */
    public static final List<String> DEFAULT_TEMPLATES = List.of("a bad photo of a {}.", "a photo of many {}.",
            "a rendering of a {}.", "a photo of the {}.", "a photo of a {}.", "a close-up photo of a {}.",
            "a bright photo of a {}.", "a drawing of a {}.", "itap of a {}.", "a good photo of a {}.");

    /** Top-1 / top-5 accuracy (fractions) over {@code images} images of {@code classes} classes. */
    public record Result(double top1, double top5, int images, int classes, int templates) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "top-1 %.1f%%, top-5 %.1f%% (%d images, %d classes, %d templates)",
                    100 * top1, 100 * top5, images, classes, templates);
        }
    }

    private ZeroShotEvaluation() {}

    /** Templates from a file: one per line, each with {@code {}} where the class name goes; blank lines and # skipped. */
    public static List<String> templates(Path file) throws IOException {
        List<String> out = new ArrayList<>();
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String t = lines.get(i).strip();
            if (t.isEmpty() || t.startsWith("#")) {
                continue;
            }
            if (!t.contains("{}")) {
                throw new IOException(file + ":" + (i + 1) + ": template '" + t + "' has no {} where the class name goes");
            }
            out.add(t);
        }
        if (out.isEmpty()) {
            throw new IOException(file + ": no templates");
        }
        return out;
    }

    /**
     * @param classNames the name each class folder stands for, in the folders' sorted order (null: the folder names,
     *     underscores as spaces)
     * @param limit at most this many images (0 = all)
     */
    public static Result evaluate(Embedder embedder, Path data, String split, List<String> classNames,
            List<String> templates, int limit) throws IOException {
        LabelledExamples.Split s = LabelledExamples.read(data, split);
        if (s.kind() != LabelledExamples.Kind.IMAGE) {
            throw new IllegalArgumentException(data + ": zero-shot classification needs an ImageFolder (one folder per class)");
        }
        List<String> folders = LabelledExamples.classNames(s.examples());
        List<String> names = classNames != null ? classNames : folders.stream().map(f -> f.replace('_', ' ')).toList();
        if (names.size() != folders.size()) {
            throw new IllegalArgumentException(names.size() + " class names for the " + folders.size()
                    + " class folders of " + data + " (give one per folder, in sorted folder order)");
        }
        int d = embedder.dimension();
        float[][] classVectors = new float[names.size()][];
        for (int c = 0; c < names.size(); c++) {
            String name = names.get(c);
            float[][] prompts = embedder.texts(templates.stream().map(t -> t.replace("{}", name)).toList());
            float[] mean = new float[d];
            for (float[] p : prompts) {
                for (int j = 0; j < d; j++) {
                    mean[j] += p[j];
                }
            }
            classVectors[c] = normalised(mean);
        }
        List<LabelledExamples.Example> examples = s.examples();
        if (limit > 0 && examples.size() > limit) {
            examples = examples.subList(0, limit);
        }
        int top1 = 0;
        int top5 = 0;
        for (int start = 0; start < examples.size(); start += Embedder.BATCH) {
            List<LabelledExamples.Example> part = examples.subList(start, Math.min(examples.size(), start + Embedder.BATCH));
            List<byte[]> bytes = new ArrayList<>();
            List<String> ids = new ArrayList<>();
            for (LabelledExamples.Example e : part) {
                bytes.add(Files.readAllBytes(e.image()));
                ids.add(e.origin());
            }
            float[][] v = embedder.images(bytes, ids);
            for (int i = 0; i < part.size(); i++) {
                int gold = folders.indexOf(part.get(i).label());
                double[] scores = new double[classVectors.length];
                for (int c = 0; c < scores.length; c++) {
                    scores[c] = Embedder.cosine(v[i], classVectors[c]);
                }
                int rank = RetrievalRecall.bestRelevantRank(scores, java.util.Set.of(gold));
                top1 += rank < 1 ? 1 : 0;
                top5 += rank < 5 ? 1 : 0;
            }
        }
        return new Result((double) top1 / examples.size(), (double) top5 / examples.size(), examples.size(),
                names.size(), templates.size());
    }

    private static float[] normalised(float[] v) {
        double n = 0;
        for (float x : v) {
            n += x * x;
        }
        n = Math.sqrt(n);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (v[i] / n);
        }
        return v;
    }
}
