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

/** Labelled text from the command line: synth --task text, finetune on it, evaluate, predict a pair. */
class LabelledTasksCommandTest {
    @TempDir Path tmp;

    static final String TINY = "image_size: 32\npatch_size: 8\nimage_hidden_size: 32\nimage_num_attention_heads: 2\n"
            + "image_num_hidden_layers: 1\nimage_intermediate_size: 64\ntext_hidden_size: 32\ntext_num_attention_heads: 2\n"
            + "text_num_hidden_layers: 1\ntext_intermediate_size: 64\nmax_position_embeddings: 40\n"
            + "multimodal_hidden_size: 32\nmultimodal_num_attention_heads: 2\nmultimodal_num_hidden_layers: 1\n"
            + "multimodal_intermediate_size: 64\ntext_and_image_proj_size: 16\nclassifier_hidden_sizes: 32\n";

    @Test
    void synthFinetuneEvaluateAndPredictOnGlueStyleSentencePairs() throws Exception {
        Path data = tmp.resolve("pairs");
        Run synth = run("synth", "--task", "text", "--out", data.toString(), "--train", "32", "--val", "12", "--test", "4");
        assertEquals(0, synth.rc, synth.out);
        assertTrue(Files.readString(data.resolve("dev.tsv")).startsWith("index\tquestion\tsentence\tlabel\n"));
        Path yaml = tmp.resolve("tiny.yaml");
        Files.writeString(yaml, TINY);
        Path out = tmp.resolve("run");
        Run ft = run("finetune", "--data", data.toString(), "--checkpoint", "none", "--model-config", yaml.toString(),
                "--max-steps", "3", "--batch-size", "8", "--out", out.toString(), "--threads", "1");
        assertEquals(0, ft.rc, ft.out);
        assertEquals("entailment\nnot_entailment\n", Files.readString(out.resolve("classes.txt")));
        Path preds = tmp.resolve("p.jsonl");
        Run ev = run("evaluate", "--model", out.resolve("model").toString(), "--data", data.toString(), "--split", "val",
                "--predictions", preds.toString());
        assertEquals(0, ev.rc, ev.out);
        Matcher m = Pattern.compile("accuracy ([0-9.]+)%, macro-F1 ([0-9.]+)% over 12 examples").matcher(ev.out);
        assertTrue(m.find(), ev.out);
        assertEquals(12, Files.readAllLines(preds).size());
        // the run's own validation scored the same predictions
        assertEquals(Files.readString(out.resolve("predictions.jsonl")), Files.readString(preds));
        Run p = run("predict", "--model", out.resolve("model").toString(), "--text", "where is the bridge?",
                "--text-pair", "the bridge is paris.");
        assertEquals(0, p.rc, p.out);
        Matcher probs = Pattern.compile("(entailment|not_entailment)\\s+([0-9.]+)%").matcher(p.out);
        double sum = 0;
        int n = 0;
        while (probs.find()) {
            sum += Double.parseDouble(probs.group(2));
            n++;
        }
        assertEquals(2, n, p.out);
        assertEquals(100, sum, 0.02, p.out);
        // the text head needs a text
        assertNotEquals(0, run("predict", "--model", out.resolve("model").toString(), "--image", yaml.toString()).rc);
    }

    private record Run(int rc, String out) {}

    private static Run run(String... args) {
        PrintStream stdout = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(buf, true));
            return new Run(Main.commandLine().execute(args), buf.toString());
        } finally {
            System.setOut(stdout);
        }
    }
}
