package dev.mm4j.cli;

import dev.mm4j.spark.BatchPredictJob;
import dev.mm4j.spark.SparkBench;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j bench-spark}: questions/s of single-process evaluate against Spark local[1], local[2], ... */
@Command(name = "bench-spark", mixinStandardHelpOptions = true,
        description = {"Prints questions/s of single-process evaluation and of the Spark batch-predict job on each "
                + "master, on the same data in one run (each run loads the model once, and that load is timed)."})
public final class BenchSparkCommand implements Callable<Integer> {
    @Mixin SplitOptions target = new SplitOptions();

    @Option(names = "--out", paramLabel = "DIR", description = "where the Spark runs write (default: ${DEFAULT-VALUE})")
    Path out = Path.of("bench-spark-out");

    @Option(names = "--masters", split = ",", description = "Spark masters to time (default: ${DEFAULT-VALUE})")
    List<String> masters = List.of("local[1]", "local[2]");

    @Mixin SparkConfOptions sparkConf = new SparkConfOptions();

    @Option(names = "--limit", description = "at most N questions (0 = all)")
    int limit;

    @Option(names = "--repeat", description = "rounds over all modes; each mode's fastest round is shown, so a busy "
            + "machine or a cold file cache in round 1 distorts less (default: ${DEFAULT-VALUE})")
    int repeat = 2;

    @Override
    public Integer call() throws Exception {
        List<SparkBench.Row> rows = new ArrayList<>();
        for (int round = 0; round < Math.max(1, repeat); round++) {
            List<SparkBench.Row> these = new ArrayList<>();
            these.add(SparkBench.singleProcess(target.model(), target.data(), target.split(), target.batchSize(), limit));
            for (String m : masters) {
                BatchPredictJob.Settings s = new BatchPredictJob.Settings(target.model(), target.data(), target.split(),
                        out.resolve(m.replaceAll("[^A-Za-z0-9]+", "_")), target.batchSize(), 5, 0, 0, null, null, limit, -1);
                these.add(SparkBench.spark(m, sparkConf.settings(), s));
            }
            System.out.printf("round %d: %s%n", round + 1, these.stream()
                    .map(r -> String.format("%s %.1f q/s", r.mode(), r.questionsPerSecond())).toList());
            for (int i = 0; i < these.size(); i++) {
                if (rows.size() <= i) {
                    rows.add(these.get(i));
                } else if (these.get(i).seconds() < rows.get(i).seconds()) {
                    rows.set(i, these.get(i));
                }
            }
        }
        System.out.print(SparkBench.table(rows));
        System.out.printf("(fastest of %d rounds; %d cores; Spark times include session start, the shuffle into batches and writing parquet + json)%n",
                Math.max(1, repeat), Runtime.getRuntime().availableProcessors());
        return 0;
    }
}
