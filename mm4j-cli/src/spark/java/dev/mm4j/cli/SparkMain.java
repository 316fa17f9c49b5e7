package dev.mm4j.cli;

/**
 * The main class of the Spark build ({@code target/mm4j-spark.jar}, {@code mvn -Pspark package}): every core
 * command of {@link Main} plus the Spark commands, which the core jar does not carry. {@code ./mm4j} runs it for
 * {@code batch-predict} and {@code bench-spark}; on a cluster it is spark-submit's {@code --class}.
 */
public final class SparkMain {
    private SparkMain() {}

    public static void main(String[] args) {
        System.exit(Main.execute(args, new BatchPredictCommand(), new BenchSparkCommand()));
    }
}
