package dev.mm4j.cli;

import dev.mm4j.spark.BatchPredictJob;
import dev.mm4j.spark.SparkBench;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mm4j bench-spark}: questions/s of single-process evaluate against Spark local[1], local[2], ... */
@Command(name = "bench-spark", mixinStandardHelpOptions = true,
        description = {"Prints questions/s of single-process evaluation and of the Spark batch-predict job on each "
                + "master, on the same data in one run (each run loads the model once, and that load is timed)."})
public final class BenchSparkCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model folder (OUT/model of finetune)")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "PATH", description = "dataset (official JSON / folder or parquet)")
    Path data;

    @Option(names = "--split", description = "split (default: ${DEFAULT-VALUE})")
    String split = "val";

    @Option(names = "--out", paramLabel = "DIR", description = "where the Spark runs write (default: ${DEFAULT-VALUE})")
    Path out = Path.of("bench-spark-out");

    @Option(names = "--masters", split = ",", description = "Spark masters to time (default: ${DEFAULT-VALUE})")
    List<String> masters = List.of("local[1]", "local[2]");

    @Option(names = "--batch-size", description = "(default: ${DEFAULT-VALUE})")
    int batchSize = 8;

    @Option(names = "--limit", description = "at most N questions (0 = all)")
    int limit;

    @Override
    public Integer call() throws Exception {
        List<SparkBench.Row> rows = new ArrayList<>();
        rows.add(SparkBench.singleProcess(model, data, split, batchSize, limit));
        for (String m : masters) {
            BatchPredictJob.Settings s = new BatchPredictJob.Settings(model, data, split,
                    out.resolve(m.replaceAll("[^A-Za-z0-9]+", "_")), batchSize, 5, 0, 0, null, limit, -1);
            rows.add(SparkBench.spark(m, s));
        }
        System.out.print(SparkBench.table(rows));
        System.out.printf("(%d cores; Spark times include session start, the shuffle into batches and writing parquet + json)%n",
                Runtime.getRuntime().availableProcessors());
        return 0;
    }
}
