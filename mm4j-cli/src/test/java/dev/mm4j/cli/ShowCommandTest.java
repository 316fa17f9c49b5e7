package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ShowCommandTest {
    @TempDir Path tmp;

    @Test
    void writesPngAndHtml() throws Exception {
        Path data = tmp.resolve("synth");
        new CommandLine(new SynthCommand()).execute("--out", data.toString(), "--train", "5", "--val", "4", "--test", "2",
                "--width", "200", "--height", "150", "--seed", "3");
        VqaSample expected;
        try (VqaDataset ds = TextVqaDatasets.open(data, "val")) {
            expected = ds.stream().skip(2).findFirst().orElseThrow();
        }
        ShowCommand show = new ShowCommand();
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        show.stdout = new PrintStream(printed, true, StandardCharsets.UTF_8);
        Path out = tmp.resolve("show");
        int rc = new CommandLine(show).execute(data.toString(), "--split", "validation", "--index", "2", "--out", out.toString());
        assertEquals(0, rc);
        String text = printed.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains(expected.question()), text);
        assertTrue(text.contains("question_id " + expected.questionId()), text);
        assertTrue(text.contains(String.join(" | ", expected.answers())), text);
        assertTrue(text.contains(expected.imageId() + "  200x150"), text);

        BufferedImage png = ImageIO.read(out.resolve("sample-2.png").toFile());
        assertEquals(500, png.getWidth());
        assertEquals(500, png.getHeight());
        String html = Files.readString(out.resolve("sample-2.html"));
        assertTrue(html.contains(expected.question()), html);
        assertTrue(html.contains("src=\"sample-2.png\""), html);
        for (String a : expected.answers()) {
            assertTrue(html.contains("<li>" + ShowCommand.escape(a) + "</li>"), a);
        }
        try (var files = Files.list(out)) {
            assertEquals(2, files.count(), "no temp files left behind");
        }

        // past the end: an error, not a file
        rc = new CommandLine(show).execute(data.toString(), "--split", "val", "--index", "4", "--out", out.toString());
        assertNotEquals(0, rc);
        assertTrue(Files.notExists(out.resolve("sample-4.png")));
    }

    @Test
    void escapesHtml() {
        assertEquals("&lt;b&gt;Tom &amp; Jerry&#39;s &quot;cafe&quot;&lt;/b&gt;", ShowCommand.escape("<b>Tom & Jerry's \"cafe\"</b>"));
    }
}
