package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The launcher as a user runs it, in its own JVM (what it prints before any test code could start the engine). */
class MainTest {
    @TempDir Path tmp;

    @Test
    void startingTheEngineOnACpuMachineSaysNothingAboutGpus() throws Exception {
        Path data = Files.createDirectories(tmp.resolve("data"));
        Files.writeString(data.resolve("TextVQA_0.5.1_val.json"), "{\"data\": []}");
        Path log = tmp.resolve("out.txt");
        // evaluate starts the engine (DJL probes CUDA) before it finds that the model folder is missing
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "-Djava.awt.headless=true", Main.class.getName(),
                "evaluate", "--model", tmp.resolve("no-model").toString(), "--data", data.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        String out = Files.readString(log);
        assertEquals(1, p.exitValue(), out);
        assertTrue(out.contains("is not a model bundle"), out);
        // before: "WARN ai.djl.util.cuda.CudaUtils - Failed to detect GPU count: ..." twice on a machine with a CUDA
        // library but no usable GPU
        assertFalse(out.contains("GPU count"), out);
    }
}
