package dev.mm4j.cli;

import ai.djl.Device;
import dev.mm4j.nn.Precision;
import dev.mm4j.spark.BatchPredictJob;
import dev.mm4j.spark.SparkSessions;
import dev.mm4j.util.Hardware;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j batch-predict}: predictions (and VQA accuracy) for a whole split on Apache Spark. */
@Command(name = "batch-predict", mixinStandardHelpOptions = true,
        description = {"Answers every question of a TextVQA split with a fine-tuned model on Apache Spark: embedded "
                + "(--master local[*], the default, no Spark installation) or on a cluster (--master spark://HOST:7077, "
                + "which ships target/mm4j-spark-app.jar to the executors, or spark-submit --class dev.mm4j.cli.SparkMain "
                + "target/mm4j-spark-app.jar batch-predict ...). Writes OUT/predictions.parquet "
                + "(question_id, answer, top_k answers with probabilities, score) and OUT/predictions.json "
                + "([{\"question_id\", \"answer\"}], the TextVQA server's format), and prints the VQA accuracy when the "
                + "split has answers. Bad records are skipped and counted; the model is loaded once per executor."})
public final class BatchPredictCommand implements Callable<Integer> {
    @Mixin SplitOptions target = new SplitOptions();

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "output folder")
    Path out;

    @Option(names = "--master", paramLabel = "URL", description = "Spark master: local[*], local[N], local[N,F] (F attempts per task), local-cluster[W,C,MB] (W workers with executor JVMs of their own; needs SPARK_LOCAL_IP, which ./mm4j sets to 127.0.0.1), "
            + "spark://..., yarn, k8s://...; default: spark-submit's, else local[*]")
    String master;

    @Mixin SparkConfOptions sparkConf = new SparkConfOptions();

    @Option(names = "--top-k", description = "answers kept per question with their probabilities (default: ${DEFAULT-VALUE})")
    int topK = 5;

    @Option(names = "--partitions", description = "partitions of whole batches; 0 = Spark's default parallelism (default: ${DEFAULT-VALUE})")
    int partitions;

    @Option(names = "--threads-per-task", paramLabel = "N", description = "libtorch threads per task; 0 = spark.task.cpus (default: ${DEFAULT-VALUE})")
    int threadsPerTask;

    @Option(names = "--device", paramLabel = "DEV", description = "cpu, gpu, gpu:N or auto, on the executors (default: MM4J_DEVICE, else cpu)")
    String device;

    @Option(names = "--precision", paramLabel = "P", description = "fp32, bf16 or auto, on the executors (default: the "
            + "model's own, recorded in its bundle.json; a bf16 model runs in fp32 on a CPU without avx512_bf16/AMX)")
    String precision;

    @Option(names = "--limit", description = "at most N questions (0 = all)")
    long limit;

    @Override
    public Integer call() throws Exception {
        if (precision != null) {
            Precision.resolve(precision, Device.cpu()); // an unknown name fails here, in one line, before Spark starts
        }
        BatchPredictJob.Settings s = new BatchPredictJob.Settings(target.model(), target.data(), target.split(), out, target.batchSize(), topK, partitions,
                threadsPerTask, device, precision, limit, -1);
        try (SparkSession spark = SparkSessions.open(master, "mm4j batch-predict", sparkConf.settings())) {
            if (spark.sparkContext().isLocal()) {
                Hardware.device(device); // embedded: the executors are this JVM, so a wrong device fails here, in one line
            }
            BatchPredictJob.Result r = BatchPredictJob.run(spark, s);
            System.out.printf("%d of %d questions predicted on %s in %d partitions, %.1f s (%.1f questions/s); written to %s and %s%n",
                    r.predicted(), r.questions(), spark.sparkContext().master(), r.partitions(), r.seconds(),
                    r.questionsPerSecond(), r.parquet(), r.json());
            if (r.accuracy() != null) {
                System.out.printf("VQA accuracy %.2f%% over %d questions (%s, split %s)%n", 100 * r.accuracy(), r.predicted(), target.data(), target.split());
            } else {
                System.out.println("no human answers in this split: accuracy not computed");
            }
            if (r.skipped() > 0) {
                System.out.printf("%d questions skipped (unreadable images or empty questions): %s%n", r.skipped(), r.skippedByReason());
            }
        }
        return 0;
    }
}
