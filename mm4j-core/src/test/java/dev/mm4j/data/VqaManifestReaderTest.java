package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The caller's own data: JSON Lines and CSV manifests, the VqaSource interface, and the vocabulary built from it. */
public class VqaManifestReaderTest {
    @TempDir
    static Path tmp;
    static Path data;

    @BeforeAll
    static void generate() throws Exception {
        data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 24, 6, 2, 3, 64, 48, 1));
    }

    static List<VqaSample> all(VqaDataset ds) {
        List<VqaSample> out = new ArrayList<>();
        ds.forEach(out::add);
        return out;
    }

    /** The rows of a TextVQA split as manifest rows: image paths relative to {@code dir}. */
    static List<Map<String, Object>> rows(Path textVqa, String split, Path dir) throws IOException {
        List<Map<String, Object>> rows = new ArrayList<>();
        try (VqaDataset ds = TextVqaDatasets.open(textVqa, split)) {
            for (VqaSample s : ds) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("image", dir.toAbsolutePath().relativize(((VqaSample.FileImage) s.image()).path().toAbsolutePath())
                        .toString().replace('\\', '/'));
                r.put("question", s.question());
                r.put("answers", s.answers());
                r.put("question_id", s.questionId());
                rows.add(r);
            }
        }
        return rows;
    }

    /** Writes TextVQA-format data as manifests beside it: {@code train.jsonl}, {@code val.csv}. */
    public static Path writeManifests(Path textVqa, Path dir) throws IOException {
        Files.createDirectories(dir);
        ObjectMapper json = new ObjectMapper();
        StringBuilder jsonl = new StringBuilder();
        for (Map<String, Object> r : rows(textVqa, "train", dir)) {
            jsonl.append(json.writeValueAsString(r)).append('\n');
        }
        Files.writeString(dir.resolve("train.jsonl"), jsonl);
        StringBuilder csv = new StringBuilder("question,image,answers,question_id\n");
        for (Map<String, Object> r : rows(textVqa, "val", dir)) {
            @SuppressWarnings("unchecked")
            List<String> answers = (List<String>) r.get("answers");
            csv.append('"').append(((String) r.get("question")).replace("\"", "\"\"")).append("\",").append(r.get("image"))
                    .append(',').append(String.join("|", answers)).append(',').append(r.get("question_id")).append('\n');
        }
        Files.writeString(dir.resolve("val.csv"), csv);
        return dir;
    }

    private static String stderrOf(Callable<?> body) throws Exception {
        PrintStream old = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            body.call();
        } finally {
            System.setErr(old);
        }
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void manifestsWrittenFromTextVqaReadBackAsTheSameQuestionsWithImagesRelativeToTheManifest() throws Exception {
        Path dir = writeManifests(data, tmp.resolve("manifests"));
        for (String split : List.of("train", "val")) {
            List<VqaSample> official;
            try (VqaDataset ds = TextVqaDatasets.open(data, split)) {
                official = all(ds);
            }
            try (VqaDataset ds = TextVqaDatasets.open(dir, split)) {
                assertInstanceOf(VqaManifestReader.class, ds);
                assertTrue(ds.describe().contains(split.equals("train") ? "train.jsonl (JSON Lines manifest)" : "val.csv (CSV manifest)"),
                        ds.describe());
                List<VqaSample> mine = all(ds);
                assertEquals(official.size(), mine.size());
                assertEquals(split.equals("train") ? 24 : 6, mine.size());
                for (int i = 0; i < mine.size(); i++) {
                    VqaSample a = official.get(i);
                    VqaSample b = mine.get(i);
                    assertEquals(a.questionId(), b.questionId());
                    assertEquals(a.question(), b.question());
                    assertEquals(a.answers(), b.answers());
                    assertEquals(((VqaSample.FileImage) a.image()).path().toAbsolutePath().normalize(),
                            ((VqaSample.FileImage) b.image()).path().toAbsolutePath().normalize());
                    assertArrayEquals(a.image().readBytes(), b.image().readBytes());
                }
                assertEquals(0, ds.skippedCount());
            }
        }
        // a manifest file given directly is read whatever the split
        try (VqaDataset ds = TextVqaDatasets.open(dir.resolve("val.csv"), "train")) {
            assertEquals(6, ds.size());
        }
    }

    @Test
    void badJsonLinesRowsAreSkippedCountedAndNamedByLineAndField() throws Exception {
        Path f = tmp.resolve("bad/train.jsonl");
        Files.createDirectories(f.getParent());
        Files.writeString(f, String.join("\n",
                "{\"image\": \"a.jpg\", \"question\": \"what?\", \"answers\": [\"x\", \"y\"]}", // line 1: good, qid 1
                "{\"image\": \"b.jpg\", \"question\": \"what?\"", // 2: not JSON
                "[1, 2]", // 3: not an object
                "{\"question\": \"what?\", \"answers\": []}", // 4: no image
                "", // 5: blank, ignored
                "{\"image\": \"c.jpg\", \"question\": 7}", // 6: question not a string
                "{\"image\": \"d.jpg\", \"question\": \"q\", \"answers\": \"x\"}", // 7: answers not a list
                "{\"image\": \"e.jpg\", \"question\": \"q\", \"answers\": [\"x\", 3]}", // 8: a non-string answer
                "{\"image\": \"f.jpg\", \"question\": \"q\", \"question_id\": \"seven\"}", // 9: question_id not an integer
                "{\"image\": \"sub/g.png\", \"question\": \"q\", \"question_id\": 42, \"image_id\": \"G\"}", // 10: good
                "{\"image\": \"/abs/h.jpg\", \"question\": \"q\"}")); // 11: good, absolute
        List<VqaSample>[] read = new List[1];
        String log = stderrOf(() -> {
            try (VqaDataset ds = TextVqaDatasets.open(f, null)) {
                read[0] = all(ds);
                assertEquals(7, ds.skippedCount());
            }
            return null;
        });
        List<VqaSample> s = read[0];
        assertEquals(3, s.size());
        assertEquals(1, s.get(0).questionId(), "question_id defaults to the line number");
        assertEquals("a", s.get(0).imageId(), "image_id defaults to the path without extension");
        assertEquals(List.of("x", "y"), s.get(0).answers());
        assertEquals(f.getParent().toAbsolutePath().resolve("a.jpg"), ((VqaSample.FileImage) s.get(0).image()).path());
        assertEquals("train.jsonl line 1", s.get(0).origin());
        assertEquals(42, s.get(1).questionId());
        assertEquals("G", s.get(1).imageId());
        assertEquals(f.getParent().toAbsolutePath().resolve("sub/g.png"), ((VqaSample.FileImage) s.get(1).image()).path());
        assertEquals(List.of(), s.get(2).answers());
        assertEquals(Path.of("/abs/h.jpg"), ((VqaSample.FileImage) s.get(2).image()).path());
        assertTrue(log.contains(f + " line 2: skipped, not valid JSON: Unexpected end-of-input: expected close marker for Object\n"),
                log);
        for (String expected : List.of( " line 3: skipped, not a JSON object",
                " line 4: skipped, field 'image' is missing", " line 6: skipped, field 'question' is not a string",
                " line 7: skipped, field 'answers' is not a list", " line 8: skipped, field 'answers' holds a non-string",
                " line 9: skipped, field 'question_id' is not an integer", ": skipped 7 malformed row(s) of 10")) {
            assertTrue(log.contains(f + expected), expected + " in\n" + log);
        }
    }

    @Test
    void csvColumnsInAnyOrderQuotedCellsAndBadRows() throws Exception {
        Path f = tmp.resolve("csv/val.csv");
        Files.createDirectories(f.getParent());
        Files.writeString(f, "answers,image,question\n"
                + "yes|no|yes,img/1.jpg,\"is it red, or blue?\"\n" // line 2
                + "stop,img/2.jpg\n" // line 3: two cells
                + ",img/3.jpg,\"a question \"\"quoted\"\"\"\n" // line 4: no answers
                + "x,,q\n" // line 5: no image
                + "\"two\nlines\",img/6.jpg,q\n" // lines 6-7: an answer with a line break (quoted)
                + "go,img/8.jpg,q,extra\n"); // line 8: four cells
        List<VqaSample>[] read = new List[1];
        String log = stderrOf(() -> {
            try (VqaDataset ds = TextVqaDatasets.open(f.getParent(), "val")) {
                read[0] = all(ds);
                assertEquals(3, ds.skippedCount());
            }
            return null;
        });
        List<VqaSample> s = read[0];
        assertEquals(3, s.size(), log);
        assertEquals("is it red, or blue?", s.get(0).question());
        assertEquals(List.of("yes", "no", "yes"), s.get(0).answers());
        assertEquals(2, s.get(0).questionId(), "question_id defaults to the line number");
        assertEquals("a question \"quoted\"", s.get(1).question());
        assertEquals(List.of(), s.get(1).answers());
        assertEquals(List.of("two\nlines"), s.get(2).answers());
        assertTrue(log.contains(f + " line 3: skipped, 2 cells where the header has 3"), log);
        assertTrue(log.contains(f + " line 5: skipped, field 'image' is not a non-empty path"), log);
        assertTrue(log.contains(f + " line 8: skipped, 4 cells where the header has 3"), log);

        Path noHeader = tmp.resolve("csv/nohead.csv");
        Files.writeString(noHeader, "img/1.jpg,what?,yes\n");
        try (VqaDataset ds = TextVqaDatasets.open(noHeader, null)) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class, ds::iterator);
            assertEquals(noHeader + " is not a CSV manifest: the header row [img/1.jpg, what?, yes] has no 'image' column "
                    + "(expected image, question, answers)", e.getMessage());
        }
        Path other = tmp.resolve("csv/data.tsv");
        Files.writeString(other, "x");
        IOException e = assertThrows(IOException.class, () -> TextVqaDatasets.open(other, null));
        assertTrue(e.getMessage().contains(".jsonl / .csv (manifest)"), e.getMessage());
    }

    @Test
    void aCallersSourceIsReadOncePerPassAndItsUnusableRecordsAreSkippedAndNamed() throws Exception {
        VqaSample.ImageSource img = new VqaSample.BytesImage(new byte[] {1, 2, 3}, "k1");
        List<VqaSample> store = new ArrayList<>();
        store.add(VqaSample.of(1, "what?", List.of("a"), img));
        store.add(null);
        store.add(VqaSample.of(2, null, List.of("a"), img));
        store.add(VqaSample.of(3, "what?", null, img));
        store.add(VqaSample.of(4, "what?", List.of("b"), null));
        store.add(new VqaSample(5, "why?", "i5", List.of("c"), img, Map.of(), "row 5 of my table"));
        int[] opened = {0};
        int[] closed = {0};
        VqaDataset ds = VqaDataset.of("my-store", () -> {
            opened[0]++;
            return store.stream().onClose(() -> closed[0]++);
        });
        List<VqaSample>[] read = new List[1];
        String log = stderrOf(() -> {
            read[0] = all(ds);
            return null;
        });
        assertEquals(List.of(1L, 5L), read[0].stream().map(VqaSample::questionId).toList());
        assertEquals("my-store record 0", read[0].get(0).origin(), "the record number is the origin when none is given");
        assertEquals("k1", read[0].get(0).imageId());
        assertEquals("row 5 of my table", read[0].get(1).origin());
        assertEquals(4, ds.skippedCount());
        assertEquals(1, opened[0]);
        assertEquals(1, closed[0], "the source's stream is closed at the end of the pass");
        for (String expected : List.of("my-store record 1: skipped, the record is null",
                "my-store record 2: skipped, field 'question' is null", "my-store record 3: skipped, field 'answers' is null",
                "my-store record 4: skipped, field 'image' is null", "my-store: skipped 4 unusable record(s) of 6")) {
            assertTrue(log.contains(expected), expected + " in\n" + log);
        }
        assertEquals(2, ds.size());
        assertEquals(2, opened[0]);
        try (Stream<VqaSample> first = ds.stream()) {
            assertEquals(1, first.findFirst().orElseThrow().questionId());
        }
        assertEquals(3, closed[0], "an abandoned pass closes the source's stream");
        ds.close();
        assertThrows(IllegalStateException.class, ds::iterator);
    }

    @Test
    void theBuiltVocabularyIsMostFrequentFirstTiesInFirstSeenOrderWithUnknownOnLineZero() {
        VqaSample.ImageSource img = new VqaSample.BytesImage(new byte[0], "x");
        List<VqaSample> samples = List.of(
                VqaSample.of(1, "q", List.of("red", "blue", "red", "<unk>", ""), img),
                VqaSample.of(2, "q", List.of("green", "blue", "stop"), img),
                VqaSample.of(3, "q", List.of("stop", "red", "two\nlines", "go"), img));
        // red 3, blue 2, stop 2 (blue seen first), green 1, go 1
        AnswerVocab all = AnswerVocab.build(samples, 1, "test");
        assertEquals("<unk>\nred\nblue\nstop\ngreen\ngo\n", all.toText());
        assertEquals(0, all.indexOf("two\nlines"));
        AnswerVocab common = AnswerVocab.build(samples, 2, "test");
        assertEquals("<unk>\nred\nblue\nstop\n", common.toText());
        assertEquals(2, common.indexOf("blue"));
        assertEquals(0, common.indexOf("green"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AnswerVocab.build(samples, 4, "my data"));
        assertEquals("my data: no answer is given at least 4 time(s) (5 distinct answers); lower vocab_min_count", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> AnswerVocab.build(samples, 0, "my data"));
    }
}
