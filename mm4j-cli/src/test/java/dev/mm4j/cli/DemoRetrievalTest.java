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
        PrintStream stdout = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int rc;
        try {
            System.setOut(new PrintStream(buf, true));
            rc = Main.commandLine().execute("demo", "--task", "retrieval", "--dir", tmp.toString(), "--train", "400", "--val",
                    "40", "--steps", "3");
        } finally {
            System.setOut(stdout);
        }
        String out = buf.toString();
        assertEquals(0, rc, out);
        assertTrue(out.contains("training: 3 steps"), out);
        Matcher m = Pattern.compile("R@1 ([0-9.]+)%\\s+R@5 ([0-9.]+)%\\s+\\((\\d+) queries over (\\d+) images").matcher(out);
        assertTrue(m.find(), out);
        assertTrue(Double.parseDouble(m.group(1)) <= Double.parseDouble(m.group(2)), m.group());
        assertEquals(m.group(3), m.group(4));
        assertTrue(Files.exists(tmp.resolve("retrieval/model/bundle.json")));
        String result = Files.readString(tmp.resolve("retrieval-result.txt"));
        assertTrue(result.startsWith(String.format(java.util.Locale.ROOT, "recall_at_1 %.4f",
                Double.parseDouble(m.group(1)) / 100)), result + " vs " + m.group());
        assertFalse(Files.exists(tmp.resolve("run")), "the VQA run's folder is not touched");
        // an unknown task is a usage error
        assertEquals(2, Main.commandLine().execute("demo", "--task", "ranking", "--dir", tmp.toString()));
    }
}
