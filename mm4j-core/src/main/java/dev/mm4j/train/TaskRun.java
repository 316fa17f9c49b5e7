package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.Padding;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.download.PretrainedWeights;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.nn.Module;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.DirectoryLock;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.BooleanSupplier;
import java.util.stream.IntStream;

/**
 * One run of a {@link TaskFinetuner} (labelled classification, {@code search.RetrievalFinetuner}) from its settings:
 * what such a run opens before its first step, how it trains on the shared {@link TrainingLoop}, and what it closes.
 * {@link #open} takes the output folder (its lock held until {@link #close}; a folder holding a model is refused, and a
 * used one unless resuming), writes {@code settings.yaml} and sets the threads; {@link #start} resolves the
 * pretrained weights, the model's config, tokenizer, image transform, text length and the device memory (closed with
 * the run); {@link #state}, {@link #schedule} and {@link #train} give the loop its state, schedule, the console,
 * {@code metrics.jsonl} and the caller's listeners; {@link #bundleInfo} is the exported bundle's inputs.
 */
public final class TaskRun implements AutoCloseable {
    private final FinetuneSettings s;
    private final PrintStream out;
    private final List<TrainingListener> listeners;
    private final BooleanSupplier cancel;
    private final Path outDir;
    private final CheckpointStore store;
    private final Path resumedFrom;
    private final int threads;
    private final Deque<AutoCloseable> opened = new ArrayDeque<>();
    private PretrainedWeights pretrained;

    /**
     * What the model starts from: the pretrained weights of {@code checkpoint}, the config (the settings' model kwargs
     * over the checkpoint's), the tokenizer file (the settings', else the checkpoint's, else none: BERT's), the image
     * transform, the text length (at most the position embeddings) and the tokenizer and device memory the run opened.
     */
    public record Start(PretrainedWeights pretrained, FlavaConfig config, Path tokenizerFile, ImageTransform transform,
            int maxLength, QuestionTokenizer tokenizer, NDManager manager) {}

    /** How the loop ended and the latest checkpoint (the last good one after a non-finite loss). */
    public record Trained(TrainingLoop.Outcome outcome, Path lastCheckpoint) {}

    private TaskRun(FinetuneSettings s, PrintStream out, List<TrainingListener> listeners, BooleanSupplier cancel,
            Path outDir, CheckpointStore store, Path resumedFrom, int threads) {
        this.s = s;
        this.out = out;
        this.listeners = List.copyOf(listeners);
        this.cancel = cancel;
        this.outDir = outDir;
        this.store = store;
        this.resumedFrom = resumedFrom;
        this.threads = threads;
    }

    /**
     * Takes the settings' output folder: locks it (until {@link #close}), refuses one that holds a model, and one that
     * holds checkpoints unless {@code resume} (which needs them); writes {@code settings.yaml}; sets the libtorch
     * threads.
     *
     * @param listeners the caller's, after the run's console and metrics
     * @param cancel asked before every step: true stops the run at that step boundary
     */
    static TaskRun open(FinetuneSettings s, boolean resume, PrintStream out, List<TrainingListener> listeners,
            BooleanSupplier cancel) throws IOException {
        Path outDir = Path.of(s.out);
        Files.createDirectories(outDir);
        CheckpointStore store = new CheckpointStore(outDir, s.keepLast);
        DirectoryLock lock = store.lockOutput();
        try {
            if (Files.exists(outDir.resolve("model").resolve(ModelBundle.WEIGHTS))) {
                throw new IOException(outDir + " already holds a model; choose another --out");
            }
            Path resumedFrom = resumePoint(store, outDir, resume);
            AtomicFiles.writeString(outDir.resolve("settings.yaml"), s.toYaml());
            int threads = Hardware.configureThreads(s.threads);
            TaskRun run = new TaskRun(s, out, listeners, cancel, outDir, store, resumedFrom, threads);
            run.opened.push(lock);
            return run;
        } catch (IOException | RuntimeException e) {
            try {
                lock.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /**
     * The latest checkpoint in {@code store} when {@code resume} (an error when there is none), else null (an error
     * when the folder already holds checkpoints: a new run does not overwrite another's).
     */
    static Path resumePoint(CheckpointStore store, Path outDir, boolean resume) throws IOException {
        Path latest = store.latest();
        if (resume && latest == null) {
            throw new IOException("--resume: no checkpoint in " + store.dir() + " (nothing to resume)");
        }
        if (!resume && latest != null) {
            throw new IOException(outDir + " already holds checkpoints; pass --resume to continue that run, or choose another --out");
        }
        return latest;
    }

    public Path outDir() {
        return outDir;
    }

    public CheckpointStore store() {
        return store;
    }

    /** The checkpoint the run resumes from, or null for a new run. */
    public Path resumedFrom() {
        return resumedFrom;
    }

    /** The libtorch threads set. */
    public int threads() {
        return threads;
    }

    /**
     * Resolves what the model starts from ({@link Start}) for a model of {@code numClasses} classes (unless the model
     * kwargs set them), opens the tokenizer and the device memory (closed with the run) and seeds the engine.
     */
    public Start start(int numClasses) throws IOException {
        pretrained = PretrainedWeights.resolve(s.checkpoint);
        FlavaConfig config = s.flavaConfig(numClasses, pretrained.config(new FlavaConfig()));
        Path tokenizerFile = s.tokenizer == null ? pretrained.tokenizerFile() : Path.of(s.tokenizer);
        ImageTransform transform = new ImageTransform(config.imageSize, config.imageSize, s.antialias, s.normalization())
                .withMaxImagePixels(s.maxImagePixels);
        int maxLength = Math.min(s.maxLength, config.maxPositionEmbeddings);
        QuestionTokenizer tokenizer = open(tokenizerFile == null ? QuestionTokenizer.bertBaseUncased(maxLength)
                : QuestionTokenizer.load(tokenizerFile, maxLength));
        NDManager manager = open(NDManager.newBaseManager(Hardware.device(s.device)));
        Engine.getInstance().setRandomSeed(Long.hashCode(s.seed));
        return new Start(pretrained, config, tokenizerFile, transform, maxLength, tokenizer, manager);
    }

    /** A new run: loads the pretrained weights into {@code model} and prints the load report; a resumed run: nothing. */
    public void loadPretrained(Module model) throws IOException {
        if (resumedFrom == null) {
            out.println(pretrained.loadInto(model));
        }
    }

    /** The settings' learning-rate schedule over {@code total} steps (the warmup at most all of them). */
    public LrSchedule schedule(long total) {
        return new LrSchedule(LrSchedule.Kind.parse(s.schedule), s.lr, Math.min(s.warmupSteps, total), total, 0.5, 0);
    }

    /** A new run's state (step 0, the settings' seed), or the one restored with the weights and moments it resumes from. */
    public TrainState state(Module model, AdamW optimizer) throws IOException {
        if (resumedFrom == null) {
            TrainState state = new TrainState();
            state.seed = s.seed;
            return state;
        }
        TrainState state = CheckpointStore.restore(resumedFrom, model, optimizer);
        out.printf("resumed from %s: step %d, epoch %d, next batch %d%n", resumedFrom, state.step, state.epoch,
                state.nextBatch);
        return state;
    }

    /**
     * Runs {@code loop} (advancing {@code state}) with {@code console}, then {@code metrics.jsonl} every
     * {@code log_every} steps, then the caller's listeners; the run's log and cancel. A complete run's or a cancelled
     * one's last checkpoint is written; after a non-finite loss the last good one stays the latest.
     */
    public <B> Trained train(TrainingLoop<B> loop, TrainState state, TrainingListener console) throws IOException {
        List<TrainingListener> all = new ArrayList<>(List.of(console));
        try (MetricsLog metrics = TrainingListeners.openMetrics(outDir.resolve(TrainingListeners.METRICS), state)) {
            all.add(TrainingListeners.metrics(metrics, s.logEvery));
            all.addAll(listeners);
            loop.listeners(all).log(out).cancelWhen(cancel);
            TrainingLoop.Outcome o;
            try {
                o = loop.run();
            } catch (UncheckedIOException e) {
                throw e.getCause();
            }
            return new Trained(o, o.stoppedOnNonFinite() ? o.lastCheckpoint() : loop.checkpoint());
        }
    }

    /**
     * The exported bundle's {@code bundle.json}: how inputs were prepared ({@code maxLength}, {@code padding}, the
     * settings' resize and normalization) and the steps trained.
     */
    public ModelBundle.Info bundleInfo(int maxLength, Padding padding, long steps) {
        ModelBundle.Info info = new ModelBundle.Info();
        info.maxLength = maxLength;
        info.padding = padding;
        info.antialias = s.antialias;
        info.normalize = s.normalize;
        info.trainedSteps = steps;
        return info;
    }

    /** Makes the batch or the pixels of number {@code index}. */
    @FunctionalInterface
    public interface Maker<T> {
        T make(int index) throws IOException;
    }

    /**
     * Batches {@code from} to {@code to - 1} of an epoch ({@link TrainingLoop.Data#epoch}), each made when the iterator
     * reaches it; an IOException comes out as an UncheckedIOException, which {@link #train} unwraps.
     */
    public static <B> Iterator<B> batches(int from, int to, Maker<B> make) {
        return new Iterator<>() {
            int next = from;

            @Override
            public boolean hasNext() {
                return next < to;
            }

            @Override
            public B next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                try {
                    return make.make(next++);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        };
    }

    /**
     * The pixels of {@code count} training images of {@code length} floats each, all decoded once up front (on every
     * core) when they fit in a quarter of the heap, as every epoch visits each image again; null when they do not (each
     * batch then decodes its own).
     */
    public static float[][] decodeUpFront(int count, int length, Maker<float[]> decode) throws IOException {
        if ((long) count * length * Float.BYTES > Runtime.getRuntime().maxMemory() / 4) {
            return null;
        }
        float[][] pixels = new float[count][];
        try {
            IntStream.range(0, count).parallel().forEach(i -> {
                try {
                    pixels[i] = decode.make(i);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        return pixels;
    }

    private <T extends AutoCloseable> T open(T resource) {
        opened.push(resource);
        return resource;
    }

    /** Closes the device memory, the tokenizer and then the output folder's lock; the first failure is rethrown. */
    @Override
    public void close() throws IOException {
        RunSetup.closeAll(opened);
    }
}
