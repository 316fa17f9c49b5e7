package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code demo --task pretraining} on a small budget: generation, pretraining, both VQA arms, the side-by-side lines. */
class DemoPretrainingTest {
    @TempDir Path tmp;

    @Test
    void pretrainsThenFineTunesFromItAndFromScratchAndPrintsBoth() throws Exception {
        PrintStream stdout = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int rc;
        try {
            System.setOut(new PrintStream(buf, true));
            rc = Main.commandLine().execute("demo", "--task", "pretraining", "--dir", tmp.toString(), "--train", "200",
                    "--val", "40", "--pretrain-steps", "4", "--steps", "2");
        } finally {
            System.setOut(stdout);
        }
        String out = buf.toString();
        assertEquals(0, rc, out);
        assertTrue(out.contains("training: 4 steps, batch 32"), out);
        Matcher pre = Pattern.compile("from the pretrained encoders \\(4 pretraining steps\\): ([0-9.]+)%").matcher(out);
        Matcher scratch = Pattern.compile("from scratch: +([0-9.]+)%").matcher(out);
        assertTrue(pre.find() && scratch.find(), out);
        String result = Files.readString(tmp.resolve("pretraining-result.txt"));
        assertTrue(result.startsWith("pretrain_steps 4\nfinetune_steps 2\n"), result);
        Matcher saved = Pattern.compile("accuracy_pretrained ([0-9.]+)\naccuracy_scratch ([0-9.]+)\n").matcher(result);
        assertTrue(saved.find(), result);
        assertEquals(Double.parseDouble(pre.group(1)), 100 * Double.parseDouble(saved.group(1)), 0.005, result);
        assertEquals(Double.parseDouble(scratch.group(1)), 100 * Double.parseDouble(saved.group(2)), 0.005, result);
        // the VQA arm from the pretrained model loaded its encoders: only the new head was missing
        assertTrue(out.contains("missing 4 [classifier.model.0.bias, classifier.model.0.weight, classifier.model.3.bias, "
                + "classifier.model.3.weight]"), out);
        assertTrue(Files.exists(tmp.resolve("pretrain/model/model.safetensors")));
        assertTrue(Files.exists(tmp.resolve("vqa-scratch/model")));
    }
}
