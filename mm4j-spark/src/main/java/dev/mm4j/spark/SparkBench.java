package dev.mm4j.spark;

import dev.mm4j.eval.BundleEvaluation;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * Throughput of batch prediction: single-process evaluation (what {@code mm4j evaluate} runs: one JVM, libtorch
 * on all cores) against the Spark job on a list of masters, on the same data, each run paying its own model load.
 */
public final class SparkBench {
    private SparkBench() {}

    /** One measured run. */
    public record Row(String mode, long questions, double seconds, int modelLoads, double accuracy) {
        public double questionsPerSecond() {
            return seconds > 0 ? questions / seconds : 0;
        }
    }

    /** Single-process evaluation, as {@code evaluate} does it, timed from model load to the last answer. */
    public static Row singleProcess(Path model, Path data, String split, int batchSize, int limit) throws IOException {
        long t0 = System.nanoTime();
        int threads = Hardware.configureThreads(0);
        BundleEvaluation e = BundleEvaluation.run(model, data, split, batchSize, limit, Hardware.device(null));
        return new Row("evaluate (1 JVM, " + threads + " libtorch threads)", e.result().count(),
                (System.nanoTime() - t0) / 1e9, 1, e.result().accuracy());
    }

    /** The Spark job on {@code master} (with spark-submit-style {@code conf}), timed from session start to the written outputs. */
    public static Row spark(String master, Map<String, String> conf, BatchPredictJob.Settings settings) throws IOException {
        BundleCache.clear();
        long t0 = System.nanoTime();
        try (SparkSession spark = SparkSessions.open(master, "mm4j bench-spark", conf)) {
            BatchPredictJob.Result r = BatchPredictJob.run(spark, settings);
            return new Row("spark " + master + " (" + r.partitions() + " partitions)", r.predicted(),
                    (System.nanoTime() - t0) / 1e9, BundleCache.loads(), r.accuracy() == null ? 0 : r.accuracy());
        } finally {
            BundleCache.clear();
        }
    }

    /** The table printed by {@code bench-spark}. */
    public static String table(List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("%-44s %9s %9s %12s %11s %9s%n", "mode", "questions", "seconds", "questions/s", "model loads", "accuracy"));
        for (Row r : rows) {
            sb.append(String.format("%-44s %9d %9.2f %12.1f %11d %8.2f%%%n", r.mode(), r.questions(), r.seconds(),
                    r.questionsPerSecond(), r.modelLoads(), 100 * r.accuracy()));
        }
        return sb.toString();
    }
}
