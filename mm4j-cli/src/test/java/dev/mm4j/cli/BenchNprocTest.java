package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mm4j bench --nproc 2} on a tiny FLAVA: two real rank processes (launcher + c10d) and the one-process row at
 * the same global batch, printed side by side with positive figures, and the all-reduce of the model's gradients.
 */
class BenchNprocTest {
    @TempDir Path tmp;

    @Test
    void refusesTheOptionsOfTheOtherBenches() {
        java.io.StringWriter err = new java.io.StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setErr(new java.io.PrintWriter(err, true));
        assertEquals(2, cl.execute("bench", "--nproc", "2", "--task", "pretraining"), err.toString());
        assertTrue(err.toString().contains("--nproc times the classification fine-tuning step in dynamic mode only"),
                err.toString());
        assertEquals(2, cl.execute("bench", "--nproc", "2", "--variants", "checkpointing"), err.toString());
        assertTrue(err.toString().contains("--variants takes default and keep"), err.toString());
    }

    @Test
    void printsTwoRanksBesideOneProcessWithTwoThreadsAndTheAllReduce() throws Exception {
        Path config = tmp.resolve("tiny.yaml");
        Files.writeString(config, String.join("\n", "image_size: 32", "patch_size: 16", "image_hidden_size: 32",
                "image_num_attention_heads: 2", "image_num_hidden_layers: 1", "image_intermediate_size: 64",
                "text_hidden_size: 32", "text_num_attention_heads: 2", "text_num_hidden_layers: 1",
                "text_intermediate_size: 64", "max_position_embeddings: 32", "multimodal_hidden_size: 32",
                "multimodal_num_attention_heads: 2", "multimodal_num_hidden_layers: 1",
                "multimodal_intermediate_size: 64", "text_and_image_proj_size: 16", "classifier_hidden_sizes: 32",
                "num_classes: 50", ""));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream old = System.out;
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = Main.commandLine().execute("bench", "--nproc", "2", "--config", config.toString(), "--repeats", "2",
                    "--precision", "fp32,bf16", "--question-tokens", "12", "--variants", "default,keep");
        } finally {
            System.setOut(old);
        }
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(0, rc, out);
        assertTrue(out.contains("launching 2 processes on 127.0.0.1"), out);
        assertFalse(out.contains("fp32-keep"), "keep is a bf16 variant: " + out);
        // bf16 rows where libtorch multiplies bfloat16 at speed; on an AVX2-only CPU the bench says it leaves them out
        boolean bf16 = dev.mm4j.nn.TorchOps.fastBf16(ai.djl.Device.cpu());
        assertEquals(!bf16, out.contains("bf16: left out, cpu() has no fast bfloat16 products"), out);
        for (String prec : bf16 ? new String[] {"fp32", "bf16", "bf16-keep"} : new String[] {"fp32"}) {
            String keep = prec.endsWith("-keep") ? " keep" : "";
            // setup, precision, batch, global 4, s/step, min s, samples/s, peak RSS of each process
            Matcher ranks = Pattern.compile("mm4j 2 ranks x 1 thread" + keep + "\\s+" + prec + "\\s+2/rank\\s+4\\s+([0-9.]+)\\s+"
                    + "([0-9.]+)\\s+([0-9.]+)\\s+([0-9.]+)G ([0-9.]+)G").matcher(out);
            assertTrue(ranks.find(), out);
            double median = Double.parseDouble(ranks.group(1));
            assertTrue(median > 0 && Double.parseDouble(ranks.group(2)) <= median, ranks.group());
            assertEquals(4 / median, Double.parseDouble(ranks.group(3)), 0.01 * 4 / median + 0.01, ranks.group());
            assertTrue(Double.parseDouble(ranks.group(4)) > 0.1 && Double.parseDouble(ranks.group(5)) > 0.1,
                    "each rank's peak RSS: " + ranks.group());
            Matcher one = Pattern.compile("mm4j 1 process x 2 threads" + keep + "\\s+" + prec + "\\s+2x2 accum\\s+4\\s+([0-9.]+)\\s+"
                    + "([0-9.]+)\\s+([0-9.]+)\\s+([0-9.]+)G").matcher(out);
            assertTrue(one.find(), out);
            assertTrue(Double.parseDouble(one.group(1)) > 0 && Double.parseDouble(one.group(4)) > 0.1, one.group());
        }
        Matcher reduce = Pattern.compile("all-reduce \\(average\\) of ([0-9,]+) floats .* between 2 processes").matcher(out);
        assertTrue(reduce.find(), out);
        long floats = Long.parseLong(reduce.group(1).replace(",", ""));
        Matcher params = Pattern.compile("FLAVA for classification \\(([0-9,]+) parameters").matcher(out);
        assertTrue(params.find(), out);
        assertEquals(Long.parseLong(params.group(1).replace(",", "")), floats, "every parameter's gradient shape");
        Matcher gbs = Pattern.compile("mm4j c10d gloo \\(the gradients' shapes, 25 MB buckets\\)\\s+([0-9.]+)\\s+([0-9.]+)"
                + "\\s+([0-9.]+)\\s+([0-9.]+)").matcher(out);
        assertTrue(gbs.find(), out);
        double best = Double.parseDouble(gbs.group(1));
        double mean = Double.parseDouble(gbs.group(2));
        assertTrue(best > 0 && best <= mean + 1e-3, gbs.group());
        double gbPerS = Double.parseDouble(gbs.group(3)); // the bytes over the best time (printed to 0.1 ms)
        assertTrue(gbPerS >= floats * 4 / 1e9 / (best + 5e-5) - 0.005
                && gbPerS <= floats * 4 / 1e9 / Math.max(best - 5e-5, 1e-9) + 0.005, gbs.group());
    }
}
