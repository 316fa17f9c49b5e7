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
 * in batches of distinct images (another image's caption is a negative). At the end: the retrieval bundle in
 * {@code OUT/model} and recall@1/@5 of text -> image retrieval among the held-out images ({@code OUT/recall.json}).
 * Uses the run's optimizer, schedule, clipping, seed, threads, device and data settings; no checkpoints/resume.
 */
public final class RetrievalFinetuner {

    /** What a run did. */
    public record Result(long steps, List<Double> losses, RetrievalRecall.Result recall, Path modelDir) {}

    /** The training images, each with its captions. */
    private record Image(CaptionPairs.Pair first, List<String> captions) {}

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
        out.printf("training: %d steps (%d per epoch), batch %d distinct images, schedule %s%n", total, perEpoch, batch, schedule);
        List<Double> losses = new ArrayList<>();
        Random random = new Random(s.seed);
        List<Integer> order = new ArrayList<>();
        try (AdamW optimizer = new AdamW(model.namedParameters(), s.adamw(), manager)) {
            for (long step = 0; step < total; step++) {
                int start = (int) (step % perEpoch) * batch;
                if (start == 0) {
                    order.clear();
                    for (int i = 0; i < images.size(); i++) {
                        order.add(i);
                    }
                    if (s.shuffle) {
                        Collections.shuffle(order, random);
                    }
                }
                List<byte[]> bytes = new ArrayList<>();
                List<String> names = new ArrayList<>();
                List<String> texts = new ArrayList<>();
                for (int i = start; i < start + batch; i++) {
                    Image im = images.get(order.get(i));
                    bytes.add(im.first.image().readBytes());
                    names.add(im.first.origin());
                    texts.add(im.captions.get(random.nextInt(im.captions.size())));
                }
                double lr = schedule.lr(step);
                double loss = step(model, optimizer, manager, embedder, bytes, names, texts, lr);
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

    /** One optimizer step on one batch of pairs; the loss, or NaN/inf (then no update). */
    private double step(FlavaForRetrieval model, AdamW optimizer, NDManager manager, Embedder embedder, List<byte[]> bytes,
            List<String> names, List<String> texts, double lr) throws IOException {
        model.setTraining(s.dropout);
        ImageTransform t = embedder.transform();
        int n = bytes.size();
        float[] pixels = new float[n * t.outputLength()];
        for (int i = 0; i < n; i++) {
            System.arraycopy(t.apply(bytes.get(i), names.get(i)), 0, pixels, i * t.outputLength(), t.outputLength());
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
        List<Set<Integer>> relevant = new ArrayList<>();
        for (String q : queries) {
            Set<Integer> rel = new HashSet<>();
            for (int i = 0; i < val.size(); i++) {
                if (val.get(i).captions.contains(q)) {
                    rel.add(i);
                }
            }
            relevant.add(rel);
        }
        return RetrievalRecall.exact(queryVectors, imageVectors, relevant);
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
