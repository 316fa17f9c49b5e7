package dev.mm4j.cli;

/**
 * The main class of the Spark build ({@code target/mm4j-spark.jar}, {@code mvn -Pspark package}): every core
 * command of {@link Main} plus the Spark commands, which the core jar does not carry, and {@code finetune --master}
 * (data-parallel training as a barrier stage). {@code ./mm4j} runs it for {@code batch-predict}, {@code bench-spark}
 * and {@code finetune --master}; on a cluster it is spark-submit's {@code --class}.
 */
public final class SparkMain {
    private SparkMain() {}

    public static void main(String[] args) {
        installCluster();
        System.exit(Main.execute(args, new BatchPredictCommand(), new BenchSparkCommand()));
    }

    /** finetune --master: the ranks as a Spark barrier stage ({@link dev.mm4j.spark.DistributedFinetune}). */
    static void installCluster() {
        FinetuneCommand.cluster = (master, conf, workers, settings, resume, timeout) -> {
            try (org.apache.spark.sql.SparkSession spark = dev.mm4j.spark.SparkSessions.open(master, "mm4j finetune", conf)) {
                return dev.mm4j.spark.DistributedFinetune.run(spark, workers, settings, resume, timeout);
            }
        };
    }
}
