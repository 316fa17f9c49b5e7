package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.spark.DistributedFinetune;
import dev.mm4j.spark.SparkSessions;
import dev.mm4j.train.CheckpointStore;
import dev.mm4j.train.FinetuneSettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-parallel fine-tuning as a Spark barrier stage on {@code local-cluster[2,1,1536]} (two executor JVMs, one
 * rank each, the rendezvous on the first task's host, everything on the loopback): rank 0 writes the run's
 * checkpoints and model; both ranks end with the same step count.
 */
class DistributedFinetuneClusterTest {
    @TempDir Path tmp;

    @Test
    void twoExecutorsTrainOneRunInABarrierStage() throws Exception {
        LocalClusterTest.sparkHomeOfThisClassPath();
        Path data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 24, 4, 4, 42, 64, 48, 1,
                SyntheticTextVqa.Look.DEMO));
        FinetuneSettings s = FinetuneSettings.preset("demo");
        s.data = data.toString();
        s.out = tmp.resolve("out").toString();
        s.maxSteps = 2;
        s.batchSize = 3;
        s.threads = 1;
        s.evalEvery = 0;
        s.valLimit = 4;
        s.checkpointEvery = 1;
        List<String> ranks;
        try (SparkSession spark = SparkSessions.open("local-cluster[2,1,1536]", "test", Map.of(
                "spark.executor.memory", "1280m",
                "spark.executor.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dai.djl.offline=true"))) {
            ranks = DistributedFinetune.run(spark, 2, s, false, Duration.ofSeconds(120));
        }
        assertEquals(List.of("rank 0 (attempt 0): COMPLETED after 2 steps", "rank 1 (attempt 0): COMPLETED after 2 steps"),
                ranks);
        CheckpointStore store = new CheckpointStore(tmp.resolve("out"), 3);
        assertEquals(2, CheckpointStore.state(store.latest()).step);
        assertTrue(Files.isDirectory(tmp.resolve("out/model")), "rank 0 exported the model");
    }
}
