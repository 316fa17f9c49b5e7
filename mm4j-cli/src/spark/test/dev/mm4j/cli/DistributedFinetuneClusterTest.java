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
 * checkpoints and model; both ranks end with the same step count. An executor JVM killed mid-run (SIGKILL) fails
 * the stage, Spark retries it, the retry resumes from rank 0's last checkpoint and ends with the weights of the
 * uninterrupted run, bit for bit.
 */
class DistributedFinetuneClusterTest {
    @TempDir Path tmp;

    static FinetuneSettings settings(Path data, Path out, long steps) {
        FinetuneSettings s = FinetuneSettings.preset("demo");
        s.data = data.toString();
        s.out = out.toString();
        s.maxSteps = steps;
        s.batchSize = 3;
        s.threads = 1;
        s.evalEvery = 0;
        s.valLimit = 4;
        s.checkpointEvery = 1;
        s.dropout = false;
        return s;
    }

    static SparkSession cluster() {
        return SparkSessions.open("local-cluster[2,1,1536]", "test", Map.of(
                "spark.executor.memory", "1280m",
                "spark.executor.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dai.djl.offline=true"));
    }

    @Test
    void twoExecutorsTrainOneRunAndARetriedStageAfterAKilledExecutorEndsWithTheSameWeights() throws Exception {
        LocalClusterTest.sparkHomeOfThisClassPath();
        Path data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 48, 4, 4, 42, 64, 48, 1,
                SyntheticTextVqa.Look.DEMO));
        long steps = 6;
        Path whole = tmp.resolve("whole");
        // through the command line: ./mm4j finetune --master ... --workers 2 (the Spark build's main class)
        SparkMain.installCluster();
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stdout = System.out;
        int rc;
        System.setOut(new java.io.PrintStream(printed, true));
        try {
            rc = Main.commandLine().execute("finetune", "--preset", "demo", "--data", data.toString(), "--out",
                    whole.toString(), "--max-steps", String.valueOf(steps), "--batch-size", "3", "--threads", "1",
                    "--set", "eval_every=0", "--set", "val_limit=4", "--set", "checkpoint_every=1", "--set", "dropout=false",
                    "--master", "local-cluster[2,1,1536]", "--workers", "2", "--dist-timeout", "60",
                    "--conf", "spark.executor.memory=1280m",
                    "--conf", "spark.executor.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dai.djl.offline=true");
        } finally {
            System.setOut(stdout);
        }
        assertEquals(0, rc, printed.toString());
        assertTrue(printed.toString().contains("rank 0 (attempt 0): COMPLETED after 6 steps\nrank 1 (attempt 0): COMPLETED after 6 steps"),
                printed.toString());
        List<String> ranks;
        CheckpointStore store = new CheckpointStore(whole, 3);
        assertEquals(6, CheckpointStore.state(store.latest()).step);
        assertTrue(Files.isDirectory(whole.resolve("model")), "rank 0 exported the model");

        // the same run; an executor JVM is killed (SIGKILL) once step 2 is checkpointed: the stage is retried
        Path killed = tmp.resolve("killed");
        CheckpointStore killedStore = new CheckpointStore(killed, 3);
        java.util.concurrent.atomic.AtomicReference<String> victim = new java.util.concurrent.atomic.AtomicReference<>();
        Thread killer = new Thread(() -> {
            try {
                while (killedStore.latest() == null || CheckpointStore.state(killedStore.latest()).step < 2) {
                    Thread.sleep(100);
                }
                ProcessHandle.current().descendants()
                        .filter(p -> p.info().commandLine().orElse("").contains("CoarseGrainedExecutorBackend"))
                        .findFirst().ifPresent(p -> {
                            victim.set(p.pid() + " at step " + stepOf(killedStore));
                            p.destroyForcibly();
                        });
            } catch (Exception e) {
                victim.set("failed: " + e);
            }
        });
        killer.setDaemon(true);
        killer.start();
        try (SparkSession spark = cluster()) {
            ranks = DistributedFinetune.run(spark, 2, settings(data, killed, steps), false, Duration.ofSeconds(60));
        }
        killer.join(10_000);
        assertNotNull(victim.get(), "an executor was killed");
        assertFalse(victim.get().startsWith("failed"), victim.get());
        assertEquals(2, ranks.size(), ranks.toString());
        for (String r : ranks) {
            assertTrue(r.matches("rank [01] \\(attempt [1-9]\\): COMPLETED after 6 steps, resumed"), ranks + " (killed " + victim.get() + ")");
        }
        try (dev.mm4j.checkpoint.StateDict a = dev.mm4j.checkpoint.SafeTensors.read(
                        whole.resolve("model").resolve(dev.mm4j.checkpoint.ModelBundle.WEIGHTS));
                dev.mm4j.checkpoint.StateDict b = dev.mm4j.checkpoint.SafeTensors.read(
                        killed.resolve("model").resolve(dev.mm4j.checkpoint.ModelBundle.WEIGHTS))) {
            assertEquals(a.names(), b.names());
            for (String name : a.names()) {
                assertArrayEquals(a.get(name).toFloatArray(), b.get(name).toFloatArray(), name + " bit for bit");
            }
        }
    }

    /** Pretraining as the barrier stage: 2 ranks pretrain one run that rank 0 writes (a metrics line per step, the bundle). */
    @Test
    void twoExecutorsPretrainOneRun() throws Exception {
        LocalClusterTest.sparkHomeOfThisClassPath();
        dev.mm4j.data.SyntheticPretraining.Written data = dev.mm4j.data.SyntheticPretraining.generate(
                new SyntheticTextVqa.Options(tmp.resolve("synth"), 24, 4, 2, 5, 96, 64, 1));
        FinetuneSettings s = FinetuneSettings.preset("default");
        s.task = "pretraining";
        s.model = new com.fasterxml.jackson.databind.ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory())
                .readValue(PretrainingCommandTest.TINY, Map.class);
        s.pretrainingSources = List.of(
                new FinetuneSettings.PretrainingSourceSpec("pairs", data.pairs().toString(), 1),
                new FinetuneSettings.PretrainingSourceSpec("text", data.texts().toString(), 1),
                new FinetuneSettings.PretrainingSourceSpec("image", data.images().toString(), 2));
        Path out = tmp.resolve("pretrain");
        s.out = out.toString();
        s.maxSteps = 2;
        s.batchSize = 4;
        s.threads = 1;
        s.checkpoint = "none";
        s.pairsMaxLength = 24;
        s.maxLength = 24;
        List<String> ranks;
        try (SparkSession spark = cluster()) {
            ranks = DistributedFinetune.run(spark, 2, s, false, Duration.ofSeconds(60));
        }
        assertEquals(List.of("rank 0 (attempt 0): COMPLETED after 2 steps", "rank 1 (attempt 0): COMPLETED after 2 steps"),
                ranks);
        assertEquals(2, dev.mm4j.report.MetricsLog.read(out.resolve("metrics.jsonl")).size(), "one line per step");
        assertTrue(Files.isRegularFile(out.resolve("model").resolve(dev.mm4j.checkpoint.ModelBundle.WEIGHTS)));
    }

    private static long stepOf(CheckpointStore store) {
        try {
            return CheckpointStore.state(store.latest()).step;
        } catch (Exception e) {
            return -1;
        }
    }
}
