package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.spark.SparkFixtures;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Spark build's command line: the core commands plus batch-predict, run embedded. */
class SparkMainTest {
    @TempDir
    Path out;

    static boolean hasGpu() {
        return ai.djl.engine.Engine.getInstance().getGpuCount() > 0;
    }

    static int run(ByteArrayOutputStream stdout, String... args) {
        PrintStream old = System.out;
        System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
        try {
            return Main.execute(args, new BatchPredictCommand(), new BenchSparkCommand());
        } finally {
            System.setOut(old);
        }
    }

    @Test
    void batchPredictRunsEmbeddedAndWritesBothFiles() throws Exception {
        SparkFixtures.Fixture f = SparkFixtures.get();
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        int rc = run(stdout, "batch-predict", "--model", f.bundle().toString(), "--data", f.data().toString(),
                "--split", "val", "--out", out.toString(), "--master", "local[2]", "--limit", "16", "--batch-size", "4");
        String text = stdout.toString(StandardCharsets.UTF_8);
        System.out.print(text);
        assertEquals(0, rc, text);
        // 16 questions, of which records 3 (empty question) and 10 (missing image) are bad
        assertTrue(text.contains("14 of 16 questions predicted on local[2]"), text);
        assertTrue(text.contains("VQA accuracy"), text);
        assertTrue(text.contains("2 questions skipped"), text);
        assertEquals(14, PredictionsWriter.read(out.resolve("predictions.json")).size());
        assertTrue(Files.isDirectory(out.resolve("predictions.parquet")));
    }

    @Test
    @org.junit.jupiter.api.condition.DisabledIf("hasGpu")
    void theCoreCommandsAreThereAndAWrongDeviceIsAUsageErrorInOneLine() throws Exception {
        SparkFixtures.Fixture f = SparkFixtures.get();
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        assertEquals(0, run(stdout, "--help"));
        String help = stdout.toString(StandardCharsets.UTF_8);
        assertTrue(help.contains("evaluate") && help.contains("batch-predict") && help.contains("bench-spark"), help);

        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream oldErr = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = run(new ByteArrayOutputStream(), "batch-predict", "--model", f.bundle().toString(), "--data",
                    f.data().toString(), "--out", out.toString(), "--master", "local[1]", "--device", "gpu");
        } finally {
            System.setErr(oldErr);
        }
        assertEquals(2, rc);
        String[] lines = err.toString(StandardCharsets.UTF_8).strip().split("\n");
        assertTrue(lines[0].startsWith("error: device gpu: the libtorch in use is CPU-only and sees no GPU; "), lines[0]);
        assertEquals("(set MM4J_DEBUG=1 for the stack trace)", lines[1]);
    }
}
