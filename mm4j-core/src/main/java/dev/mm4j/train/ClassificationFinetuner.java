package dev.mm4j.train;

import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.LabelledExamples;
import dev.mm4j.eval.ClassificationMetrics;
import dev.mm4j.eval.LabelledClassifier;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.RequiredEmbedding;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Random;

/**
 * Classification beyond VQA: FLAVA's classification head fine-tuned on labelled text, images or both
 * ({@link LabelledExamples}: GLUE TSV / CSV / JSON Lines, ImageFolder, image + text manifests), the head reading the
 * encoder the data has ({@code required_embedding} image, text or mm, as TorchMultimodal's
 * {@code FLAVAForClassification} decides it; the setting overrides it). {@link Finetuner} runs it when its data is in
 * one of these layouts. The steps run on the shared {@link TrainingLoop} (optimizer, schedule, accumulation, clipping,
 * seed, checkpoints, {@code --resume}, metrics.jsonl, listeners). At the end: the bundle in {@code OUT/model}
 * ({@code bundle.json} task classification, its answers file the class names), {@code OUT/classes.txt}, and on the
 * validation split the accuracy, macro-F1 and per-class figures ({@code OUT/eval.json}) next to the majority-class
 * baseline, and {@code OUT/predictions.jsonl}.
 */
public final class ClassificationFinetuner extends TaskFinetuner<ClassificationFinetuner> {

    /**
     * What a run did.
     *
     * @param metrics the validation split's metrics (null without one or unless completed)
     * @param baselineAccuracy the majority class's accuracy on the validation split (null likewise)
     * @param majorityClass the training split's most frequent class
     * @param head the encoder the head read
     * @param classes the class names, by id
     */
    public record Result(Finetuner.Status status, long steps, List<Double> losses, ClassificationMetrics metrics,
            Double baselineAccuracy, String majorityClass, RequiredEmbedding head, List<String> classes, Path outDir,
            Path modelDir, Path lastCheckpoint) {}

    /** The file of class names a run writes (one per line, line index = class id). */
    public static final String CLASSES = "classes.txt";

    public ClassificationFinetuner(FinetuneSettings settings, PrintStream out) {
        super(settings, out);
    }

    /** Cancel when {@code when} says so too (asked before every step). */
    ClassificationFinetuner cancelWhen(java.util.function.BooleanSupplier when) {
        this.external = when;
        return this;
    }

    private java.util.function.BooleanSupplier external = () -> false;

    @Override
    protected boolean cancelRequested() {
        return super.cancelRequested() || external.getAsBoolean();
    }

    public Result run() throws IOException {
        if (s.data == null) {
            throw new IllegalArgumentException("no dataset: set data (--data PATH: a GLUE-style folder, an ImageFolder, "
                    + "or a JSON Lines / CSV manifest)");
        }
        Path data = Path.of(s.data);
        try (TaskRun run = openRun()) {
            Path outDir = run.outDir();
            LabelledExamples.Split trainSplit = LabelledExamples.read(data, s.trainSplit);
            List<LabelledExamples.Example> train = limit(trainSplit.examples(), s.trainLimit);
            List<LabelledExamples.Example> val = s.hasValidation() && LabelledExamples.has(data, s.valSplit)
                    ? limit(LabelledExamples.read(data, s.valSplit).examples(), s.valLimit) : List.of();
            if (s.hasValidation() && val.isEmpty()) {
                out.println("note: " + data + " has no " + s.valSplit + " split; training without validation");
            }
            List<String> classes = LabelledExamples.classNames(train);
            if (classes.size() < 2) {
                throw new IllegalArgumentException(trainSplit.source() + ": the training split has " + classes.size()
                        + " class(es); classification needs at least 2");
            }
            AtomicFiles.writeString(outDir.resolve(CLASSES), String.join("\n", classes) + "\n");
            RequiredEmbedding head = LabelledClassifier.head(trainSplit.kind(), s.requiredEmbedding);
            out.printf("data: %s (%s), %d training and %d validation examples, %d classes (%s); head reads %s; "
                    + "%d libtorch threads%n", data, trainSplit.kind().name().toLowerCase().replace('_', '+'),
                    train.size(), val.size(), classes.size(), String.join(", ", classes.subList(0, Math.min(8,
                    classes.size()))) + (classes.size() > 8 ? ", ..." : ""), head.name().toLowerCase(), run.threads());
            TaskRun.Start start = run.start(classes.size());
            NDManager manager = start.manager();
            FlavaForClassification model = FlavaForClassification.create(start.config(), manager);
            model.setPrecision(dev.mm4j.nn.Precision.choose(s.precision, null, manager.getDevice()).precision());
            out.printf("model: FLAVA for classification, %,d parameters, on %s%n", model.parameterCount(),
                    manager.getDevice());
            run.loadPretrained(model);
            LabelledClassifier classifier = new LabelledClassifier(model, classes, start.tokenizer(), start.transform(),
                    head);
            for (LabelledExamples.Example e : train) {
                classifier.classId(e); // every training label is a class (they were read from it)
            }
            TrainingLoop.Outcome o;
            Path last;
            long steps;
            try (AdamW optimizer = new AdamW(model.namedParameters(), s.adamw(), manager)) {
                int batch = Math.min(s.batchSize, train.size());
                int perEpoch = (train.size() + batch - 1) / batch;
                long total = s.maxSteps > 0 ? s.maxSteps : (long) s.epochs * perEpoch / Math.max(1, s.gradAccum);
                LrSchedule schedule = run.schedule(total);
                TrainState state = run.state(model, optimizer);
                out.printf("training: %d steps (%d batches of %d per epoch), schedule %s%n", total, perEpoch, batch,
                        schedule);
                Examples examples = new Examples(classifier, train, batch, perEpoch);
                TrainingLoop<FlavaForClassification.Examples> loop = new TrainingLoop<>(model, model.onExamples(),
                        start.config(), optimizer, manager, examples, TrainingLoop.Options.of(s), schedule, total,
                        run.store(), state, run.resumedFrom());
                try {
                    TaskRun.Trained t = run.train(loop, state, TrainingListeners.console(out, s.printLoss));
                    o = t.outcome();
                    last = t.lastCheckpoint();
                } finally {
                    model.setTraining(false);
                }
                steps = state.step;
                if (o.stoppedOnNonFinite()) {
                    return new Result(Finetuner.Status.STOPPED_ON_NON_FINITE_LOSS, steps, o.losses(), null, null,
                            null, head, classes, outDir, null, last);
                }
                if (o.cancelled()) {
                    out.printf("%ncancelled after %d of %d steps; checkpoint %s (resume to continue)%n", steps,
                            total, last);
                    return new Result(Finetuner.Status.CANCELLED, steps, o.losses(), null, null, null, head, classes,
                            outDir, null, last);
                }
            }
            Path modelDir = outDir.resolve("model");
            ModelBundle.Info info = run.bundleInfo(start.maxLength(), dev.mm4j.data.Padding.DYNAMIC, steps);
            info.task = "classification";
            info.requiredEmbedding = head.name().toLowerCase();
            ModelBundle.write(modelDir, model, AnswerVocab.fromText(String.join("\n", classes) + "\n", CLASSES),
                    info, start.tokenizerFile());
            int[] trainGold = train.stream().mapToInt(classifier::classId).toArray();
            String majority = classes.get(ClassificationMetrics.majorityClass(trainGold, classes.size()));
            out.printf("%ndone: %d steps; final loss %.4f; model exported to %s%n", steps,
                    o.losses().isEmpty() ? Double.NaN : o.losses().get(o.losses().size() - 1), modelDir);
            ClassificationMetrics metrics = null;
            Double baseline = null;
            if (!val.isEmpty()) {
                List<LabelledClassifier.Prediction> predictions = classifier.predict(val, Math.max(1, s.batchSize));
                metrics = classifier.score(predictions);
                int[] gold = val.stream().mapToInt(classifier::classId).toArray();
                baseline = ClassificationMetrics.majorityBaseline(trainGold, gold, classes.size());
                AtomicFiles.writeString(outDir.resolve("eval.json"), metrics.toJson());
                AtomicFiles.writeString(outDir.resolve("predictions.jsonl"), classifier.toJsonLines(predictions));
                out.printf("validation accuracy %.2f%%, macro-F1 %.2f%% (majority-class baseline \"%s\": %.2f%%) "
                        + "over %d examples%n", 100 * metrics.accuracy(), 100 * metrics.macroF1(), majority,
                        100 * baseline, metrics.count());
                out.print(metrics.table("  "));
            }
            return new Result(Finetuner.Status.COMPLETED, steps, o.losses(), metrics, baseline, majority, head,
                    classes, outDir, modelDir, last);
        }
    }

    private static <T> List<T> limit(List<T> list, int limit) {
        return limit > 0 && list.size() > limit ? list.subList(0, limit) : list;
    }

    /**
     * The training batches: each epoch the examples in file order or (with {@code shuffle}) shuffled by
     * {@code Random(seed + epoch)}, so an epoch's batches are the same after a resume; images decoded once up front
     * when they fit in a quarter of the heap.
     */
    private final class Examples implements TrainingLoop.Data<FlavaForClassification.Examples> {
        private final LabelledClassifier classifier;
        private final List<LabelledExamples.Example> train;
        private final int batch;
        private final int perEpoch;
        private final float[][] pixels;

        Examples(LabelledClassifier classifier, List<LabelledExamples.Example> train, int batch, int perEpoch)
                throws IOException {
            this.classifier = classifier;
            this.train = train;
            this.batch = batch;
            this.perEpoch = perEpoch;
            pixels = classifier.head() == RequiredEmbedding.TEXT ? null : TaskRun.decodeUpFront(train.size(),
                    classifier.transform().outputLength(), i -> classifier.pixels(train.get(i)));
        }

        @Override
        public Iterator<FlavaForClassification.Examples> epoch(int epoch, int startBatch) {
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < train.size(); i++) {
                order.add(i);
            }
            if (s.shuffle) {
                Collections.shuffle(order, new Random(s.seed + epoch));
            }
            return TaskRun.batches(startBatch, perEpoch, index -> {
                List<Integer> ids = order.subList(index * batch, Math.min(order.size(), (index + 1) * batch));
                List<LabelledExamples.Example> ex = new ArrayList<>(ids.size());
                List<float[]> px = new ArrayList<>(ids.size());
                for (int i : ids) {
                    ex.add(train.get(i));
                    px.add(pixels == null ? null : pixels[i]);
                }
                return classifier.batch(ex, px, true, epoch, index);
            });
        }

        @Override
        public int batchesPerEpoch() {
            return perEpoch;
        }

        @Override
        public int samples(FlavaForClassification.Examples b) {
            return b.size();
        }

        @Override
        public int index(FlavaForClassification.Examples b) {
            return b.index();
        }
    }
}
