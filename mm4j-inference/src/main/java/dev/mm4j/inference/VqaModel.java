package dev.mm4j.inference;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.ImageHeader;
import dev.mm4j.data.Padding;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.nn.Precision;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fine-tuned VQA model ready to answer questions about images, for applications that embed it:
 *
 * <pre>{@code
 * try (VqaModel m = VqaModel.load(Path.of("run/model"))) {
 *     List<Answer> top = m.answer(Files.readAllBytes(Path.of("sign.jpg")), "what does the sign say?", 5);
 * }
 * }</pre>
 *
 * <p>Inputs are prepared exactly as in training (the bundle's transform, tokenizer and padding), and the model
 * runs in the precision it was trained in ({@code bundle.json}; fp32 on a CPU without bfloat16 instructions, see
 * {@link Precision#choose}) unless {@link #load(Path, Device, Options, String)} or {@link #withPrecision} says
 * otherwise; answers are the same as {@code mm4j predict}'s. Thread-safe: images are checked, decoded and questions
 * tokenized on the calling thread, forward passes run one at a time. {@link #answer(List, int)} answers
 * several questions in one forward pass (questions padded to the longest, padding masked when the
 * bundle's padding is dynamic; padded as trained otherwise).
 *
 * <p>Image cache: the image encoder's output is kept per image content (SHA-256), least recently used
 * evicted first within {@link Options#imageCacheBytes()}, so a second question about the same image
 * runs only the text and multimodal encoders.
 */
public final class VqaModel implements AutoCloseable {

    /**
     * Load-time settings.
     *
     * @param imageCacheBytes bound of the image-encoder cache in bytes; 0 turns it off
     * @param maxPixels images declaring more pixels than this in their header are refused before decoding
     */
    public record Options(long imageCacheBytes, long maxPixels) {
        /** 256 MB of image cache, at most 40 megapixels per image. */
        public static Options defaults() {
            return new Options(256L << 20, 40_000_000L);
        }
    }

    /**
     * A question about an image, checked and prepared for the model ({@link #prepare}); cheap to keep
     * while waiting for a batch.
     */
    public static final class Query {
        private final byte[] image;
        private final String imageKey;
        private final long[] ids;
        private final int questionTokens;
        private volatile float[] pixels;

        private Query(byte[] image, String imageKey, long[] ids, int questionTokens, float[] pixels) {
            this.image = image;
            this.imageKey = imageKey;
            this.ids = ids;
            this.questionTokens = questionTokens;
            this.pixels = pixels;
        }

        /** SHA-256 of the image bytes, hex: the image cache's key. */
        public String imageKey() {
            return imageKey;
        }

        /** Tokens of the question with [CLS] and [SEP], before truncation. */
        public int questionTokens() {
            return questionTokens;
        }

        /** Tokens the model sees (without padding). */
        public int usedTokens() {
            int n = 0;
            for (long id : ids) {
                n += id != 0 ? 1 : 0;
            }
            return n;
        }

        /** Whether the question was longer than the model's max length and was cut. */
        public boolean truncated() {
            return questionTokens > usedTokens();
        }
    }

    /**
     * The answer to one query of a batch.
     *
     * @param answers the top answers, most probable first
     * @param imageCached whether the image encoder's output came from the cache
     * @param batchSize how many queries shared the forward pass
     * @param forwardMs the forward pass's wall time
     */
    public record Result(List<Answer> answers, boolean imageCached, int batchSize, double forwardMs) {}

    private final NDManager manager;
    private final ModelBundle.Loaded bundle;
    private final ImageCache cache;
    private final Options options;
    private final String name;
    private final ReentrantLock lock = new ReentrantLock();
    private boolean closed;

    private VqaModel(NDManager manager, ModelBundle.Loaded bundle, Options options, String name) {
        this.manager = manager;
        this.bundle = bundle;
        this.options = options;
        this.name = name;
        this.cache = new ImageCache(manager, options.imageCacheBytes());
    }

    /** Loads a bundle ({@code finetune}'s OUT/model) on the default device ({@code MM4J_DEVICE}, else CPU). */
    public static VqaModel load(Path bundleDir) throws IOException {
        return load(bundleDir, Hardware.device(null), Options.defaults());
    }

    /** Loads a bundle on {@code device}. */
    public static VqaModel load(Path bundleDir, Device device) throws IOException {
        return load(bundleDir, device, Options.defaults());
    }

    /** Loads a bundle on {@code device} with {@code options}. */
    public static VqaModel load(Path bundleDir, Device device, Options options) throws IOException {
        return load(bundleDir, device, options, null);
    }

    /**
     * Loads a bundle on {@code device} with {@code options}, its matrix products in {@code precision}: fp32, bf16,
     * auto, or null for the precision it was trained in ({@link ModelBundle#load(Path, NDManager, String)}).
     */
    public static VqaModel load(Path bundleDir, Device device, Options options, String precision) throws IOException {
        NDManager manager = NDManager.newBaseManager(device);
        try {
            ModelBundle.Loaded b = ModelBundle.load(bundleDir, manager, precision);
            return new VqaModel(manager, b, options, displayName(bundleDir));
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** This model with its matrix products in {@code precision} ({@link Precision}); returns this. */
    public VqaModel withPrecision(Precision precision) {
        bundle.model().setPrecision(precision);
        return this;
    }

    /** A model's short name: its folder's name, with the parent's for finetune's OUT/model. */
    public static String displayName(Path model) {
        Path abs = model.toAbsolutePath().normalize();
        String name = abs.getFileName() == null ? abs.toString() : abs.getFileName().toString();
        if (name.equals("model") && abs.getParent() != null && abs.getParent().getFileName() != null) {
            name = abs.getParent().getFileName() + "/" + name;
        }
        return name;
    }

    /** The precision the model's matrix products run in. */
    public Precision precision() {
        return bundle.model().precision();
    }

    /** A short name for the model (its folder). */
    public String name() {
        return name;
    }

    /** How the bundle prepares inputs (padding, max length, ...). */
    public ModelBundle.Info info() {
        return bundle.info();
    }

    /** The largest question, in tokens with [CLS] and [SEP], the model reads; longer ones are cut. */
    public int maxQuestionTokens() {
        return bundle.tokenizer().maxLength();
    }

    public Options options() {
        return options;
    }

    /** Bytes held by the image cache now. */
    public long imageCacheBytes() {
        return cache.bytes();
    }

    /** Images in the cache now. */
    public int imageCacheEntries() {
        return cache.size();
    }

    /**
     * Checks and prepares a question about an image: refuses a missing question, bytes that are not an
     * image, an image over the pixel limit (from its header, before decoding) or one that does not decode.
     * Runs on the calling thread; a cached image is not decoded again.
     *
     * @throws InvalidInputException naming what is wrong
     */
    public Query prepare(byte[] image, String question) {
        if (question == null || question.isBlank()) {
            throw new InvalidInputException(InvalidInputException.Kind.MISSING_QUESTION, "question: missing or empty");
        }
        checkImage(image, "image", options.maxPixels());
        String key = sha256(image);
        float[] pixels = cache.enabled() && cache.contains(key) ? null : decode(image);
        // both bounded by the tokenizer's maxChars: a huge question is cut before it is tokenized
        int tokens = bundle.tokenizer().encoded(question).untruncatedLength();
        return new Query(image, key, bundle.encode(question), tokens, pixels);
    }

    /**
     * Reads an encoded image's header ({@link ImageHeader#check}); refuses bytes that are not an image, a header that
     * does not read, or more than {@code maxPixels} pixels, with an {@link InvalidInputException} of the matching kind.
     */
    public static ImageHeader checkImage(byte[] image, String name, long maxPixels) {
        try {
            return ImageHeader.check(image, name, maxPixels);
        } catch (ImageHeader.RejectedImageException e) {
            throw new InvalidInputException(switch (e.problem()) {
                case NOT_AN_IMAGE -> InvalidInputException.Kind.NOT_AN_IMAGE;
                case UNDECODABLE -> InvalidInputException.Kind.UNDECODABLE_IMAGE;
                case TOO_MANY_PIXELS -> InvalidInputException.Kind.TOO_MANY_PIXELS;
            }, e.getMessage());
        }
    }

    /** The top {@code k} answers to {@code question} about {@code image} (JPEG, PNG, ... bytes). */
    public List<Answer> answer(byte[] image, String question, int k) {
        return answer(List.of(prepare(image, question)), k).get(0).answers();
    }

    /** Several questions (question i about image i) answered in one forward pass. */
    public List<List<Answer>> answerAll(List<byte[]> images, List<String> questions, int k) {
        if (images.size() != questions.size()) {
            throw new IllegalArgumentException(images.size() + " images but " + questions.size() + " questions");
        }
        List<Query> qs = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            qs.add(prepare(images.get(i), questions.get(i)));
        }
        return answer(qs, k).stream().map(Result::answers).toList();
    }

    /** Prepared queries answered in one forward pass, in order; each with its top {@code k} answers. */
    public List<Result> answer(List<Query> queries, int k) {
        if (queries.isEmpty()) {
            return List.of();
        }
        if (k < 1) {
            throw new InvalidInputException(InvalidInputException.Kind.BAD_K, "k: must be at least 1, got " + k);
        }
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("model " + name + " is closed");
            }
            return forward(queries, k);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Answers one question about a blank image, without caching it, so that what a first forward pass prepares once
     * (int8 weight forms, bfloat16 weight copies, the op library's first calls) is not paid by the first request: a
     * server calls it before it says it is ready. The answers are thrown away; the model is unchanged.
     *
     * @return the seconds it took
     */
    public double warmUp() {
        long t0 = System.nanoTime();
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("model " + name + " is closed");
            }
            forward(List.of(new Query(null, WARM_UP_KEY, bundle.encode(WARM_UP_QUESTION), 0, bundle.transform().blank())),
                    1, false);
        } finally {
            lock.unlock();
        }
        return (System.nanoTime() - t0) / 1e9;
    }

    /** {@link #warmUp}'s question, and its image's key (not a SHA-256, so no request's image shares it). */
    private static final String WARM_UP_QUESTION = "what is written here?";
    private static final String WARM_UP_KEY = "warm-up";

    private List<Result> forward(List<Query> queries, int k) {
        return forward(queries, k, cache.enabled());
    }

    /** One forward pass over {@code queries}; their images' encodings go into the cache when {@code caching}. */
    private List<Result> forward(List<Query> queries, int k, boolean caching) {
        long t0 = System.nanoTime();
        Hardware.noGradOnThisThread();
        int n = queries.size();
        int h = bundle.transform().height();
        int w = bundle.transform().width();
        try (ModelStep step = ModelStep.open(manager)) {
            Map<String, NDArray> rows = new LinkedHashMap<>();
            boolean[] cached = new boolean[n];
            Map<String, Query> toEncode = new LinkedHashMap<>();
            for (int i = 0; i < n; i++) {
                Query q = queries.get(i);
                if (rows.containsKey(q.imageKey) || toEncode.containsKey(q.imageKey)) {
                    cached[i] = rows.containsKey(q.imageKey);
                    continue;
                }
                NDArray hit = caching ? cache.get(q.imageKey) : null;
                if (hit != null) {
                    rows.put(q.imageKey, hit);
                    cached[i] = true;
                } else {
                    toEncode.put(q.imageKey, q);
                }
            }
            if (!toEncode.isEmpty()) {
                int m = toEncode.size();
                float[] pixels = new float[m * 3 * h * w];
                int j = 0;
                for (Query q : toEncode.values()) {
                    float[] p = q.pixels != null ? q.pixels : decode(q.image); // evicted since prepare
                    System.arraycopy(p, 0, pixels, j++ * p.length, p.length);
                }
                NDArray hidden = bundle.model().flava().encodeImage(step.images(pixels, m, h, w)).hiddenBeforeNorm();
                j = 0;
                for (String key : toEncode.keySet()) {
                    NDArray row = hidden.get(new NDIndex("{}:{}", j, j + 1));
                    j++;
                    if (caching) {
                        row = ModelStep.keep(row.duplicate(), cache.manager());
                        cache.put(key, row);
                    }
                    rows.put(key, row);
                }
            }
            NDList perQuery = new NDList();
            for (Query q : queries) {
                perQuery.add(rows.get(q.imageKey));
            }
            NDArray images = n == 1 ? perQuery.get(0) : NDArrays.concat(perQuery, 0);
            int len = 0;
            for (Query q : queries) {
                len = Math.max(len, q.ids.length);
            }
            long[] ids = new long[n * len]; // 0 = [PAD]; dynamic padding: to the longest, masked
            for (int i = 0; i < n; i++) {
                System.arraycopy(queries.get(i).ids, 0, ids, i * len, queries.get(i).ids.length);
            }
            if (bundle.info().padding == Padding.FIXED && len != queries.get(0).ids.length) {
                throw new IllegalStateException("fixed padding gave questions of different lengths");
            }
            NDArray text = step.tokens(ids, n, len);
            float[] probs = bundle.model().forward(bundle.model().flava().imageOutput(images), text).logits()
                    .softmax(-1).toFloatArray();
            double ms = (System.nanoTime() - t0) / 1e6;
            int classes = probs.length / n;
            List<Result> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                out.add(new Result(topK(Arrays.copyOfRange(probs, i * classes, (i + 1) * classes), k), cached[i], n, ms));
            }
            return out;
        }
    }

    private List<Answer> topK(float[] probs, int k) {
        Integer[] order = new Integer[probs.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(probs[b], probs[a]));
        List<Answer> out = new ArrayList<>();
        for (int i = 0; i < Math.min(k, order.length); i++) {
            out.add(new Answer(bundle.vocab().answer(order[i]), probs[order[i]]));
        }
        return out;
    }

    private float[] decode(byte[] image) {
        try {
            return bundle.transform().apply(image, "image");
        } catch (IOException | RuntimeException e) {
            throw new InvalidInputException(InvalidInputException.Kind.UNDECODABLE_IMAGE, e.getMessage());
        }
    }

    private static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Frees the model, its cache and its native memory; waits for a forward pass in progress. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            cache.close();
            bundle.close();
            manager.close();
        } finally {
            lock.unlock();
        }
    }
}
