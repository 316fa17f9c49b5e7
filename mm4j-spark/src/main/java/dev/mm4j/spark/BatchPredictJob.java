package dev.mm4j.spark;

import ai.djl.ndarray.NDArray;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.Batch;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.VqaSample;
import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.eval.VqaAccuracy;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.Partitioner;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Batch prediction (and VQA accuracy, when the split has answers) of a fine-tuned {@link ModelBundle} over a
 * TextVQA split on Apache Spark.
 *
 * <ol>
 *   <li>The split becomes a DataFrame of questions ({@link QuestionTable}).
 *   <li>Questions are range-partitioned by batch: batch {@code k} holds positions {@code [k*B, (k+1)*B)} as in
 *       single-process evaluation, and each partition holds whole batches in order, so every batch (and with
 *       dynamic padding its padded length) is the one {@code evaluate} runs, and the answers agree bit for bit.
 *   <li>Each task takes the executor's bundle from {@link BundleCache} (loaded once per JVM, in the precision it was
 *       trained in unless the settings ask for another), sets libtorch's
 *       threads to its share of the executor's cores ({@code spark.task.cpus}, or {@code threadsPerTask}),
 *       prepares batches with the project's {@link DataLoader} (bad records are skipped there and counted in
 *       a {@link SkipCounts} accumulator), and runs one {@link ModelStep} per batch: argmax answer (the
 *       same op as {@code Evaluator}), top-k answers with softmax probabilities, and the VQA score.
 *   <li>Predictions are written as parquet ({@code OUT/predictions.parquet}); the server's JSON
 *       ({@code OUT/predictions.json}) and the accuracy are made from that written table, so no inference runs
 *       twice (and no accumulator counts twice). The accuracy is aggregated in Spark with
 *       {@link VqaAccuracy.Accumulator}, whose exact sum makes it independent of the partitioning.
 * </ol>
 *
 * A task that fails is retried by Spark ({@code spark.task.maxFailures}); its partial counts are dropped.
 */
public final class BatchPredictJob {
    private BatchPredictJob() {}

    public static final String PARQUET = "predictions.parquet";
    public static final String JSON = "predictions.json";

    public static final StructType TOP_K = new StructType()
            .add("answer", DataTypes.StringType, false)
            .add("probability", DataTypes.FloatType, false);

    public static final StructType SCHEMA = new StructType()
            .add("position", DataTypes.LongType, false)
            .add("question_id", DataTypes.LongType, false)
            .add("answer", DataTypes.StringType, false)
            .add("top_k", DataTypes.createArrayType(TOP_K, false), false)
            .add("has_answers", DataTypes.BooleanType, false)
            .add("score", DataTypes.DoubleType, false);

    /**
     * What to run.
     *
     * @param model the bundle folder (readable on every executor)
     * @param partitions partitions of whole batches; 0 = Spark's default parallelism
     * @param threadsPerTask libtorch intra-op threads per task; 0 = spark.task.cpus
     * @param device cpu, gpu, gpu:N, auto; null = cpu (or MM4J_DEVICE on the executors)
     * @param precision fp32, bf16, int8, auto; null = the precision the bundle was trained in, chosen on each executor's
     *     device ({@link ModelBundle#load(Path, ai.djl.ndarray.NDManager, String)})
     * @param limit first N questions only; 0 = all
     * @param failOnceInPartition tests only: the first attempt of this partition fails after its first batch;
     *     -1 = never
     */
    public record Settings(Path model, Path data, String split, Path out, int batchSize, int topK, int partitions,
            int threadsPerTask, String device, String precision, long limit, int failOnceInPartition) {
        public Settings {
            if (batchSize < 1 || topK < 1 || partitions < 0 || threadsPerTask < 0 || limit < 0) {
                throw new IllegalArgumentException("batch size and top-k must be >= 1, partitions, threads and limit >= 0");
            }
        }

        public static Settings of(Path model, Path data, String split, Path out) {
            return new Settings(model, data, split, out, 8, 5, 0, 0, null, null, 0, -1);
        }

        public Settings withBatchSize(int n) {
            return new Settings(model, data, split, out, n, topK, partitions, threadsPerTask, device, precision, limit, failOnceInPartition);
        }

        public Settings withPartitions(int n) {
            return new Settings(model, data, split, out, batchSize, topK, n, threadsPerTask, device, precision, limit, failOnceInPartition);
        }

        public Settings withPrecision(String p) {
            return new Settings(model, data, split, out, batchSize, topK, partitions, threadsPerTask, device, p, limit, failOnceInPartition);
        }

        public Settings withOut(Path o) {
            return new Settings(model, data, split, o, batchSize, topK, partitions, threadsPerTask, device, precision, limit, failOnceInPartition);
        }

        public Settings failingOnceInPartition(int p) {
            return new Settings(model, data, split, out, batchSize, topK, partitions, threadsPerTask, device, precision, limit, p);
        }
    }

    /**
     * What came out.
     *
     * @param accuracy mean VQA accuracy over all predicted questions, or null when no question has answers (test split)
     * @param skippedByReason bad records skipped, by reason (as {@link DataLoader#skippedByReason()})
     */
    public record Result(long questions, long predicted, Double accuracy, Map<String, Long> skippedByReason,
            int partitions, double seconds, Path parquet, Path json) {
        public long skipped() {
            return skippedByReason.values().stream().mapToLong(Long::longValue).sum();
        }

        public double questionsPerSecond() {
            return seconds > 0 ? predicted / seconds : 0;
        }
    }

    /** Runs the job on {@code spark}. */
    public static Result run(SparkSession spark, Settings s) throws IOException {
        long t0 = System.nanoTime();
        QuestionTable.Table table = QuestionTable.read(spark, s.data(), s.split(), s.limit());
        long batches = (table.count() + s.batchSize() - 1) / s.batchSize();
        int parts = (int) Math.max(1, Math.min(batches,
                s.partitions() > 0 ? s.partitions() : spark.sparkContext().defaultParallelism()));
        SkipCounts skips = new SkipCounts();
        spark.sparkContext().register(skips, "mm4j skipped records");

        Task task = new Task(s.model().toAbsolutePath().toString(), s.device(), s.precision(), s.batchSize(), s.topK(), s.threadsPerTask(),
                s.failOnceInPartition(), System.getProperty(DJL_OFFLINE, "true"));
        JavaRDD<Row> predictions = table.rows().javaRDD()
                .keyBy(r -> r.getLong(0))
                .repartitionAndSortWithinPartitions(new BatchRanges(parts, batches, s.batchSize()))
                .values()
                .mapPartitionsWithIndex((index, rows) -> predictPartition(task, index, rows, skips), true);

        Files.createDirectories(s.out());
        Path parquet = s.out().resolve(PARQUET);
        spark.createDataFrame(predictions, SCHEMA).write().mode(SaveMode.Overwrite).parquet(parquet.toString());

        Dataset<Row> written = spark.read().parquet(parquet.toString());
        List<PredictionsWriter.Prediction> json = new ArrayList<>();
        Iterator<Row> it = written.select("question_id", "answer").orderBy("position").toLocalIterator();
        while (it.hasNext()) {
            Row r = it.next();
            json.add(new PredictionsWriter.Prediction(r.getLong(0), r.getString(1)));
        }
        Path jsonFile = s.out().resolve(JSON);
        PredictionsWriter.write(jsonFile, json);

        Tally tally = written.select("score", "has_answers").javaRDD()
                .aggregate(new Tally(), Tally::add, Tally::merge);
        Double accuracy = tally.withAnswers > 0 ? tally.scores.accuracy() : null;
        return new Result(table.count(), json.size(), accuracy, skips.value(), parts, (System.nanoTime() - t0) / 1e9,
                parquet, jsonFile);
    }

    /**
     * What a task needs of the settings (shipped to the executors).
     *
     * @param djlOffline the driver's {@code ai.djl.offline} (default true: the bundled libtorch, no download), set on
     *     an executor whose JVM has none (spark-submit's executors, a worker's) before the engine loads
     */
    record Task(String model, String device, String precision, int batchSize, int topK, int threadsPerTask, int failOnceInPartition,
            String djlOffline) implements Serializable {}

    static final String DJL_OFFLINE = "ai.djl.offline";

    /** The accuracy's exact sum and whether any question had answers (aggregated over partitions). */
    static final class Tally implements Serializable {
        private static final long serialVersionUID = 1L;
        final VqaAccuracy.Accumulator scores = new VqaAccuracy.Accumulator();
        long withAnswers;

        static Tally add(Tally t, Row r) {
            t.scores.addScore(r.getDouble(0));
            if (r.getBoolean(1)) {
                t.withAnswers++;
            }
            return t;
        }

        static Tally merge(Tally a, Tally b) {
            a.scores.merge(b.scores);
            a.withAnswers += b.withAnswers;
            return a;
        }
    }

    /** Partition {@code p} holds batches {@code [p*batches/parts, (p+1)*batches/parts)}: whole batches, in order. */
    static final class BatchRanges extends Partitioner {
        private static final long serialVersionUID = 1L;
        private final int parts;
        private final long batches;
        private final int batchSize;

        BatchRanges(int parts, long batches, int batchSize) {
            this.parts = parts;
            this.batches = Math.max(1, batches);
            this.batchSize = batchSize;
        }

        @Override
        public int numPartitions() {
            return parts;
        }

        @Override
        public int getPartition(Object key) {
            long batch = (Long) key / batchSize;
            return (int) Math.min(parts - 1, batch * parts / batches);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof BatchRanges b && b.parts == parts && b.batches == batches && b.batchSize == batchSize;
        }

        @Override
        public int hashCode() {
            return Long.hashCode(parts * 31L + batches * 17L + batchSize);
        }
    }

    /** One task: the partition's questions (whole batches, in position order) to prediction rows. */
    static Iterator<Row> predictPartition(Task s, int partition, Iterator<Row> rows, SkipCounts skips) {
        List<VqaSample> samples = new ArrayList<>();
        List<Long> positions = new ArrayList<>();
        while (rows.hasNext()) {
            Row r = rows.next();
            positions.add(r.getLong(0));
            samples.add(QuestionTable.toSample(r));
        }
        if (samples.isEmpty()) {
            return List.<Row>of().iterator();
        }
        if (System.getProperty(DJL_OFFLINE) == null) {
            System.setProperty(DJL_OFFLINE, s.djlOffline()); // before the first use of the engine in this JVM
        }
        Hardware.quietGpuProbeUnlessAsked(s.device()); // an executor's JVM: no CUDA warnings on a CPU machine
        TaskContext task = TaskContext.get();
        Hardware.configureThreads(s.threadsPerTask() > 0 ? s.threadsPerTask() : task == null ? 1 : task.cpus());
        BundleCache.Entry entry = BundleCache.get(s.model(), s.device(), s.precision());
        ModelBundle.Loaded b = entry.bundle();
        // position of each sample, by identity: the loader hands back the very sample objects it was given
        Map<VqaSample, Long> positionOf = new java.util.IdentityHashMap<>();
        for (int i = 0; i < samples.size(); i++) {
            positionOf.put(samples.get(i), positions.get(i));
        }
        List<Row> out = new ArrayList<>(samples.size());
        try (DataLoader loader = DataLoader.builder(samples).transform(b.transform()).tokenizer(b.tokenizer())
                .vocab(b.vocab()).batchSize(s.batchSize()).padding(b.info().padding).workers(1).prefetch(2)
                .requireAnswers(false).failWhenNothingUsable(false).build()) {
            Iterator<Batch> batches = loader.epoch(0, 0);
            int done = 0;
            while (batches.hasNext()) {
                Batch batch = batches.next();
                predictBatch(b, entry, batch, s.topK(), positionOf, out);
                if (++done == 1 && partition == s.failOnceInPartition() && task != null && task.attemptNumber() == 0) {
                    throw new IllegalStateException("test hook: the first attempt of partition " + partition
                            + " fails after its first batch");
                }
            }
            Map<String, Long> reasons = new TreeMap<>();
            loader.skippedByReason().forEach((k, n) -> reasons.put(k, n.longValue()));
            skips.add(reasons);
        }
        return out.iterator();
    }

    private static void predictBatch(ModelBundle.Loaded b, BundleCache.Entry entry, Batch batch, int k,
            Map<VqaSample, Long> positionOf, List<Row> out) {
        long[] best;
        float[] probs;
        int classes;
        try (ModelStep step = ModelStep.open(entry.manager())) {
            ModelStep.Inputs in = step.unlabelled(batch);
            NDArray logits = b.model().forward(in.image(), in.text(), null).logits();
            best = logits.argMax(-1).toLongArray();
            probs = logits.softmax(-1).toFloatArray();
            classes = (int) logits.getShape().get(1);
        }
        for (int i = 0; i < batch.size(); i++) {
            VqaSample sm = batch.samples().get(i);
            String answer = b.vocab().answer((int) best[i]);
            List<String> answers = sm.answers() == null ? List.of() : sm.answers();
            out.add(RowFactory.create(positionOf.get(sm), sm.questionId(), answer,
                    topK(b, probs, i * classes, classes, k), !answers.isEmpty(), VqaAccuracy.score(answer, answers)));
        }
    }

    /** The {@code k} most probable answers of one row of probabilities, most probable first (ties: lower class id). */
    static Row[] topK(ModelBundle.Loaded b, float[] probs, int offset, int classes, int k) {
        Integer[] order = new Integer[classes];
        for (int c = 0; c < classes; c++) {
            order[c] = c;
        }
        Arrays.sort(order, (x, y) -> Float.compare(probs[offset + y], probs[offset + x]));
        Row[] top = new Row[Math.min(k, classes)];
        for (int j = 0; j < top.length; j++) {
            top[j] = RowFactory.create(b.vocab().answer(order[j]), probs[offset + order[j]]);
        }
        return top;
    }
}
