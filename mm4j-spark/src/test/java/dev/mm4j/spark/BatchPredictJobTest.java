package dev.mm4j.spark;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.Padding;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.parquet.TextVqaParquetWriter;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.eval.BundleEvaluation;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Spark job on generated TextVQA data with bad records, against single-process evaluation of the same
 * bundle: the same answers in the same order, the same accuracy and the same skip counts, bit for bit.
 */
class BatchPredictJobTest {
    static final int BATCH = 4;

    @TempDir
    static Path tmp;
    static Path data;
    static Path bundle;

    /** Single-process evaluation (what {@code mm4j evaluate} runs) of the split at {@code path}. */
    record Reference(Evaluator.Result result, Map<String, Long> skipped, Path json) {}

    @BeforeAll
    static void setUp() throws Exception {
        SparkFixtures.Fixture f = SparkFixtures.get();
        data = f.data();
        bundle = f.bundle();
    }

    static Reference singleProcess(Path dataset, Path json) throws Exception {
        try (VqaDataset ds = TextVqaDatasets.open(dataset, "val");
                NDManager manager = NDManager.newBaseManager();
                ModelBundle.Loaded b = ModelBundle.load(bundle, manager);
                DataLoader loader = DataLoader.builder(ds).transform(b.transform()).tokenizer(b.tokenizer())
                        .vocab(b.vocab()).batchSize(BATCH).padding(b.info().padding).requireAnswers(false).build()) {
            Evaluator.Result r = Evaluator.evaluate(b.model(), loader.epoch(0, 0), b.vocab(), manager, 0);
            PredictionsWriter.write(json, r.predictions());
            Map<String, Long> skipped = new TreeMap<>();
            loader.skippedByReason().forEach((k, n) -> skipped.put(k, n.longValue()));
            return new Reference(r, skipped, json);
        }
    }

    static void assertSame(Reference ref, BatchPredictJob.Result r) throws Exception {
        assertEquals(ref.result().predictions(), PredictionsWriter.read(r.json()), "answers, in order");
        assertEquals(-1, Files.mismatch(ref.json(), r.json()), "predictions.json byte for byte");
        assertEquals(ref.result().accuracy(), r.accuracy(), 0.0, "accuracy bit for bit");
        assertEquals(ref.skipped(), r.skippedByReason(), "skip counts by reason");
        assertEquals(ref.result().count(), r.predicted());
    }

    @Test
    void sameAnswersAccuracyAndSkipsAsSingleProcessEvaluate() throws Exception {
        Reference ref = singleProcess(data, tmp.resolve("reference.json"));
        System.out.println("single process: accuracy " + ref.result().accuracy() + ", skipped " + ref.skipped());
        assertEquals(Map.of("empty question", 1L, "image file missing", ref.skipped().get("image file missing"),
                "image undecodable", ref.skipped().get("image undecodable")), ref.skipped());
        assertTrue(ref.skipped().get("image file missing") >= 1 && ref.skipped().get("image undecodable") >= 1);

        BundleCache.clear();
        BatchPredictJob.Settings s = BatchPredictJob.Settings.of(bundle, data, "val", tmp.resolve("spark-out"))
                .withBatchSize(BATCH).withPartitions(3);
        BatchPredictJob.Result r;
        try (SparkSession spark = SparkSessions.open("local[2]", "test")) {
            r = BatchPredictJob.run(spark, s);
            System.out.println("spark local[2]: accuracy " + r.accuracy() + ", skipped " + r.skippedByReason()
                    + ", partitions " + r.partitions());
            assertEquals(3, r.partitions());
            assertEquals(1, BundleCache.loads(), "one model load in this JVM for all tasks");

            List<Row> rows = spark.read().parquet(r.parquet().toString()).orderBy("position").collectAsList();
            assertEquals(r.predicted(), rows.size());
            for (Row row : rows) {
                List<Row> top = row.getList(row.fieldIndex("top_k"));
                assertEquals(5, top.size());
                assertEquals(row.getString(row.fieldIndex("answer")), top.get(0).getString(0), "top-1 is the answer");
                float sum = 0;
                for (int i = 0; i < top.size(); i++) {
                    float p = top.get(i).getFloat(1);
                    assertTrue(p > 0 && p <= 1);
                    if (i > 0) {
                        assertTrue(p <= top.get(i - 1).getFloat(1), "most probable first");
                    }
                    sum += p;
                }
                assertTrue(sum <= 1.0001f);
                assertTrue(row.getBoolean(row.fieldIndex("has_answers")));
            }
        }
        assertSame(ref, r);
    }

    /** {@code batch-predict --precision bf16} answers as {@code evaluate --precision bf16} does, on the executors too. */
    @Test
    void bf16AskedForGivesTheAnswersOfEvaluateInBf16() throws Exception {
        BundleEvaluation e = BundleEvaluation.run(bundle, data, "val", BATCH, 0, Device.cpu(), "bf16");
        Path json = tmp.resolve("reference-bf16.json");
        PredictionsWriter.write(json, e.result().predictions());
        Map<String, Long> skipped = new TreeMap<>();
        e.skippedByReason().forEach((k, n) -> skipped.put(k, n.longValue()));
        BundleCache.clear();
        BatchPredictJob.Settings s = BatchPredictJob.Settings.of(bundle, data, "val", tmp.resolve("spark-bf16"))
                .withBatchSize(BATCH).withPartitions(2).withPrecision("bf16");
        try (SparkSession spark = SparkSessions.open("local[2]", "test")) {
            assertSame(new Reference(e.result(), skipped, json), BatchPredictJob.run(spark, s));
            assertEquals(1, BundleCache.loads());
            assertEquals(Precision.BF16, BundleCache.get(bundle.toString(), null, "bf16").bundle().model().precision(),
                    "the executors' model runs in bf16");
            assertEquals(1, BundleCache.loads(), "the tasks loaded it in bf16");
        }
        BundleCache.clear();
    }

    @Test
    void aTaskThatFailsOnceIsRetriedAndCountedOnce() throws Exception {
        Reference ref = singleProcess(data, tmp.resolve("reference-retry.json"));
        BatchPredictJob.Settings s = BatchPredictJob.Settings.of(bundle, data, "val", tmp.resolve("spark-retry"))
                .withBatchSize(BATCH).withPartitions(2).failingOnceInPartition(0);
        try (SparkSession spark = SparkSessions.open("local[2,2]", "test")) {
            assertSame(ref, BatchPredictJob.run(spark, s));
        }
        // without retries the same failure fails the job
        s = s.withOut(tmp.resolve("spark-no-retry"));
        try (SparkSession spark = SparkSessions.open("local[2]", "test")) {
            BatchPredictJob.Settings once = s;
            Exception e = assertThrows(Exception.class, () -> BatchPredictJob.run(spark, once));
            assertTrue(String.valueOf(e.getMessage()).contains("test hook"), e.getMessage());
        }
    }

    @Test
    void huggingFaceParquetShardsAreReadInsideTheTasks() throws Exception {
        Path hub = tmp.resolve("hub");
        Files.createDirectories(hub);
        try (VqaDataset ds = TextVqaDatasets.open(data, "val")) {
            List<dev.mm4j.data.VqaSample> all = new java.util.ArrayList<>();
            ds.forEach(all::add);
            TextVqaParquetWriter.write(hub.resolve("validation-00000-of-00002.parquet"), all.subList(0, 23), 5);
            TextVqaParquetWriter.write(hub.resolve("validation-00001-of-00002.parquet"), all.subList(23, all.size()), 5);
        }
        Reference ref = singleProcess(hub, tmp.resolve("reference-parquet.json"));
        BatchPredictJob.Settings s = BatchPredictJob.Settings.of(bundle, hub, "val", tmp.resolve("spark-parquet"))
                .withBatchSize(BATCH).withPartitions(2);
        try (SparkSession spark = SparkSessions.open("local[2]", "test")) {
            assertSame(ref, BatchPredictJob.run(spark, s));
        }
    }
}
