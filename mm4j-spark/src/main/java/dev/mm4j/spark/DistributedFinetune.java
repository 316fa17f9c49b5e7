package dev.mm4j.spark;

import dev.mm4j.train.CheckpointStore;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.Pretrainer;
import dev.mm4j.train.dist.Rendezvous;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.stream.IntStream;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.SparkSession;
import java.io.Serializable;
import scala.Function1;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag$;

/**
 * Data-parallel fine-tuning as a Spark barrier stage, like PyTorch's {@code TorchDistributor}: one task per rank, all
 * started together; the first task's host is the rendezvous (its free port shared through the barrier's
 * {@code allGather}), each rank runs {@link Finetuner} (or {@link Pretrainer} for {@code task: pretraining}) with
 * {@code distributed(...)}. The output folder
 * must be one all executors see (a shared file system; one machine for {@code local-cluster}). When a rank fails, the
 * others fail within the timeout and Spark retries the whole stage; a retried attempt resumes from rank 0's last
 * checkpoint.
 */
public final class DistributedFinetune {
    private DistributedFinetune() {}

    /**
     * Runs the fine-tuning of {@code settings} on {@code workers} ranks.
     *
     * @return one line per rank: its rank, status and steps
     */
    public static List<String> run(SparkSession spark, int workers, FinetuneSettings settings, boolean resume,
            Duration timeout) {
        if (workers < 1) {
            throw new IllegalArgumentException("--workers must be at least 1, not " + workers);
        }
        String yaml = settings.toYaml();
        long timeoutSeconds = timeout.toSeconds();
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        Function1<scala.collection.Iterator<Integer>, scala.collection.Iterator<String>> f =
                (Function1<scala.collection.Iterator<Integer>, scala.collection.Iterator<String>> & Serializable) ignored -> {
                    try {
                        return CollectionConverters.asScala(task(yaml, resume, timeoutSeconds, workers));
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                };
        RDD<String> ranks = jsc.parallelize(IntStream.range(0, workers).boxed().toList(), workers).rdd()
                .barrier()
                .mapPartitions(f, false, ClassTag$.MODULE$.apply(String.class));
        // a shuffle after the barrier stage makes it a shuffle-map stage, which Spark retries as a whole when a task
        // fails (a failed barrier result stage is not retried)
        return ranks.toJavaRDD().repartition(1).collect().stream().sorted().toList();
    }

    private static Iterator<String> task(String yaml, boolean resume, long timeoutSeconds, int workers)
            throws IOException {
        BarrierTaskContext ctx = BarrierTaskContext.get();
        int rank = ctx.partitionId();
        String master = host(ctx.getTaskInfos()[0].address());
        String self = host(ctx.getTaskInfos()[rank].address());
        String port = "";
        if (rank == 0) {
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(master))) {
                port = String.valueOf(s.getLocalPort());
            }
        }
        int masterPort = Integer.parseInt(ctx.allGather(port)[0]);
        Path file = Files.createTempFile("mm4j-settings", ".yaml");
        FinetuneSettings s;
        try {
            Files.writeString(file, yaml);
            s = new FinetuneSettings().merge(file);
        } finally {
            Files.deleteIfExists(file);
        }
        // a retried stage continues from the checkpoint its failed attempt left
        boolean resumeRun = resume || (ctx.stageAttemptNumber() > 0 || ctx.attemptNumber() > 0)
                && new CheckpointStore(Path.of(s.out), s.keepLast).latest() != null;
        PrintStream log = rank == 0 ? System.out : new PrintStream(OutputStream.nullOutputStream());
        Rendezvous rendezvous = new Rendezvous(master, masterPort, self, rank, workers,
                Duration.ofSeconds(timeoutSeconds), 2);
        Finetuner.Status status;
        long steps;
        if (s.isPretraining()) {
            Pretrainer.Result r = Pretrainer.builder().settings(s).resume(resumeRun).log(log).distributed(rendezvous)
                    .build().run();
            status = r.status();
            steps = r.steps();
        } else {
            Finetuner.Result r = Finetuner.builder().settings(s).resume(resumeRun).log(log).distributed(rendezvous)
                    .build().run();
            status = r.status();
            steps = r.steps();
        }
        return List.of("rank " + rank + " (attempt " + ctx.stageAttemptNumber() + "): " + status + " after "
                + steps + " steps" + (resumeRun ? ", resumed" : "")).iterator();
    }

    /** The host of a {@code host:port} address. */
    static String host(String address) {
        int colon = address.lastIndexOf(':');
        return colon < 0 ? address : address.substring(0, colon);
    }
}
