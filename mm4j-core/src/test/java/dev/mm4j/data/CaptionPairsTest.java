package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Image-caption pairs from manifests, synth folders and TextVQA data. */
class CaptionPairsTest {
    @TempDir Path tmp;

    @Test
    void jsonLinesAndCsvManifestsResolveImagesAgainstTheirFolder() throws Exception {
        Files.createDirectories(tmp.resolve("img"));
        Files.write(tmp.resolve("img/a.jpg"), new byte[] {1});
        Files.write(tmp.resolve("img/b.jpg"), new byte[] {2});
        Files.writeString(tmp.resolve("pairs.jsonl"), "{\"image\": \"img/a.jpg\", \"text\": \"a red sign\"}\n\n"
                + "{\"image\": \"img/b.jpg\", \"text\": \"a blue sign\"}\n");
        Files.writeString(tmp.resolve("pairs.csv"), "text,image\n\"a red sign, small\",img/a.jpg\n");
        List<CaptionPairs.Pair> j = CaptionPairs.read(tmp.resolve("pairs.jsonl"), "train");
        assertEquals(2, j.size());
        assertEquals("a blue sign", j.get(1).text());
        assertEquals(tmp.resolve("img/b.jpg").toAbsolutePath().toString(), j.get(1).imageKey());
        List<CaptionPairs.Pair> c = CaptionPairs.read(tmp.resolve("pairs.csv"), "train");
        assertEquals("a red sign, small", c.get(0).text());
        assertArrayEquals(new byte[] {1}, c.get(0).image().readBytes());
    }

    @Test
    void aBadRecordIsNamedWithItsLineAndField() throws Exception {
        Files.write(tmp.resolve("a.jpg"), new byte[] {1});
        Files.writeString(tmp.resolve("m.jsonl"), "{\"image\": \"a.jpg\", \"text\": \"ok\"}\n{\"image\": \"a.jpg\"}\n");
        IOException e = assertThrows(IOException.class, () -> CaptionPairs.read(tmp.resolve("m.jsonl"), "train"));
        assertEquals("m.jsonl line 2: field 'text' is missing or empty", e.getMessage());
        Files.writeString(tmp.resolve("m.jsonl"), "{\"image\": \"nope.jpg\", \"text\": \"x\"}\n");
        e = assertThrows(IOException.class, () -> CaptionPairs.read(tmp.resolve("m.jsonl"), "train"));
        assertTrue(e.getMessage().startsWith("m.jsonl line 1: image ") && e.getMessage().endsWith("nope.jpg does not exist"),
                e.getMessage());
        Files.writeString(tmp.resolve("m.jsonl"), "not json\n");
        e = assertThrows(IOException.class, () -> CaptionPairs.read(tmp.resolve("m.jsonl"), "train"));
        assertTrue(e.getMessage().startsWith("m.jsonl line 1: not a JSON object"), e.getMessage());
    }

    @Test
    void synthWritesACaptionPerImageAndTextVqaGivesQuestionPlusMajorityAnswer() throws Exception {
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp, 12, 6, 0, 7, 64, 48, 1,
                SyntheticTextVqa.Look.DEMO));
        List<CaptionPairs.Pair> captions = CaptionPairs.read(tmp, "train");
        assertTrue(captions.get(0).text().matches("a (red|green|blue|yellow|white|black|orange|purple) sign with a white panel "
                + "that says [A-Z]+"), captions.get(0).text());
        try (VqaDataset ds = TextVqaDatasets.open(tmp, "train")) {
            assertTrue(captions.size() < ds.size(), "one caption per image, fewer than the questions");
            VqaSample first = ds.iterator().next();
            Path qa = tmp.resolve("questions");
            Files.createDirectories(qa);
            for (String f : List.of("TextVQA_0.5.1_train.json", "train_images")) {
                Files.move(tmp.resolve(f), qa.resolve(f));
            }
            CaptionPairs.Pair p = CaptionPairs.read(qa, "train").get(0);
            assertEquals(first.question() + " " + Labels.majority(first.answers()), p.text());
        }
    }
}
