package dev.mm4j.search;

import dev.mm4j.inference.Embedder;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.CaptionPairs;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.flava.FlavaForRetrieval;
import dev.mm4j.train.AdamW;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.LrSchedule;
import dev.mm4j.train.TaskFinetuner;
import dev.mm4j.train.TaskRun;
import dev.mm4j.train.TrainState;
import dev.mm4j.train.TrainingListener;
import dev.mm4j.train.TrainingLoop;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
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
 * {@link #epochBatches}); the training images are decoded once up front when they fit in memory. The steps run on
 * the training loop every task shares ({@link TrainingLoop}): the run's optimizer, schedule, accumulation, clipping,
 * seed, threads, device and data settings, checkpoints every {@code checkpoint_every} steps and at the end into
 * {@code OUT/checkpoints}, {@link #resume(boolean) resume} from the latest (repeating the uninterrupted run's losses),
 * {@code OUT/metrics.jsonl}, {@link #cancel()} and {@link #listener listeners}. At the end: the retrieval bundle in
 * {@code OUT/model} and recall@1/@5 of text -> image retrieval among the held-out images ({@code OUT/recall.json}).
 */
public final class RetrievalFinetuner extends TaskFinetuner<RetrievalFinetuner> {

    /**
     * What a run did.
     *
     * @param steps the optimizer steps done in all (with those before a resume)
     * @param losses the training loss of each step this run made
     * @param recall the held-out recall (null without held-out images, or unless the run completed)
     * @param modelDir the exported bundle (null when the run was cancelled)
     * @param status how the run ended (a non-finite loss stops the steps; the model is exported as it was)
     * @param lastCheckpoint the latest checkpoint folder (null when none was written)
     */
    public record Result(long steps, List<Double> losses, RetrievalRecall.Result recall, Path modelDir,
            Finetuner.Status status, Path lastCheckpoint) {}

    /** The training images, each with its captions. */
    record Image(CaptionPairs.Pair first, List<String> captions) {}

    public RetrievalFinetuner(FinetuneSettings settings, PrintStream out) {
        super(settings, out);
    }

    public Result run() throws IOException {
        if (s.data == null) {
            throw new IllegalArgumentException("no dataset: set data (--data PATH: a manifest, a synth folder or TextVQA data)");
        }
        try (TaskRun run = openRun()) {
            List<Image> train = images(CaptionPairs.read(Path.of(s.data), s.trainSplit), s.trainLimit);
            List<Image> val = s.hasValidation() ? images(CaptionPairs.read(Path.of(s.data), s.valSplit), s.valLimit) : List.of();
            out.printf("data: %d training images, %d held-out images; %d libtorch threads%n", train.size(), val.size(),
                    run.threads());
            TaskRun.Start start = run.start(1);
            NDManager manager = start.manager();
            FlavaForRetrieval model = FlavaForRetrieval.create(start.config(), manager);
            out.printf("model: FLAVA for retrieval, %,d parameters, embeddings of %d, on %s%n", model.parameterCount(),
                    start.config().textAndImageProjSize, manager.getDevice());
            run.loadPretrained(model);
            Embedder embedder = Embedder.over(model, manager, start.tokenizer(), start.transform());
            Trained t;
            try (AdamW optimizer = new AdamW(model.namedParameters(), s.adamw(), manager)) {
                t = train(run, model, optimizer, manager, embedder, train);
            } finally {
                model.setTraining(false);
            }
            if (t.status == Finetuner.Status.CANCELLED) {
                out.printf("%ncancelled after %d of %d steps; checkpoint %s (resume to continue)%n", t.steps,
                        t.total, t.lastCheckpoint);
                return new Result(t.steps, t.outcome.losses(), null, null, t.status, t.lastCheckpoint);
            }
            List<Double> losses = t.outcome.losses();
            Path modelDir = run.outDir().resolve("model");
            ModelBundle.writeRetrieval(modelDir, model, run.bundleInfo(start.maxLength(), s.padding, t.steps),
                    start.tokenizerFile());
            RetrievalRecall.Result recall = val.isEmpty() ? null : recall(model, embedder, val);
            out.printf("%ndone: %d steps; final loss %.4f; model exported to %s%n", t.steps,
                    losses.isEmpty() ? Double.NaN : losses.get(losses.size() - 1), modelDir);
            if (recall != null) {
                out.println("held-out text -> image retrieval: " + recall);
                AtomicFiles.writeString(run.outDir().resolve("recall.json"), String.format(java.util.Locale.ROOT,
                        "{\"recall_at_1\": %.4f, \"recall_at_5\": %.4f, \"queries\": %d, \"images\": %d}%n",
                        recall.at1(), recall.at5(), recall.queries(), recall.images()));
            }
            return new Result(t.steps, losses, recall, modelDir, t.status, t.lastCheckpoint);
        }
    }

    /** How the steps ended: the loop's outcome, the steps done in all, the run's total, the latest checkpoint. */
    private record Trained(TrainingLoop.Outcome outcome, Finetuner.Status status, long steps, long total,
            Path lastCheckpoint) {}

    private Trained train(TaskRun run, FlavaForRetrieval model, AdamW optimizer, NDManager manager, Embedder embedder,
            List<Image> images) throws IOException {
        int batch = Math.min(s.batchSize, images.size());
        if (batch < 2) {
            throw new IllegalArgumentException("contrastive training needs batches of at least 2 images (batch_size "
                    + s.batchSize + ", " + images.size() + " training images)");
        }
        long perEpoch = images.size() / batch; // full batches only: every batch has the same number of negatives
        long total = s.maxSteps > 0 ? s.maxSteps : s.epochs * perEpoch;
        LrSchedule schedule = run.schedule(total);
        out.printf("training: %d steps (about %d per epoch), batch %d distinct images with distinct captions, schedule %s%n",
                total, perEpoch, batch, schedule);
        TrainState state = run.state(model, optimizer);
        Pixels pixels = Pixels.of(images, embedder.transform(), out);
        PairData data = new PairData(images, batch, (int) perEpoch, pixels, embedder);
        TrainingLoop<FlavaForRetrieval.Pairs> loop = new TrainingLoop<>(model, model.config(), optimizer, manager,
                data, TrainingLoop.Options.of(s), schedule, total, run.store(), state, run.resumedFrom());
        TaskRun.Trained t = run.train(loop, state, console(model, total));
        TrainingLoop.Outcome o = t.outcome();
        Finetuner.Status status = o.stoppedOnNonFinite() ? Finetuner.Status.STOPPED_ON_NON_FINITE_LOSS
                : o.cancelled() ? Finetuner.Status.CANCELLED : Finetuner.Status.COMPLETED;
        return new Trained(o, status, state.step, total, t.lastCheckpoint());
    }

    /** "step i/n loss ... lr ... temperature scale ..." every {@code log_every} steps and at the last. */
    private TrainingListener console(FlavaForRetrieval model, long total) {
        return new TrainingListener() {
            @Override
            public void onStep(Step st) {
                if (s.logEvery > 0 && (st.index() % s.logEvery == 0 || st.index() == total - 1)) {
                    out.printf("step %d/%d  loss %.4f  lr %.3g  temperature scale %.2f%n", st.index() + 1, total,
                            st.loss(), st.lr(), Math.exp(model.contrastiveLoss().logitScale()));
                }
            }
        };
    }

    /**
     * The training batches: epoch after epoch of {@link #epochBatches}, drawn from one {@code Random(seed)} in epoch
     * order, so that epoch e's batches are the same whether the run got there without a break or resumed there (the
     * draws of the epochs before it are made again).
     */
    private final class PairData implements TrainingLoop.Data<FlavaForRetrieval.Pairs> {
        private final List<Image> images;
        private final int batch;
        private final int perEpoch;
        private final Pixels pixels;
        private final Embedder embedder;
        private Random random;
        private int drawn; // epochs drawn from random so far

        PairData(List<Image> images, int batch, int perEpoch, Pixels pixels, Embedder embedder) {
            this.images = images;
            this.batch = batch;
            this.perEpoch = perEpoch;
            this.pixels = pixels;
            this.embedder = embedder;
        }

        @Override
        public Iterator<FlavaForRetrieval.Pairs> epoch(int epoch, int startBatch) {
            if (random == null || drawn > epoch) {
                random = new Random(s.seed);
                drawn = 0;
            }
            List<List<TrainPair>> batches = null;
            while (drawn <= epoch) {
                batches = epochBatches(images, batch, s.shuffle, random);
                drawn++;
                if (batches.isEmpty()) {
                    throw new IllegalArgumentException("the training captions are too few to fill a batch of " + batch
                            + " distinct captions (" + images.size() + " images): lower batch_size");
                }
            }
            List<List<TrainPair>> epochBatches = batches;
            return TaskRun.batches(startBatch, epochBatches.size(), index -> pairs(epochBatches.get(index), epoch, index));
        }

        @Override
        public int batchesPerEpoch() {
            return perEpoch;
        }

        @Override
        public int samples(FlavaForRetrieval.Pairs b) {
            return b.size();
        }

        @Override
        public int index(FlavaForRetrieval.Pairs b) {
            return b.index();
        }

        /** A batch of pairs as the model's host batch: its images' pixels and its captions' token ids. */
        private FlavaForRetrieval.Pairs pairs(List<TrainPair> b, int epoch, int index) throws IOException {
            ImageTransform t = embedder.transform();
            int n = b.size();
            float[] px = new float[n * t.outputLength()];
            List<String> texts = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                System.arraycopy(pixels.get(b.get(i).image), 0, px, i * t.outputLength(), t.outputLength());
                texts.add(b.get(i).caption);
            }
            Embedder.Tokens tokens = embedder.tokens(texts);
            return new FlavaForRetrieval.Pairs(px, t.height(), t.width(), tokens.ids(), tokens.length(), n, epoch, index);
        }
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
            long t0 = System.nanoTime();
            float[][] decoded = TaskRun.decodeUpFront(images.size(), transform.outputLength(),
                    i -> decode(images.get(i), transform));
            if (decoded != null) {
                out.printf("decoded the %d training images into memory (%.0f MB) in %.1f s%n", images.size(),
                        (double) images.size() * transform.outputLength() * Float.BYTES / 1e6,
                        (System.nanoTime() - t0) / 1e9);
            }
            return new Pixels(images, transform, decoded);
        }

        float[] get(int i) throws IOException {
            return decoded != null ? decoded[i] : decode(images.get(i), transform);
        }

        private static float[] decode(Image im, ImageTransform transform) throws IOException {
            return transform.apply(im.first.image().readBytes(), im.first.origin());
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
