package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.report.MetricsLog;
import dev.mm4j.train.CheckpointStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mm4j finetune --nproc 2}: two processes on 127.0.0.1 train one run (process 0 writes OUT: settings, metrics,
 * checkpoints, the exported model), and a rerun with --resume continues it.
 */
class FinetuneNprocTest {
    @TempDir Path tmp;

    @Test
    void twoProcessesTrainOneRunThatProcessZeroWritesAndAResumeContinuesIt() throws Exception {
        Path data = tmp.resolve("data");
        assertEquals(0, Main.commandLine().execute("synth", "--out", data.toString(), "--train", "24", "--val", "4",
                "--test", "4", "--width", "64", "--height", "48"));
        Path out = tmp.resolve("out");
        String[] common = {"finetune", "--preset", "demo", "--data", data.toString(), "--out", out.toString(),
            "--batch-size", "3", "--threads", "1", "--nproc", "2", "--dist-timeout", "60",
            "--set", "checkpoint_every=2", "--set", "eval_every=0", "--set", "val_limit=4"};
        String[] first = concat(common, "--max-steps", "2");
        assertEquals(0, Main.commandLine().execute(first));
        // written once, by process 0: step 0's loss line and the final validation's line, no duplicates
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(1, lines.stream().filter(l -> l.startsWith("{\"step\":0,\"loss\"")).count(), lines.toString());
        assertEquals(1, lines.stream().filter(l -> l.contains("val_accuracy")).count(), lines.toString());
        CheckpointStore store = new CheckpointStore(out, 3);
        assertEquals(2, CheckpointStore.state(store.latest()).step);
        assertTrue(Files.isDirectory(out.resolve("model")), "process 0 exported the model");

        assertEquals(0, Main.commandLine().execute(concat(common, "--max-steps", "4", "--resume")));
        assertEquals(4, CheckpointStore.state(store.latest()).step);
        List<Long> steps = MetricsLog.read(out.resolve("metrics.jsonl")).stream().map(MetricsLog.Entry::step).toList();
        assertEquals(3L, steps.get(steps.size() - 1), "the resumed run's final validation: " + steps);
    }

    /**
     * The target on FLAVA (the demo preset's small model): 2 processes x batch 3 train the same weights, within
     * 1e-6 relative, as 1 process with gradient accumulation 2 x batch 3 over the same global batches; dropout off
     * (each process draws its own masks), fp32 and bf16.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"fp32", "bf16"})
    void twoProcessesTrainTheWeightsOfOneWithAccumulationTwo(String precision) throws Exception {
        Path data = tmp.resolve("data");
        assertEquals(0, Main.commandLine().execute("synth", "--out", data.toString(), "--train", "24", "--val", "4",
                "--test", "4", "--width", "64", "--height", "48"));
        String[] common = {"finetune", "--preset", "demo", "--data", data.toString(), "--batch-size", "3",
            "--threads", "1", "--max-steps", "3", "--precision", precision, "--set", "dropout=false",
            "--set", "eval_every=0", "--set", "val_limit=4"};
        Path two = tmp.resolve("two");
        Path one = tmp.resolve("one");
        assertEquals(0, Main.commandLine().execute(concat(common, "--out", two.toString(), "--nproc", "2",
                "--dist-timeout", "60")));
        assertEquals(0, Main.commandLine().execute(concat(common, "--out", one.toString(), "--set", "grad_accum=2")));
        dev.mm4j.train.ModelWeights.assertClose(two.resolve("model"), one.resolve("model"), 1e-6, 10, precision);
    }

    /**
     * {@code finetune --task pretraining --nproc 2}: two processes pretrain one run (process 0 alone writes OUT: one
     * metrics line per step, checkpoints, the pretraining bundle), the losses those of 1 process with accumulation 2.
     */
    @Test
    void twoProcessesPretrainOneRunThatProcessZeroWrites() throws Exception {
        dev.mm4j.data.SyntheticPretraining.Written data = dev.mm4j.data.SyntheticPretraining.generate(
                new dev.mm4j.data.SyntheticTextVqa.Options(tmp.resolve("synth"), 24, 4, 2, 5, 96, 64, 1));
        Path yaml = tmp.resolve("tiny.yaml");
        Files.writeString(yaml, PretrainingCommandTest.TINY);
        String[] common = {"finetune", "--task", "pretraining", "--model-config", yaml.toString(), "--pairs",
            data.pairs().toString(), "--texts", data.texts().toString(), "--images", data.images() + ":2",
            "--max-steps", "3", "--batch-size", "4", "--threads", "1", "--set", "seed=3", "--set", "dropout=false",
            "--set", "pairs_max_length=24", "--set", "max_length=24", "--set", "log_every=1"};
        Path two = tmp.resolve("two");
        assertEquals(0, Main.commandLine().execute(concat(common, "--out", two.toString(), "--nproc", "2",
                "--dist-timeout", "60")));
        Path one = tmp.resolve("one");
        assertEquals(0, Main.commandLine().execute(concat(common, "--out", one.toString(), "--set", "grad_accum=2")));
        List<MetricsLog.Entry> a = MetricsLog.read(two.resolve("metrics.jsonl"));
        List<MetricsLog.Entry> b = MetricsLog.read(one.resolve("metrics.jsonl"));
        assertEquals(List.of(0L, 1L, 2L), a.stream().map(MetricsLog.Entry::step).toList(), "one line per step");
        for (int i = 0; i < 3; i++) {
            assertEquals(b.get(i).loss(), a.get(i).loss(), 1e-6 * Math.abs(b.get(i).loss()), "step " + i);
        }
        assertEquals(3, CheckpointStore.state(new CheckpointStore(two, 3).latest()).step);
        assertTrue(Files.isRegularFile(two.resolve("model").resolve(dev.mm4j.checkpoint.ModelBundle.WEIGHTS)));
    }

    @Test
    void masterNeedsTheSparkBuild() {
        java.io.StringWriter err = new java.io.StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setErr(new java.io.PrintWriter(err, true));
        int rc = cl.execute("finetune", "--data", tmp.toString(), "--master", "spark://127.0.0.1:7077", "--workers", "2");
        assertEquals(2, rc, err.toString());
        assertTrue(err.toString().startsWith("error: finetune --master runs from the Spark build"), err.toString());
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
