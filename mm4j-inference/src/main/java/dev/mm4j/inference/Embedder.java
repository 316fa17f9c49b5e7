package dev.mm4j.inference;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.download.PretrainedWeights;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForRetrieval;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.nn.Precision;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * FLAVA's image and text embeddings as Java vectors: the encoders' CLS outputs through {@code image_projection} /
 * {@code text_projection}, L2-normalised (so a dot product is the cosine similarity), from a model bundle
 * (classification or retrieval) or any checkpoint the project loads (TorchMultimodal, Hugging Face). Images and
 * texts are prepared as the model was trained (the bundle's transform and tokenizer). Not thread-safe.
 */
public final class Embedder implements AutoCloseable {
    /** Inputs per forward pass. */
    public static final int BATCH = 32;

    private final NDManager manager;
    private final FlavaForRetrieval model;
    private final QuestionTokenizer tokenizer;
    private final ImageTransform transform;
    private final String source;
    private final boolean owned;

    private Embedder(NDManager manager, FlavaForRetrieval model, QuestionTokenizer tokenizer, ImageTransform transform,
            String source, boolean owned) {
        this.manager = manager;
        this.model = model;
        this.tokenizer = tokenizer;
        this.transform = transform;
        this.source = source;
        this.owned = owned;
    }

    /**
     * Embeddings from a model in use elsewhere (e.g. being trained, in eval mode while embedding): closing this
     * Embedder leaves the model, its manager and the tokenizer to their owner.
     */
    public static Embedder over(FlavaForRetrieval model, NDManager manager, QuestionTokenizer tokenizer,
            ImageTransform transform) {
        return new Embedder(manager, model, tokenizer, transform, "model in training", false);
    }

    /**
     * Opens {@code model}: a bundle folder (or its {@code model.safetensors}), else a checkpoint (a .pt/.bin/.safetensors
     * file, *.index.json or Hugging Face folder) built with {@code config} (null: the HF folder's config.json, else
     * FLAVA's full size) and loaded non-strictly.
     */
    public static Embedder open(Path model, FlavaConfig config, Device device) throws IOException {
        NDManager manager = NDManager.newBaseManager(device);
        try {
            if (ModelBundle.isBundle(model)) {
                if (config != null) {
                    throw new IllegalArgumentException("--config is for checkpoints; the bundle " + model + " carries its own");
                }
                ModelBundle.Retrieval r = ModelBundle.loadRetrieval(model, manager);
                return new Embedder(manager, r.model(), r.tokenizer(), r.transform(), model.toString(), true);
            }
            return load(manager, PretrainedWeights.resolve(model.toString()), config, model.toString());
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** A randomly initialised model of {@code config}: for measuring speed (which does not depend on the weights). */
    public static Embedder untrained(FlavaConfig config, Device device) throws IOException {
        NDManager manager = NDManager.newBaseManager(device);
        try {
            return load(manager, PretrainedWeights.resolve("none"), config, "untrained model");
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private static Embedder load(NDManager manager, PretrainedWeights weights, FlavaConfig config, String source)
            throws IOException {
        FlavaConfig c = config != null ? config : weights.config(new FlavaConfig());
        FlavaForRetrieval m = FlavaForRetrieval.create(c, manager);
        weights.loadInto(m);
        m.setTraining(false);
        Path tok = weights.tokenizerFile();
        int maxLength = Math.min(QuestionTokenizer.DEFAULT_MAX_LENGTH, c.maxPositionEmbeddings);
        QuestionTokenizer tokenizer = tok == null ? QuestionTokenizer.bertBaseUncased(maxLength)
                : QuestionTokenizer.load(tok, maxLength);
        return new Embedder(manager, m, tokenizer, new ImageTransform(c.imageSize, c.imageSize, false), source, true);
    }

    /**
     * Runs the embedding model's products in {@code precision} from now on ({@link Precision}: fp32 as loaded, bf16,
     * or int8 for inference); returns this. An index's vectors and its queries' should come from one precision.
     */
    public Embedder withPrecision(Precision precision) {
        model.setPrecision(precision);
        return this;
    }

    /** What the model's products run in. */
    public Precision precision() {
        return model.precision();
    }

    /** Where the model came from. */
    public String source() {
        return source;
    }

    /** Length of every vector ({@code text_and_image_proj_size}). */
    public int dimension() {
        return model.config().textAndImageProjSize;
    }

    /** exp(logit_scale): the factor from cosine similarities to logits (1/0.07 where the model has none trained). */
    public double temperatureScale() {
        return Math.exp(model.contrastiveLoss().logitScale());
    }

    /** The image transform (for decoding and checking images before embedding them). */
    public ImageTransform transform() {
        return transform;
    }

    /** Embeddings of encoded images (JPEG, PNG, ...); {@code names} name them in errors. */
    public float[][] images(List<byte[]> encoded, List<String> names) throws IOException {
        List<float[]> pixels = new ArrayList<>(encoded.size());
        for (int i = 0; i < encoded.size(); i++) {
            pixels.add(transform.apply(encoded.get(i), names.get(i)));
        }
        return pixels(pixels);
    }

    /** Embeddings of images already transformed ({@link ImageTransform#apply}: CHW floats of the model's size). */
    public float[][] pixels(List<float[]> chw) {
        float[][] out = new float[chw.size()][];
        int h = transform.height();
        int w = transform.width();
        for (int start = 0; start < chw.size(); start += BATCH) {
            int n = Math.min(BATCH, chw.size() - start);
            float[] batch = new float[n * 3 * h * w];
            for (int i = 0; i < n; i++) {
                System.arraycopy(chw.get(start + i), 0, batch, i * 3 * h * w, 3 * h * w);
            }
            try (ModelStep step = ModelStep.open(manager)) {
                rows(model.imageEmbeddings(step.images(batch, n, h, w), true), out, start);
            }
        }
        return out;
    }

    /**
     * Embeddings of texts, tokenized as the model was trained (truncated to its maximum length; a text is read up to
     * the tokenizer's {@link QuestionTokenizer#maxChars()} characters).
     */
    public float[][] texts(List<String> texts) {
        List<long[]> ids = new ArrayList<>(texts.size());
        for (String t : texts) {
            ids.add(textIds(t));
        }
        return textEmbeddings(ids);
    }

    /**
     * A text's token ids as {@link #texts} embeds them ({@code [CLS] ... [SEP]}, unpadded). Touches no model: safe to
     * call from any thread while another embeds.
     */
    public long[] textIds(String text) {
        return tokenizer.encode(text);
    }

    /** Embeddings of texts already tokenized by {@link #textIds}. */
    public float[][] textEmbeddings(List<long[]> ids) {
        float[][] out = new float[ids.size()][];
        for (int start = 0; start < ids.size(); start += BATCH) {
            Tokens t = pad(ids.subList(start, Math.min(ids.size(), start + BATCH)));
            try (ModelStep step = ModelStep.open(manager)) {
                rows(model.textEmbeddings(step.tokens(t.ids(), t.ids().length / t.length(), t.length()), true), out, start);
            }
        }
        return out;
    }

    /** The cosine similarity of two embeddings of this class (L2-normalised: their dot product). */
    public static double cosine(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** Token ids of texts, row-major, padded with 0 to the longest ({@code length}). */
    public record Tokens(long[] ids, int length) {}

    /** The texts tokenized as the model was trained, padded to the longest (padding is masked; CLS is token 0). */
    public Tokens tokens(List<String> texts) {
        List<long[]> ids = new ArrayList<>(texts.size());
        for (String t : texts) {
            ids.add(textIds(t));
        }
        return pad(ids);
    }

    private static Tokens pad(List<long[]> ids) {
        int len = 1;
        for (long[] row : ids) {
            len = Math.max(len, row.length);
        }
        long[] padded = new long[ids.size() * len];
        for (int i = 0; i < ids.size(); i++) {
            System.arraycopy(ids.get(i), 0, padded, i * len, ids.get(i).length);
        }
        return new Tokens(padded, len);
    }

    private void rows(NDArray embeddings, float[][] out, int start) {
        float[] flat = embeddings.toFloatArray();
        int d = dimension();
        for (int i = 0; i < flat.length / d; i++) {
            out[start + i] = java.util.Arrays.copyOfRange(flat, i * d, (i + 1) * d);
        }
    }

    @Override
    public void close() {
        if (owned) {
            tokenizer.close();
            manager.close();
        }
    }
}
