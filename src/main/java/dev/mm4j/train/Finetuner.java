package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.StateDictLoader;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Batch;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import dev.mm4j.download.Downloader;
import dev.mm4j.eval.AccuracyByType;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.eval.QuestionTypes;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.report.Charts;
import dev.mm4j.report.HtmlReport;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.report.ProgressReporter;
import dev.mm4j.report.TextTable;
import dev.mm4j.serve.ModelBundle;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.Runtime;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Fine-tunes FLAVA for classification on a TextVQA-format dataset: data, model, AdamW with a
 * warmup/decay schedule, gradient accumulation and clipping, periodic validation with VQA accuracy,
 * atomic checkpoints with exact resume, and at the end an exported model, predictions, curves and an
 * HTML report in the output folder.
 */
public final class Finetuner {

    /** What a run did. */
    public record Result(long steps, List<Double> losses, Double valAccuracy, Double baselineAccuracy,
            String baselineAnswer, boolean stoppedOnNonFinite, Path outDir, Map<Long, Long> rssAtStep,
            AccuracyByType byType) {}

    private final FinetuneSettings s;
    private final PrintStream out;

    public Finetuner(FinetuneSettings settings, PrintStream out) {
        this.s = settings;
        this.out = out;
    }

    public Result run(boolean resume) throws IOException {
        if (s.data == null) {
            throw new IllegalArgumentException("no dataset: set data (--data PATH)");
        }
        Path outDir = Path.of(s.out);
        CheckpointStore store = new CheckpointStore(outDir, s.keepLast);
        Path resumeFrom = resume ? store.latest() : null;
        if (resume && resumeFrom == null) {
            throw new IOException("--resume: no checkpoint in " + store.dir() + " (nothing to resume)");
        }
        if (!resume && store.latest() != null) {
            throw new IOException(outDir + " already holds checkpoints; pass --resume to continue that run, or choose another --out");
        }
        Files.createDirectories(outDir);
        AtomicFiles.writeString(outDir.resolve("settings.yaml"), s.toYaml());
        out.println("settings (saved to " + outDir.resolve("settings.yaml") + "):");
        out.println(s.toYaml().indent(2));
        int threads = Runtime.configureThreads(s.threads);

        AnswerVocab vocab = AnswerVocab.load(vocabPath());
        FlavaConfig config = s.flavaConfig(vocab.size());
        boolean dynamic = s.dynamicPadding();
        Path tokenizerFile = s.tokenizer == null ? null : Path.of(s.tokenizer);
        Split train = Split.open(Path.of(s.data), s.trainSplit, s.trainLimit);
        Split val = s.hasValidation() ? Split.open(Path.of(s.data), s.valSplit, s.valLimit) : null;
        String majority = Evaluator.majorityAnswer(train.samples());
        out.printf("data: %d training questions (%s), %d validation; answer vocabulary %d; %d libtorch threads%n",
                train.size(), s.trainSplit, val == null ? 0 : val.size(), vocab.size(), threads);

        Map<Long, Long> rss = new LinkedHashMap<>();
        List<Double> losses = new ArrayList<>();
        ImageTransform transform = new ImageTransform(config.imageSize, config.imageSize, s.antialias);
        try (train; Split closeVal = val;
                QuestionTokenizer tokenizer = tokenizerFile == null ? QuestionTokenizer.bertBaseUncased(s.maxLength)
                        : QuestionTokenizer.load(tokenizerFile, s.maxLength);
                DataLoader trainLoader = loader(train.samples(), transform, tokenizer, vocab, s.shuffle, true);
                DataLoader valLoader = val == null ? null : loader(val.samples(), transform, tokenizer, vocab, false, false);
                NDManager manager = NDManager.newBaseManager(Runtime.device(s.device));
                MetricsLog metrics = openMetrics(outDir, resumeFrom)) {
            Engine.getInstance().setRandomSeed(Long.hashCode(s.seed));
            FlavaForClassification model = FlavaForClassification.create(config, manager);
            model.flava().setMaskTextPaddingInMultimodal(dynamic);
            out.printf("model: FLAVA for classification, %,d parameters, %d classes, on %s%n", model.parameterCount(),
                    config.numClasses, manager.getDevice());
            try (AdamW optimizer = new AdamW(model.namedParameters(), s.adamw(), manager)) {
                TrainState st;
                if (resumeFrom != null) {
                    st = CheckpointStore.restore(resumeFrom, model, optimizer);
                    out.printf("resumed from %s: step %d, epoch %d, next batch %d%n", resumeFrom, st.step, st.epoch, st.nextBatch);
                } else {
                    st = new TrainState();
                    st.seed = s.seed;
                    loadPretrained(model);
                }
                int batchesPerEpoch = (int) ((train.size() + s.batchSize - 1) / s.batchSize);
                long stepsPerEpoch = Math.max(1, (batchesPerEpoch + s.gradAccum - 1) / s.gradAccum);
                long total = s.maxSteps > 0 ? s.maxSteps : s.epochs * stepsPerEpoch;
                long warmup = Math.min(s.warmupSteps, total);
                if (warmup < s.warmupSteps) {
                    out.printf("note: warmup_steps %d is more than the %d steps of this run; warming up over all of them%n",
                            s.warmupSteps, total);
                }
                LrSchedule schedule = new LrSchedule(LrSchedule.Kind.parse(s.schedule), s.lr, warmup, total, 0.5, 0);
                out.printf("training: %d steps (%d per epoch), batch %d x %d accumulation, %s padding, schedule %s%n",
                        total, stepsPerEpoch, s.batchSize, s.gradAccum, s.padding, schedule);

                TrainingStep step = new TrainingStep(model, optimizer);
                boolean stopped = false;
                Path lastCheckpoint = resumeFrom;
                long lastSaved = resumeFrom != null ? st.step : -1;
                try (ProgressReporter progress = ProgressReporter.forTraining("train", total, st.step,
                        ProgressReporter.Mode.AUTO)) {
                    int epoch = st.epoch;
                    int startBatch = st.nextBatch;
                    while (st.step < total && !stopped) {
                        Iterator<Batch> it = trainLoader.epoch(epoch, startBatch);
                        boolean any = false;
                        while (st.step < total) {
                            List<Batch> micro = new ArrayList<>();
                            while (micro.size() < s.gradAccum && it.hasNext()) {
                                micro.add(it.next());
                            }
                            if (micro.isEmpty()) {
                                break;
                            }
                            any = true;
                            double lr = schedule.lr(st.step);
                            long t0 = System.nanoTime();
                            TrainingStep.Result r;
                            try (NDManager batchManager = manager.newSubManager()) {
                                List<TrainingStep.Inputs> inputs = new ArrayList<>();
                                for (Batch b : micro) {
                                    inputs.add(TrainingStep.Inputs.of(b, batchManager));
                                }
                                Engine.getInstance().setRandomSeed(Long.hashCode(TrainState.stepSeed(s.seed, st.step)));
                                r = s.dropout ? step.run(inputs, lr, s.maxGradNorm, st.step % Math.max(1, s.logEvery) == 0)
                                        : step.runWithoutDropout(inputs, lr, s.maxGradNorm);
                            }
                            if (!r.applied()) {
                                out.printf("%nstopping: the loss is %s at step %d (lr %.3g); no update was made for it. "
                                        + "The last good checkpoint is %s.%n", r.loss(), st.step, lr,
                                        lastCheckpoint == null ? "none (none was written yet)" : lastCheckpoint);
                                stopped = true;
                                break;
                            }
                            int samples = micro.stream().mapToInt(Batch::size).sum();
                            double seconds = (System.nanoTime() - t0) / 1e9;
                            Batch last = micro.get(micro.size() - 1);
                            st.consumed(last.epoch(), last.index(), samples);
                            st.lastLoss = r.loss();
                            losses.add(r.loss());
                            long index = st.step;
                            st.step++;
                            if (s.printLoss) {
                                out.println("Loss at step " + index + " = " + r.loss());
                            }
                            if (index % Math.max(1, s.logEvery) == 0) {
                                metrics.append(MetricsLog.Entry.train(index, r.loss(), lr, r.gradNorm(), samples / seconds,
                                        epochProgress(st, batchesPerEpoch)));
                            }
                            progress.update(st.step, r.loss(), samples / seconds);
                            if (st.step == 100 || st.step == 1000) {
                                rss.put(st.step, Runtime.rssBytes());
                                out.printf("%nRSS after step %d: %.1f MB (of which JVM heap committed %.1f MB)%n", st.step,
                                        Runtime.rssBytes() / 1e6,
                                        java.lang.Runtime.getRuntime().totalMemory() / 1e6);
                            }
                            if (valLoader != null && s.evalEvery > 0 && st.step % s.evalEvery == 0 && st.step < total) {
                                validate(model, valLoader, vocab, manager, metrics, st, store, optimizer, batchesPerEpoch);
                            }
                            if (s.checkpointEvery > 0 && st.step % s.checkpointEvery == 0) {
                                lastCheckpoint = store.save(model, optimizer, st);
                                lastSaved = st.step;
                            }
                        }
                        if (!any && startBatch == 0) {
                            throw new IllegalStateException("epoch " + epoch + " delivered no usable training sample");
                        }
                        if (st.step < total && !stopped) {
                            epoch++;
                            startBatch = 0;
                            st.epoch = epoch;
                            st.nextBatch = 0;
                        }
                    }
                }
                if (stopped) {
                    return new Result(st.step, losses, null, null, majority, true, outDir, rss, null);
                }
                if (lastSaved != st.step) {
                    lastCheckpoint = store.save(model, optimizer, st);
                }
                Double valAcc = null;
                Double baseline = null;
                Evaluator.Result ev = null;
                AccuracyByType byType = null;
                if (valLoader != null) {
                    ev = validate(model, valLoader, vocab, manager, metrics, st, store, optimizer, batchesPerEpoch);
                    valAcc = ev.accuracy();
                    baseline = Evaluator.constantAnswerAccuracy(val.samples(), majority);
                    byType = AccuracyByType.of(val.samples(), ev.predictions(), majority, QuestionTypes.detect(val.samples()), 8);
                    PredictionsWriter.write(outDir.resolve("predictions.json"), ev.predictions());
                    writeReport(outDir, ev, valAcc, baseline, majority, st, model, rss, byType);
                }
                ModelBundle.Info info = new ModelBundle.Info();
                info.maxLength = s.maxLength;
                info.dynamicPadding = dynamic;
                info.antialias = s.antialias;
                info.trainedSteps = st.step;
                ModelBundle.write(outDir.resolve("model"), model, vocab, info, tokenizerFile);
                metrics.close();
                Charts.writeLossAccuracyPng(MetricsLog.read(outDir.resolve("metrics.jsonl")), outDir.resolve("curves.png"));
                out.printf("%ndone: %d steps; final loss %.4f; model exported to %s; last checkpoint %s%n", st.step,
                        st.lastLoss, outDir.resolve("model"), lastCheckpoint);
                if (valAcc != null) {
                    out.printf("validation VQA accuracy %.2f%% (majority-answer baseline \"%s\": %.2f%%) over %d questions%n",
                            100 * valAcc, majority, 100 * baseline, ev.count());
                    out.print(TextTable.format("  ", AccuracyByType.header(), byType.cells()));
                }
                return new Result(st.step, losses, valAcc, baseline, majority, false, outDir, rss, byType);
            }
        }
    }

    private Evaluator.Result validate(FlavaForClassification model, DataLoader valLoader, AnswerVocab vocab,
            NDManager manager, MetricsLog metrics, TrainState st, CheckpointStore store, AdamW optimizer,
            int batchesPerEpoch) throws IOException {
        Evaluator.Result ev = Evaluator.evaluate(model, valLoader.epoch(0, 0), vocab, manager, 24);
        metrics.append(MetricsLog.Entry.validation(st.step - 1, ev.accuracy(), epochProgress(st, batchesPerEpoch)));
        out.printf("%nvalidation after step %d: VQA accuracy %.2f%% over %d questions%n", st.step, 100 * ev.accuracy(), ev.count());
        if (st.bestValAccuracy == null || ev.accuracy() > st.bestValAccuracy) {
            st.bestValAccuracy = ev.accuracy();
            st.bestStep = st.step;
            store.saveBest(model, optimizer, st);
        }
        return ev;
    }

    private static double epochProgress(TrainState st, int batchesPerEpoch) {
        return st.epoch + (double) st.nextBatch / Math.max(1, batchesPerEpoch);
    }

    private void writeReport(Path outDir, Evaluator.Result ev, double acc, double baseline, String majority,
            TrainState st, FlavaForClassification model, Map<Long, Long> rss, AccuracyByType byType) throws IOException {
        HtmlReport r = HtmlReport.create("Multimodal4J fine-tuning report");
        r.summary("dataset", s.data);
        r.summary("steps", st.step);
        r.summary("final training loss", String.format("%.4f", st.lastLoss));
        r.summary("validation VQA accuracy", String.format("%.2f%% (%d questions)", 100 * acc, ev.count()));
        r.summary("majority-answer baseline", String.format("%.2f%% (always \"%s\")", 100 * baseline, majority));
        r.summary("model parameters", String.format("%,d", model.parameterCount()));
        rss.forEach((k, v) -> r.summary("RSS after step " + k, String.format("%.1f MB", v / 1e6)));
        r.summary("settings", "settings.yaml");
        r.table(new HtmlReport.Table("VQA accuracy by question type", "types from " + byType.grouping(),
                AccuracyByType.header(), byType.cells()));
        Path chart = outDir.resolve("curves.png");
        Charts.writeLossAccuracyPng(MetricsLog.read(outDir.resolve("metrics.jsonl")), chart);
        r.chart(chart);
        for (Evaluator.Answered a : ev.answered()) {
            byte[] img;
            try {
                img = a.sample().image().readBytes();
            } catch (IOException e) {
                img = null;
            }
            r.sample(HtmlReport.Sample.withImageBytes(img, a.sample().question(), a.prediction(), a.sample().answers(),
                    a.score()));
        }
        r.write(outDir.resolve("report.html"));
    }

    private MetricsLog openMetrics(Path outDir, Path resumeFrom) throws IOException {
        Path file = outDir.resolve("metrics.jsonl");
        if (resumeFrom != null) {
            TrainState st = TrainState.fromJson(Files.readString(resumeFrom.resolve("state.json")));
            MetricsLog.truncateAfter(file, st.step - 1); // those steps will be run again
        } else {
            Files.deleteIfExists(file);
        }
        return MetricsLog.open(file);
    }

    private DataLoader loader(Iterable<VqaSample> samples, ImageTransform transform, QuestionTokenizer tokenizer,
            AnswerVocab vocab, boolean shuffle, boolean training) {
        return DataLoader.builder(samples)
                .transform(transform)
                .tokenizer(tokenizer)
                .vocab(vocab)
                .batchSize(s.batchSize)
                .padding(s.dynamicPadding() ? DataLoader.Padding.DYNAMIC : DataLoader.Padding.FIXED)
                .workers(Math.max(1, s.loaderThreads))
                .shuffle(shuffle, s.seed)
                .requireAnswers(training)
                .build();
    }

    /**
     * A split to train or validate on: streamed from the dataset (never the whole split in memory unless
     * shuffling asks for it), or its first {@code limit} questions held in a list.
     */
    record Split(VqaDataset dataset, Iterable<VqaSample> samples, long size) implements AutoCloseable {
        static Split open(Path data, String split, int limit) throws IOException {
            VqaDataset ds = TextVqaDatasets.open(data, split);
            try {
                if (limit > 0) {
                    List<VqaSample> first = new ArrayList<>();
                    for (VqaSample sample : ds) {
                        first.add(sample);
                        if (first.size() >= limit) {
                            break;
                        }
                    }
                    return checked(new Split(ds, first, first.size()), data, split);
                }
                return checked(new Split(ds, ds, ds.size()), data, split);
            } catch (IOException | RuntimeException e) {
                ds.close();
                throw e;
            }
        }

        private static Split checked(Split s, Path data, String split) throws IOException {
            if (s.size == 0) {
                throw new IOException("split '" + split + "' of " + data + " has no questions");
            }
            return s;
        }

        @Override
        public void close() throws IOException {
            try {
                dataset.close();
            } catch (Exception e) {
                throw e instanceof IOException io ? io : new IOException(e);
            }
        }
    }

    private Path vocabPath() throws IOException {
        if (s.vocab != null) {
            return Path.of(s.vocab);
        }
        Path data = Path.of(s.data);
        Path candidate = (Files.isDirectory(data) ? data : data.toAbsolutePath().getParent()).resolve("answers.txt");
        if (Files.exists(candidate)) {
            return candidate;
        }
        throw new IOException("no answer vocabulary: pass --vocab FILE (one answer per line; looked for " + candidate + ")");
    }

    private void loadPretrained(FlavaForClassification model) throws IOException {
        if (s.checkpoint == null || s.checkpoint.isBlank() || s.checkpoint.equals("none")) {
            out.println("weights: random initialization (no checkpoint)");
            return;
        }
        Path file;
        if (s.checkpoint.startsWith("http://") || s.checkpoint.startsWith("https://")) {
            file = new Downloader(Downloader.defaultCacheDir()).fetch(Downloader.Request.of(s.checkpoint));
        } else {
            file = Path.of(s.checkpoint);
        }
        StateDictLoader.Report r = StateDictLoader.load(model, file, false);
        out.println("weights: " + file + " loaded non-strictly: " + r);
    }
}
