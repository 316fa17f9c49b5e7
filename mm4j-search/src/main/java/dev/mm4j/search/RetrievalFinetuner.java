package dev.mm4j.search;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.CaptionPairs;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.download.PretrainedWeights;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForRetrieval;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.train.AdamW;
import dev.mm4j.train.CheckpointStore;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.train.LrSchedule;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.DirectoryLock;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Contrastive fine-tuning ({@code task: retrieval}): FLAVA's image and text encoders and projections trained on
 * image-caption pairs ({@link CaptionPairs}) with {@code ContrastiveLossWithTemperature} on L2-normalised embeddings,
 * as FLAVA's pretraining does. An epoch visits every training image once, with one of its captions picked at random,
 * in batches of distinct images with distinct captions (another image's caption is a negative; see
 * {@link #epochBatches}); the training images are decoded once up front when they fit in memory. At the end: the retrieval bundle in
 * {@code OUT/model} and recall@1/@5 of text -> image retrieval among the held-out images ({@code OUT/recall.json}).
 * Uses the run's optimizer, schedule, clipping, seed, threads, device and data settings; no checkpoints/resume.
 */
public final class RetrievalFinetuner {

    /** What a run did. */
    public record Result(long steps, List<Double> losses, RetrievalRecall.Result recall, Path modelDir) {}

    /** The training images, each with its captions. */
    record Image(CaptionPairs.Pair first, List<String> captions) {}

    private final FinetuneSettings s;
    private final PrintStream out;

    public RetrievalFinetuner(FinetuneSettings settings, PrintStream out) {
        this.s = settings;
        this.out = out;
    }

    public Result run() throws IOException {
        if (s.data == null) {
            throw new IllegalArgumentException("no dataset: set data (--data PATH: a manifest, a synth folder or TextVQA data)");
        }
        Path outDir = Path.of(s.out);
        Files.createDirectories(outDir);
        try (DirectoryLock lock = new CheckpointStore(outDir, s.keepLast).lockOutput()) {
            if (Files.exists(outDir.resolve("model").resolve(ModelBundle.WEIGHTS))) {
                throw new IOException(outDir + " already holds a model; choose another --out");
            }
            AtomicFiles.writeString(outDir.resolve("settings.yaml"), s.toYaml());
            int threads = Hardware.configureThreads(s.threads);
            List<Image> train = images(CaptionPairs.read(Path.of(s.data), s.trainSplit), s.trainLimit);
            List<Image> val = s.hasValidation() ? images(CaptionPairs.read(Path.of(s.data), s.valSplit), s.valLimit) : List.of();
            out.printf("data: %d training images, %d held-out images; %d libtorch threads%n", train.size(), val.size(), threads);
            PretrainedWeights pretrained = PretrainedWeights.resolve(s.checkpoint);
            FlavaConfig config = s.flavaConfig(1, pretrained.config(new FlavaConfig()));
            Path tokenizerFile = s.tokenizer == null ? pretrained.tokenizerFile() : Path.of(s.tokenizer);
            ImageTransform transform = new ImageTransform(config.imageSize, config.imageSize, s.antialias, s.normalization())
                    .withMaxImagePixels(s.maxImagePixels);
            int maxLength = Math.min(s.maxLength, config.maxPositionEmbeddings);
            try (QuestionTokenizer tokenizer = tokenizerFile == null ? QuestionTokenizer.bertBaseUncased(maxLength)
                    : QuestionTokenizer.load(tokenizerFile, maxLength);
                    NDManager manager = NDManager.newBaseManager(Hardware.device(s.device))) {
                Engine.getInstance().setRandomSeed(Long.hashCode(s.seed));
                FlavaForRetrieval model = FlavaForRetrieval.create(config, manager);
                out.printf("model: FLAVA for retrieval, %,d parameters, embeddings of %d, on %s%n", model.parameterCount(),
                        config.textAndImageProjSize, manager.getDevice());
                out.println(pretrained.loadInto(model));
                Embedder embedder = Embedder.over(model, manager, tokenizer, transform);
                List<Double> losses = train(model, manager, embedder, train);
                Path modelDir = outDir.resolve("model");
                ModelBundle.Info info = new ModelBundle.Info();
                info.maxLength = maxLength;
                info.padding = s.padding;
                info.antialias = s.antialias;
                info.normalize = s.normalize;
                info.trainedSteps = losses.size();
                ModelBundle.writeRetrieval(modelDir, model, info, tokenizerFile);
                RetrievalRecall.Result recall = val.isEmpty() ? null : recall(model, embedder, val);
                out.printf("%ndone: %d steps; final loss %.4f; model exported to %s%n", losses.size(),
                        losses.isEmpty() ? Double.NaN : losses.get(losses.size() - 1), modelDir);
                if (recall != null) {
                    out.println("held-out text -> image retrieval: " + recall);
                    AtomicFiles.writeString(outDir.resolve("recall.json"), String.format(java.util.Locale.ROOT,
                            "{\"recall_at_1\": %.4f, \"recall_at_5\": %.4f, \"queries\": %d, \"images\": %d}%n",
                            recall.at1(), recall.at5(), recall.queries(), recall.images()));
                }
                return new Result(losses.size(), losses, recall, modelDir);
            }
        }
    }

    private List<Double> train(FlavaForRetrieval model, NDManager manager, Embedder embedder, List<Image> images)
            throws IOException {
        int batch = Math.min(s.batchSize, images.size());
        if (batch < 2) {
            throw new IllegalArgumentException("contrastive training needs batches of at least 2 images (batch_size "
                    + s.batchSize + ", " + images.size() + " training images)");
        }
        long perEpoch = images.size() / batch; // full batches only: every batch has the same number of negatives
        long total = s.maxSteps > 0 ? s.maxSteps : s.epochs * perEpoch;
        LrSchedule schedule = new LrSchedule(LrSchedule.Kind.parse(s.schedule), s.lr, Math.min(s.warmupSteps, total), total, 0.5, 0);
        out.printf("training: %d steps (about %d per epoch), batch %d distinct images with distinct captions, schedule %s%n",
                total, perEpoch, batch, schedule);
        Pixels pixels = Pixels.of(images, embedder.transform(), out);
        List<Double> losses = new ArrayList<>();
        Random random = new Random(s.seed);
        java.util.ArrayDeque<List<TrainPair>> epoch = new java.util.ArrayDeque<>();
        try (AdamW optimizer = new AdamW(model.namedParameters(), s.adamw(), manager)) {
            for (long step = 0; step < total; step++) {
                if (epoch.isEmpty()) {
                    epoch.addAll(epochBatches(images, batch, s.shuffle, random));
                    if (epoch.isEmpty()) {
                        throw new IllegalArgumentException("the training captions are too few to fill a batch of " + batch
                                + " distinct captions (" + images.size() + " images): lower batch_size");
                    }
                }
                List<TrainPair> b = epoch.poll();
                double lr = schedule.lr(step);
                double loss = step(model, optimizer, manager, embedder, pixels, b, lr);
                if (!Double.isFinite(loss)) {
                    out.printf("%nstopping: the loss is %s at step %d (lr %.3g); no update was made for it%n", loss, step, lr);
                    break;
                }
                losses.add(loss);
                if (s.logEvery > 0 && (step % s.logEvery == 0 || step == total - 1)) {
                    out.printf("step %d/%d  loss %.4f  lr %.3g  temperature scale %.2f%n", step + 1, total, loss, lr,
                            Math.exp(model.contrastiveLoss().logitScale()));
                }
            }
        }
        return losses;
    }

    /** One training pair of a batch: the image's position in the training list and the caption drawn for it. */
    record TrainPair(int image, String caption) {}

    /**
     * One epoch's batches: every image once (in file order, or shuffled), with one of its captions drawn at random, in
     * full batches of {@code batch} pairs whose captions are all different. Two images with the very same caption cannot
     * be told apart by it, so one must not be the other's negative: an image whose caption is already in the batch
     * waits for the next one. Images left over at the end of the epoch (fewer than a batch) are not used in it.
     */
    static List<List<TrainPair>> epochBatches(List<Image> images, int batch, boolean shuffle, Random random) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            order.add(i);
        }
        if (shuffle) {
            Collections.shuffle(order, random);
        }
        java.util.LinkedList<TrainPair> waiting = new java.util.LinkedList<>();
        for (int i : order) {
            List<String> captions = images.get(i).captions;
            waiting.add(new TrainPair(i, captions.get(random.nextInt(captions.size()))));
        }
        List<List<TrainPair>> out = new ArrayList<>();
        while (waiting.size() >= batch) {
            List<TrainPair> b = new ArrayList<>(batch);
            Set<String> captions = new HashSet<>();
            for (java.util.Iterator<TrainPair> it = waiting.iterator(); it.hasNext() && b.size() < batch; ) {
                TrainPair p = it.next();
                if (captions.add(p.caption)) {
                    b.add(p);
                    it.remove();
                }
            }
            if (b.size() < batch) {
                break; // what is left has too few distinct captions
            }
            out.add(b);
        }
        return out;
    }

    /**
     * The training images as model inputs: all decoded once up front (on every core) when they fit in a quarter of the
     * heap, as an epoch visits every image again; else each batch is decoded when it is used.
     */
    private record Pixels(List<Image> images, ImageTransform transform, float[][] decoded) {
        static Pixels of(List<Image> images, ImageTransform transform, PrintStream out) throws IOException {
            long bytes = (long) images.size() * transform.outputLength() * Float.BYTES;
            if (bytes > Runtime.getRuntime().maxMemory() / 4) {
                return new Pixels(images, transform, null);
            }
            long t0 = System.nanoTime();
            float[][] decoded = new float[images.size()][];
            try {
                java.util.stream.IntStream.range(0, images.size()).parallel().forEach(i -> {
                    try {
                        decoded[i] = decode(images.get(i), transform);
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
            } catch (java.io.UncheckedIOException e) {
                throw e.getCause();
            }
            out.printf("decoded the %d training images into memory (%.0f MB) in %.1f s%n", images.size(), bytes / 1e6,
                    (System.nanoTime() - t0) / 1e9);
            return new Pixels(images, transform, decoded);
        }

        float[] get(int i) throws IOException {
            return decoded != null ? decoded[i] : decode(images.get(i), transform);
        }

        private static float[] decode(Image im, ImageTransform transform) throws IOException {
            return transform.apply(im.first.image().readBytes(), im.first.origin());
        }
    }

    /** One optimizer step on one batch of pairs; the loss, or NaN/inf (then no update). */
    private double step(FlavaForRetrieval model, AdamW optimizer, NDManager manager, Embedder embedder, Pixels images,
            List<TrainPair> batch, double lr) throws IOException {
        model.setTraining(s.dropout);
        ImageTransform t = embedder.transform();
        int n = batch.size();
        float[] pixels = new float[n * t.outputLength()];
        List<String> texts = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            System.arraycopy(images.get(batch.get(i).image), 0, pixels, i * t.outputLength(), t.outputLength());
            texts.add(batch.get(i).caption);
        }
        Embedder.Tokens tokens = embedder.tokens(texts);
        try (ModelStep step = ModelStep.open(manager)) {
            float value;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray loss = model.forward(step.images(pixels, n, t.height(), t.width()),
                        step.tokens(tokens.ids(), n, tokens.length()), true).loss();
                value = loss.getFloat();
                if (!Float.isFinite(value)) {
                    optimizer.zeroGrad();
                    return value;
                }
                model.backward(gc, loss);
            }
            double norm = s.maxGradNorm > 0 ? optimizer.gradNorm() : Double.NaN;
            if (s.maxGradNorm > 0 && !Double.isFinite(norm)) {
                optimizer.zeroGrad();
                return norm;
            }
            optimizer.step(lr, s.maxGradNorm > 0 ? Math.min(1.0, s.maxGradNorm / (norm + 1e-6)) : 1.0);
            optimizer.zeroGrad();
            return value;
        } finally {
            model.setTraining(false);
        }
    }

    /** Recall@1/@5 of each held-out image's first caption among all held-out images. */
    static RetrievalRecall.Result recall(FlavaForRetrieval model, Embedder embedder, List<Image> val) throws IOException {
        model.setTraining(false);
        List<float[]> pixels = new ArrayList<>();
        List<String> queries = new ArrayList<>();
        for (Image im : val) {
            pixels.add(embedder.transform().apply(im.first.image().readBytes(), im.first.origin()));
            queries.add(im.captions.get(0));
        }
        float[][] imageVectors = embedder.pixels(pixels);
        float[][] queryVectors = embedder.texts(queries);
        return RetrievalRecall.exact(queryVectors, imageVectors,
                RetrievalRecall.relevant(queries, val.stream().map(Image::captions).toList()));
    }

    /** Pairs grouped by image (in first-seen order), at most {@code limit} images (0 = all). */
    private static List<Image> images(List<CaptionPairs.Pair> pairs, int limit) {
        Map<String, Image> byKey = new LinkedHashMap<>();
        for (CaptionPairs.Pair p : pairs) {
            Image im = byKey.get(p.imageKey());
            if (im == null) {
                if (limit > 0 && byKey.size() >= limit) {
                    continue;
                }
                im = new Image(p, new ArrayList<>());
                byKey.put(p.imageKey(), im);
            }
            if (!im.captions.contains(p.text())) {
                im.captions.add(p.text());
            }
        }
        return new ArrayList<>(byKey.values());
    }
}
