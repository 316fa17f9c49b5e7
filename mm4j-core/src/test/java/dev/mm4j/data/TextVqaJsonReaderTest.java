package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextVqaJsonReaderTest {
    @TempDir Path dir;

    private static final String GOOD = """
            {"question": "what does the sign say?", "image_id": "abc", "answers": ["stop","stop","stop","stop","stop","stop","stop","stpo","stop","unanswerable"],
             "question_id": 7, "image_classes": ["Street sign"], "flickr_original_url": "https://x/o.jpg", "flickr_300k_url": "https://x/z.jpg",
             "image_width": 1024, "image_height": 768, "question_tokens": ["what","does","the","sign","say"], "set_name": "train"}""";

    private Path write(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content);
        return p;
    }

    private static List<VqaSample> readAll(VqaDataset ds) {
        List<VqaSample> out = new ArrayList<>();
        ds.forEach(out::add);
        return out;
    }

    @Test
    void readsRecordsWithHeaderAfterData() throws IOException {
        // "data" before the header fields, and a nested header value that must be skipped
        Path f = write("TextVQA_0.5.1_train.json", "{\"meta\": {\"a\": [1, {\"data\": 2}]}, \"data\": [" + GOOD + "], \"dataset_type\": \"train\"}");
        try (TextVqaJsonReader r = new TextVqaJsonReader(f, dir.resolve("train_images"))) {
            List<VqaSample> all = readAll(r);
            assertEquals(1, all.size());
            VqaSample s = all.get(0);
            assertEquals(7L, s.questionId());
            assertEquals("what does the sign say?", s.question());
            assertEquals("abc", s.imageId());
            assertEquals(10, s.answers().size());
            assertEquals("stpo", s.answers().get(7));
            assertEquals(dir.resolve("train_images").resolve("abc.jpg"), ((VqaSample.FileImage) s.image()).path());
            assertEquals(1024, s.extras().get("image_width"));
            assertEquals(List.of("Street sign"), s.extras().get("image_classes"));
            assertEquals(List.of("image_classes", "flickr_original_url", "flickr_300k_url", "image_width", "image_height",
                    "question_tokens", "set_name"), new ArrayList<>(s.extras().keySet()));
            assertEquals("TextVQA_0.5.1_train.json record 0", s.origin());
            assertEquals(0, r.skippedCount());
        }
    }

    @Test
    void malformedRecordsAreSkippedAndCounted() throws IOException {
        String records = String.join(",",
                GOOD,
                "{\"image_id\": \"x\", \"question_id\": 1, \"answers\": []}",                      // 1: no question
                "{\"question\": \"q?\", \"question_id\": 2}",                                      // 2: no image_id
                "{\"question\": 5, \"image_id\": \"x\", \"question_id\": 3}",                      // 3: question not a string
                "{\"question\": \"q?\", \"image_id\": \"x\", \"question_id\": \"four\"}",          // 4: question_id not an int
                "{\"question\": \"q?\", \"image_id\": \"x\", \"question_id\": 5, \"answers\": \"a\"}", // 5: answers not a list
                "[1, 2]",                                                                          // 6: not an object
                GOOD.replace("\"question_id\": 7", "\"question_id\": 8"));
        Path f = write("TextVQA_0.5.1_val.json", "{\"data\": [" + records + "]}");
        try (TextVqaJsonReader r = new TextVqaJsonReader(f, dir)) {
            List<VqaSample> all = readAll(r);
            assertEquals(List.of(7L, 8L), all.stream().map(VqaSample::questionId).toList());
            assertEquals("TextVQA_0.5.1_val.json record 7", all.get(1).origin());
            assertEquals(6, r.skippedCount());
            assertEquals(6, r.skippedCount()); // stable after the pass
            assertEquals(2, r.size());        // a second pass
        }
    }

    @Test
    void testSplitWithoutAnswers() throws IOException {
        Path f = write("TextVQA_0.5.1_test.json", "{\"dataset_type\": \"test\", \"data\": ["
                + "{\"question\": \"what?\", \"image_id\": \"t1\", \"question_id\": 1, \"set_name\": \"test\"},"
                + "{\"question\": \"what?\", \"image_id\": \"t2\", \"question_id\": 2, \"answers\": []},"
                + "{\"question\": \"what?\", \"image_id\": \"t3\", \"question_id\": 3, \"answers\": null}]}");
        try (VqaDataset ds = TextVqaDatasets.open(f, null)) {
            List<VqaSample> all = readAll(ds);
            assertEquals(3, all.size());
            all.forEach(s -> assertTrue(s.answers().isEmpty()));
            assertEquals(Map.of("set_name", "test"), all.get(0).extras());
            assertEquals(dir.resolve("test_images").resolve("t1.jpg").toAbsolutePath(),
                    ((VqaSample.FileImage) all.get(0).image()).path().toAbsolutePath());
            assertEquals(0, ds.skippedCount());
        }
    }

    @Test
    void nonJsonFileFailsNamingTheFile() throws IOException {
        Path f = write("TextVQA_0.5.1_train.json", "PK\u0003\u0004 this is a zip, not json");
        try (TextVqaJsonReader r = new TextVqaJsonReader(f, dir)) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class, r::iterator);
            assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
            IOException checked = assertThrows(IOException.class, r::checkReadable);
            assertTrue(checked.getMessage().contains(f.toString()), checked.getMessage());
        }
    }

    @Test
    void fileWithoutDataArrayFails() throws IOException {
        for (String content : List.of("{\"dataset_type\": \"train\"}", "[1, 2, 3]", "{\"data\": {\"x\": 1}}", "")) {
            Path f = write("bad.json", content);
            try (TextVqaJsonReader r = new TextVqaJsonReader(f, dir)) {
                IOException e = assertThrows(IOException.class, r::checkReadable, content);
                assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
            }
        }
    }

    @Test
    void truncatedFileFailsDuringIteration() throws IOException {
        Path f = write("TextVQA_0.5.1_train.json", "{\"data\": [" + GOOD + ", " + GOOD.substring(0, 40));
        try (TextVqaJsonReader r = new TextVqaJsonReader(f, dir); VqaDataset.SampleIterator it = r.iterator()) {
            assertEquals(7L, it.next().questionId());
            UncheckedIOException e = assertThrows(UncheckedIOException.class, it::hasNext);
            assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        }
    }
}
