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

/** {@code demo --task retrieval}: generation, contrastive training with the demo-retrieval preset, held-out recall. */
class DemoRetrievalTest {
    @TempDir Path tmp;

    @Test
    void trainsTheDemoModelForRetrievalAndPrintsTheHeldOutRecall() throws Exception {
        Run demo = run("demo", "--task", "retrieval", "--dir", tmp.toString(), "--train", "400", "--val", "40", "--steps", "3");
        String out = demo.out;
        assertEquals(0, demo.rc, out);
        assertTrue(out.contains("training: 3 steps"), out);
        Matcher m = Pattern.compile("R@1 ([0-9.]+)%\\s+R@5 ([0-9.]+)%\\s+\\((\\d+) queries over (\\d+) images").matcher(out);
        assertTrue(m.find(), out);
        assertTrue(Double.parseDouble(m.group(1)) <= Double.parseDouble(m.group(2)), m.group());
        assertEquals(m.group(3), m.group(4));
        assertTrue(Files.exists(tmp.resolve("retrieval/model/bundle.json")));
        String result = Files.readString(tmp.resolve("retrieval-result.txt"));
        Matcher saved = Pattern.compile("recall_at_1 ([0-9.]+)\nrecall_at_5 ([0-9.]+)\n").matcher(result);
        assertTrue(saved.find(), result);
        // the file's fractions are the printed percentages (to the printed 0.1%)
        assertEquals(Double.parseDouble(m.group(1)), 100 * Double.parseDouble(saved.group(1)), 0.05, result + " vs " + m.group());
        assertEquals(Double.parseDouble(m.group(2)), 100 * Double.parseDouble(saved.group(2)), 0.05, result + " vs " + m.group());
        assertFalse(Files.exists(tmp.resolve("run")), "the VQA run's folder is not touched");
        // the COCO-style recall table of the held-out captions, and evaluate --task retrieval prints the same
        Matcher coco = Pattern.compile("image -> text\\s+([0-9.]+)%\\s+([0-9.]+)%\\s+([0-9.]+)%\\s+(\\d+)\n\\s*"
                + "text -> image\\s+([0-9.]+)%\\s+([0-9.]+)%\\s+([0-9.]+)%\\s+(\\d+)").matcher(out);
        assertTrue(coco.find(), out);
        Run ev = run("evaluate", "--task", "retrieval", "--model", tmp.resolve("retrieval/model").toString(), "--data",
                tmp.resolve("data/annotations/captions_val.json").toString(), "--images", tmp.resolve("data").toString());
        assertEquals(0, ev.rc, ev.out);
        Matcher again = coco.pattern().matcher(ev.out);
        assertTrue(again.find(), ev.out);
        for (int g = 1; g <= 8; g++) {
            assertEquals(coco.group(g), again.group(g), ev.out);
        }
        assertTrue(Double.parseDouble(coco.group(1)) <= Double.parseDouble(coco.group(2)), coco.group());
        // an unknown task is a usage error
        assertEquals(2, Main.commandLine().execute("demo", "--task", "ranking", "--dir", tmp.toString()));

        // the printed next steps work: index the held-out captions, search them by HNSW and exactly
        Path captions = tmp.resolve("data/captions_val.jsonl");
        String query = Files.readAllLines(captions).get(0).replaceAll(".*\"text\":\"([^\"]*)\".*", "$1");
        assertEquals(0, run("index", "--model", tmp.resolve("retrieval/model").toString(), "--images", captions.toString(),
                "--out", tmp.resolve("index").toString()).rc);
        Run hnsw = run("search", "--index", tmp.resolve("index").toString(), query, "-k", "4");
        Run exact = run("search", "--index", tmp.resolve("index").toString(), query, "-k", "4", "--exact");
        Run few = run("search", "--index", tmp.resolve("index").toString(), query, "-k", "4", "--candidates", "4");
        assertEquals(0, hnsw.rc + exact.rc + few.rc, hnsw.out + exact.out + few.out);
        assertEquals(4, exact.out.lines().count(), exact.out);
        // on a few dozen images the graph search finds the exact ranking
        assertEquals(exact.out, hnsw.out);
        assertEquals(2, run("search", "--index", tmp.resolve("index").toString(), query, "--candidates", "0").rc);
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
