package dev.mm4j.spark;

import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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
        try (VqaDataset ds = TextVqaDatasets.open(data, split);
                NDManager manager = NDManager.newBaseManager(Hardware.device(null));
                ModelBundle.Loaded b = ModelBundle.load(model, manager);
                DataLoader loader = DataLoader.builder(limit > 0 ? first(ds, limit) : ds).transform(b.transform())
                        .tokenizer(b.tokenizer()).vocab(b.vocab()).batchSize(batchSize).padding(b.info().padding)
                        .requireAnswers(false).build()) {
            Evaluator.Result r = Evaluator.evaluate(b.model(), loader.epoch(0, 0), b.vocab(), manager, 0);
            return new Row("evaluate (1 JVM, " + threads + " libtorch threads)", r.count(), (System.nanoTime() - t0) / 1e9, 1,
                    r.accuracy());
        }
    }

    /** The Spark job on {@code master}, timed from session start to the written outputs. */
    public static Row spark(String master, BatchPredictJob.Settings settings) throws IOException {
        BundleCache.clear();
        long t0 = System.nanoTime();
        try (SparkSession spark = SparkSessions.open(master, "mm4j bench-spark")) {
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

    private static List<VqaSample> first(Iterable<VqaSample> ds, int n) {
        List<VqaSample> out = new ArrayList<>();
        for (VqaSample s : ds) {
            out.add(s);
            if (out.size() >= n) {
                break;
            }
        }
        return out;
    }
}
