package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Batch;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import dev.mm4j.download.PretrainedWeights;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.nn.Precision;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;

/**
 * Everything a fine-tuning run works with, opened from its settings: output folder and checkpoint store,
 * vocabulary, data splits and loaders, the model on its device, the optimizer, the state (fresh with the
 * pretrained weights, or resumed from the latest checkpoint) and the step plan. The data is the settings' {@code data}
 * path, or datasets the caller opened (which the caller closes). Closing it releases all of it, native memory
 * included.
 */
final class RunSetup implements AutoCloseable {
    final FinetuneSettings s;
    final Path outDir;
    final CheckpointStore store;
    final Path resumedFrom;
    final AnswerVocab vocab;
    final Path tokenizerFile;
    final Split train;
    final Split val;
    final String majorityAnswer;
    final DataLoader trainLoader;
    final DataLoader valLoader;
    final NDManager manager;
    final FlavaForClassification model;
    final AdamW optimizer;
    final TrainState state;
    final int batchesPerEpoch;
    final long totalSteps;
    final LrSchedule schedule;

    /** Where {@code vocab: build} writes the vocabulary it built, in the output folder. */
    static final String BUILT_VOCAB = "answers.txt";

    private final Deque<AutoCloseable> opened;

    /** This process's rank among the run's data-parallel processes (0 when alone), and their number. */
    final int rank;
    final int worldSize;

    private RunSetup(FinetuneSettings s, boolean resume, PrintStream out, VqaDataset trainData, VqaDataset valData,
            int rank, int worldSize, Deque<AutoCloseable> opened) throws IOException {
        this.s = s;
        this.opened = opened;
        this.rank = rank;
        this.worldSize = worldSize;
        if (s.data == null && trainData == null) {
            throw new IllegalArgumentException("no dataset: set data (--data PATH) or give a training dataset");
        }
        outDir = Path.of(s.out);
        store = new CheckpointStore(outDir, s.keepLast);
        if (rank == 0) {
            open(store.lockOutput()); // one run per OUT (rank 0's); removes what killed runs left there
        }
        resumedFrom = TaskRun.resumePoint(store, outDir, resume);
        if (rank == 0) {
            writeSettings(out);
        }
        int threads = Hardware.configureThreads(s.threads);

        Path vocabFile = s.buildsVocab() ? null : vocabFile();
        AnswerVocab given = vocabFile == null ? null : AnswerVocab.load(vocabFile);
        PretrainedWeights pretrained = PretrainedWeights.resolve(s.checkpoint);
        tokenizerFile = s.tokenizer == null ? pretrained.tokenizerFile() : Path.of(s.tokenizer);
        train = open(trainData != null ? Split.of(trainData, s.trainLimit, false)
                : Split.open(Path.of(s.data), s.trainSplit, s.trainLimit));
        val = valData != null ? open(Split.of(valData, s.valLimit, false))
                : s.hasValidation() && s.data != null ? open(Split.open(Path.of(s.data), s.valSplit, s.valLimit)) : null;
        vocab = given != null ? given : builtVocab(out, !s.buildsVocab());
        FlavaConfig config = s.flavaConfig(vocab.size(), pretrained.config(new FlavaConfig()));
        majorityAnswer = Evaluator.majorityAnswer(train.samples());
        out.printf("data: %d training questions (%s), %d validation; answer vocabulary %d; %d libtorch threads%n",
                train.size(), s.trainSplit, val == null ? 0 : val.size(), vocab.size(), threads);
        ImageTransform transform = new ImageTransform(config.imageSize, config.imageSize, s.antialias, s.normalization())
                .withMaxImagePixels(s.maxImagePixels);
        QuestionTokenizer tokenizer = open(tokenizerFile == null ? QuestionTokenizer.bertBaseUncased(s.maxLength)
                : QuestionTokenizer.load(tokenizerFile, s.maxLength));
        trainLoader = open(loader(train.samples(), transform, tokenizer, s.shuffle, true));
        valLoader = val == null ? null : open(loader(val.samples(), transform, tokenizer, false, false));

        manager = open(NDManager.newBaseManager(Hardware.device(s.device)));
        config.precision = Precision.resolve(s.precision, manager.getDevice());
        if (config.precision == Precision.INT8) {
            throw new IllegalArgumentException("precision: int8 is for inference only (predict, serve, evaluate, "
                    + "batch-predict, embeddings): train in fp32 or bf16");
        }
        out.printf("precision: %s (setting %s)%n", config.precision.code(), s.precision);
        Engine.getInstance().setRandomSeed(Long.hashCode(s.seed));
        model = FlavaForClassification.create(config, manager);
        out.printf("model: FLAVA for classification, %,d parameters, %d classes, on %s%n", model.parameterCount(),
                config.numClasses, manager.getDevice());
        optimizer = open(new AdamW(model.namedParameters(), s.adamw(), manager));
        state = resumedFrom != null ? resumed(out) : fresh(pretrained, out);

        batchesPerEpoch = (int) ((train.size() + s.batchSize - 1) / s.batchSize);
        // data-parallel: each step takes worldSize batches (one per rank); an epoch's last incomplete group is left out
        long rankBatches = batchesPerEpoch / worldSize;
        if (rankBatches < 1) {
            throw new IllegalArgumentException(batchesPerEpoch + " batches of " + s.batchSize + " are fewer than the "
                    + worldSize + " processes: lower batch_size or the number of processes");
        }
        long stepsPerEpoch = Math.max(1, (rankBatches + s.gradAccum - 1) / s.gradAccum);
        totalSteps = s.maxSteps > 0 ? s.maxSteps : s.epochs * stepsPerEpoch;
        schedule = schedule(out);
        out.printf("training: %d steps (%d per epoch), batch %d x %d accumulation%s, %s padding, schedule %s%n",
                totalSteps, stepsPerEpoch, s.batchSize, s.gradAccum,
                worldSize > 1 ? " x " + worldSize + " processes" : "", s.padding, schedule);
    }

    /** Opens everything from the settings; on failure, closes what was already opened and rethrows. */
    static RunSetup open(FinetuneSettings s, boolean resume, PrintStream out) throws IOException {
        return open(s, resume, out, null, null);
    }

    /**
     * Opens everything, training on {@code trainData} and validating on {@code valData} where given (else the
     * settings' data path); on failure, closes what was already opened and rethrows.
     */
    static RunSetup open(FinetuneSettings s, boolean resume, PrintStream out, VqaDataset trainData, VqaDataset valData)
            throws IOException {
        return open(s, resume, out, trainData, valData, 0, 1);
    }

    /**
     * As {@link #open(FinetuneSettings, boolean, PrintStream, VqaDataset, VqaDataset)}, as rank {@code rank} of
     * {@code worldSize} data-parallel processes sharing the output folder: rank 0 alone locks it and writes there;
     * every rank reads the same checkpoint when resuming.
     */
    static RunSetup open(FinetuneSettings s, boolean resume, PrintStream out, VqaDataset trainData, VqaDataset valData,
            int rank, int worldSize) throws IOException {
        Deque<AutoCloseable> opened = new ArrayDeque<>();
        try {
            return new RunSetup(s, resume, out, trainData, valData, rank, worldSize, opened);
        } catch (IOException | RuntimeException e) {
            try {
                closeAll(opened);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    private void writeSettings(PrintStream out) throws IOException {
        Files.createDirectories(outDir);
        AtomicFiles.writeString(outDir.resolve("settings.yaml"), s.toYaml());
        out.println("settings (saved to " + outDir.resolve("settings.yaml") + "):");
        out.println(s.toYaml().indent(2));
    }

    private TrainState resumed(PrintStream out) throws IOException {
        TrainState st = CheckpointStore.restore(resumedFrom, model, optimizer);
        out.printf("resumed from %s: step %d, epoch %d, next batch %d%n", resumedFrom, st.step, st.epoch, st.nextBatch);
        return st;
    }

    private TrainState fresh(PretrainedWeights pretrained, PrintStream out) throws IOException {
        TrainState st = new TrainState();
        st.seed = s.seed;
        out.println(pretrained.loadInto(model));
        return st;
    }

    private LrSchedule schedule(PrintStream out) {
        long warmup = Math.min(s.warmupSteps, totalSteps);
        if (warmup < s.warmupSteps) {
            out.printf("note: warmup_steps %d is more than the %d steps of this run; warming up over all of them%n",
                    s.warmupSteps, totalSteps);
        }
        return new LrSchedule(LrSchedule.Kind.parse(s.schedule), s.lr, warmup, totalSteps, 0.5, 0);
    }

    private <T extends AutoCloseable> T open(T resource) {
        opened.push(resource);
        return resource;
    }

    /** The training data, for reports: the settings' path, or what the caller's dataset says it is. */
    String dataName() {
        return s.data != null ? s.data : train.dataset().describe();
    }

    /**
     * The training loop of this run: the classification model on the training loader, validated on the validation
     * split (when there is one), checkpointed into the run's store.
     */
    TrainingLoop<Batch> loop() {
        TrainingLoop.Data<Batch> data = new TrainingLoop.Data<>() {
            @Override
            public Iterator<Batch> epoch(int epoch, int startBatch) {
                return trainLoader.epoch(epoch, startBatch);
            }

            @Override
            public int batchesPerEpoch() {
                return batchesPerEpoch;
            }

            @Override
            public int samples(Batch batch) {
                return batch.size();
            }

            @Override
            public int index(Batch batch) {
                return batch.index();
            }
        };
        TrainingLoop<Batch> loop = new TrainingLoop<>(model, model.config(), optimizer, manager, data, TrainingLoop.Options.of(s), schedule,
                totalSteps, store, state, resumedFrom);
        if (valLoader != null) {
            loop.validator(() -> Evaluator.evaluate(model, valLoader.epoch(0, 0), vocab, manager,
                    RunOutputs.REPORT_SAMPLES));
        }
        return loop;
    }

    private DataLoader loader(Iterable<VqaSample> samples, ImageTransform transform, QuestionTokenizer tokenizer,
            boolean shuffle, boolean training) {
        return DataLoader.builder(samples)
                .transform(transform)
                .tokenizer(tokenizer)
                .vocab(vocab)
                .batchSize(s.batchSize)
                .padding(s.padding)
                .workers(Math.max(1, s.loaderThreads))
                .shuffle(shuffle, s.seed)
                .requireAnswers(training)
                .build();
    }

    /**
     * {@code vocab: build}, or no vocabulary given nor found beside the data: the vocabulary built from the training
     * split into {@code OUT/answers.txt}; a resumed run reads the one its first part built (its classes are the
     * checkpoint's).
     */
    private AnswerVocab builtVocab(PrintStream out, boolean byDefault) throws IOException {
        Path file = outDir.resolve(BUILT_VOCAB);
        if (resumedFrom != null && Files.exists(file)) {
            return AnswerVocab.load(file);
        }
        AnswerVocab built = AnswerVocab.build(train.samples(), s.vocabMinCount, dataName());
        if (rank != 0) {
            return built; // the same on every rank (the same split); rank 0 writes it
        }
        AtomicFiles.writeString(file, built.toText());
        if (byDefault) {
            out.println("no answer vocabulary given (settings key vocab, --vocab FILE, Finetuner.Builder.vocabulary(Path)) "
                    + "and no answers.txt beside the data: building one from the training split");
        }
        out.printf("answer vocabulary built from the training split: %d answers given at least %d time(s), plus %s; "
                + "written to %s%n", built.size() - 1, s.vocabMinCount, AnswerVocab.UNKNOWN, file);
        return built;
    }

    /** The vocabulary file given, or else {@code answers.txt} beside the data; null when there is neither. */
    private Path vocabFile() {
        if (s.vocab != null) {
            return Path.of(s.vocab);
        }
        if (s.data == null) {
            return null;
        }
        Path data = Path.of(s.data);
        Path candidate = (Files.isDirectory(data) ? data : data.toAbsolutePath().getParent()).resolve("answers.txt");
        return Files.exists(candidate) ? candidate : null;
    }

    @Override
    public void close() throws IOException {
        closeAll(opened);
    }

    /** Closes in reverse order of opening; the first failure is rethrown after all were tried. */
    static void closeAll(Deque<AutoCloseable> opened) throws IOException {
        IOException first = null;
        while (!opened.isEmpty()) {
            try {
                opened.pop().close();
            } catch (Exception e) {
                if (first == null) {
                    first = e instanceof IOException io ? io : new IOException(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /**
     * A split to train or validate on: streamed from the dataset (never the whole split in memory unless
     * shuffling asks for it), or its first {@code limit} questions held in a list. Closing it closes the dataset
     * when the run opened it ({@code owned}), not a caller's.
     */
    record Split(VqaDataset dataset, Iterable<VqaSample> samples, long size, boolean owned) implements AutoCloseable {
        static Split open(Path data, String split, int limit) throws IOException {
            VqaDataset ds = TextVqaDatasets.open(data, split);
            try {
                return checked(of(ds, limit, true), "split '" + split + "' of " + data);
            } catch (IOException | RuntimeException e) {
                ds.close();
                throw e;
            }
        }

        /** The whole of {@code ds}, or its first {@code limit} questions when {@code limit > 0}. */
        static Split of(VqaDataset ds, int limit, boolean owned) throws IOException {
            if (limit > 0) {
                List<VqaSample> first = new ArrayList<>();
                try (VqaDataset.SampleIterator it = ds.iterator()) {
                    while (first.size() < limit && it.hasNext()) {
                        first.add(it.next());
                    }
                }
                return checked(new Split(ds, first, first.size(), owned), ds.describe());
            }
            return checked(new Split(ds, ds, ds.size(), owned), ds.describe());
        }

        private static Split checked(Split s, String what) throws IOException {
            if (s.size == 0) {
                throw new IOException(what + " has no questions");
            }
            return s;
        }

        @Override
        public void close() throws IOException {
            if (!owned) {
                return;
            }
            try {
                dataset.close();
            } catch (Exception e) {
                throw e instanceof IOException io ? io : new IOException(e);
            }
        }
    }
}
