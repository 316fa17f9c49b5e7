package dev.mm4j.parquet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Batch;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.Padding;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.TextVqaJsonReader;
import dev.mm4j.data.TextVqaSplit;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A synthetic training set with ~10% deterministic damage, read through the real readers
 * ({@link TextVqaDatasets#open}, json and parquet) and the {@link DataLoader}: exactly the damaged records
 * are skipped, counted by reason, and nothing hangs or throws.
 *
 * <p>The expected numbers are computed here from the damage plan and the raw json (an image can carry one or
 * two questions, so damaging an image file removes every record that uses it); the loader's skip order is
 * empty question, then no answers, then the image, and the plan damages questions/answers only on records
 * whose image is intact, so each damaged record has exactly one reason.
 */
class DatasetCorruptionTest {
    static final int RECORDS = 1000;
    static final Duration LIMIT = Duration.ofSeconds(20);
    static final ImageTransform SMALL = new ImageTransform(32, 32, true);

    @TempDir static Path tmp;
    static Path damaged; // official layout, damaged images and damaged json records
    static Path origJson; // the undamaged json of the same set (its images are the damaged ones)
    static QuestionTokenizer tok;
    static AnswerVocab vocab;

    /** Question ids in file order, of the undamaged json. */
    static final List<Long> allIds = new ArrayList<>();
    /** question id -> why the loader must skip it (absent: usable). */
    static final Map<Long, String> loaderReason = new HashMap<>();
    /** question ids the json reader must skip as malformed. */
    static final Set<Long> malformed = new HashSet<>();
    /** question ids whose image cannot be read at all (missing, a folder): the parquet writer leaves them out. */
    static final Set<Long> unreadableImage = new HashSet<>();
    /** question ids whose image bytes exist but do not decode. */
    static final Set<Long> undecodableImage = new HashSet<>();

    @BeforeAll
    static void generateAndDamage() throws Exception {
        tok = QuestionTokenizer.bertBaseUncased(32);
        damaged = tmp.resolve("damaged");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(damaged, RECORDS, 0, 0, 2024L, 64, 48, 2));
        vocab = AnswerVocab.load(damaged.resolve("answers.txt"));
        Path json = damaged.resolve(TextVqaSplit.TRAIN.officialJsonName());
        origJson = tmp.resolve("orig").resolve(TextVqaSplit.TRAIN.officialJsonName());
        Files.createDirectories(origJson.getParent());
        Files.copy(json, origJson);

        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = (ObjectNode) mapper.readTree(json.toFile());
        ArrayNode data = (ArrayNode) root.get("data");
        assertEquals(RECORDS, data.size());
        Map<String, List<Long>> byImage = new LinkedHashMap<>(); // image id -> its question ids, first-use order
        for (JsonNode r : data) {
            long qid = r.get("question_id").asLong();
            allIds.add(qid);
            byImage.computeIfAbsent(r.get("image_id").asText(), k -> new ArrayList<>()).add(qid);
        }

        // 1. image files, by position i among the distinct images
        Path images = damaged.resolve(TextVqaSplit.TRAIN.imagesDir());
        Random rnd = new Random(99);
        int i = 0;
        for (Map.Entry<String, List<Long>> e : byImage.entrySet()) {
            Path file = images.resolve(e.getKey() + ".jpg");
            String reason = null;
            if (i == 5) { // a folder where the file should be: exists, cannot be read
                Files.delete(file);
                Files.createDirectory(file);
                reason = "image unreadable";
            } else if (i == 44) { // empty file
                Files.write(file, new byte[0]);
                reason = "image undecodable";
            } else if (i % 50 == 2 || i == 41) { // truncated to a few bytes (still starts with the JPEG marker)
                byte[] b = Files.readAllBytes(file);
                Files.write(file, Arrays.copyOf(b, i == 41 ? 3 : 12));
                reason = "image undecodable";
            } else if (i % 50 == 24) { // a real JPEG cut to a third of its bytes: decodable in part, but truncated
                byte[] b = Files.readAllBytes(file);
                Files.write(file, Arrays.copyOf(b, b.length / 3));
                reason = "image undecodable";
            } else if (i % 50 == 9) { // random bytes (first two fixed so no image format's magic can match)
                byte[] b = new byte[400];
                rnd.nextBytes(b);
                b[0] = (byte) 0xAB;
                b[1] = (byte) 0xCD;
                Files.write(file, b);
                reason = "image undecodable";
            } else if (i % 50 == 17) { // a text file
                Files.writeString(file, "this is not an image, it is text\n", StandardCharsets.UTF_8);
                reason = "image undecodable";
            } else if (i % 50 == 33) { // deleted
                Files.delete(file);
                reason = "image file missing";
            }
            if (reason != null) {
                for (long qid : e.getValue()) {
                    loaderReason.put(qid, reason);
                    (reason.equals("image undecodable") ? undecodableImage : unreadableImage).add(qid);
                }
            }
            i++;
        }

        // 2. json records, by ordinal k among records whose image is intact
        int k = 0;
        for (JsonNode n : data) {
            ObjectNode r = (ObjectNode) n;
            long qid = r.get("question_id").asLong();
            if (loaderReason.containsKey(qid)) {
                continue;
            }
            switch (k) {
                case 10, 110, 210, 310 -> {
                    r.put("question", "");
                    loaderReason.put(qid, "empty question");
                }
                case 410 -> {
                    r.put("question", "   ");
                    loaderReason.put(qid, "empty question");
                }
                case 60, 160, 260, 360, 460 -> {
                    r.putArray("answers");
                    loaderReason.put(qid, "no answers");
                }
                case 500 -> {
                    r.put("question_id", "not-a-number");
                    malformed.add(qid);
                }
                case 700 -> {
                    r.remove("image_id");
                    malformed.add(qid);
                }
                default -> { }
            }
            k++;
        }
        assertTrue(k > 700, "too few intact records for the plan: " + k);
        mapper.writeValue(json.toFile(), root);
    }

    @AfterAll
    static void closeTokenizer() {
        tok.close();
    }

    static DataLoader loader(Iterable<VqaSample> source) {
        return DataLoader.builder(source).transform(SMALL).tokenizer(tok).vocab(vocab).batchSize(16).workers(2)
                .padding(Padding.DYNAMIC).requireAnswers(true).build();
    }

    /** One epoch: the question ids delivered, in order; checks each batch's shapes on the way. */
    static List<Long> epoch(DataLoader dl) {
        List<Long> ids = new ArrayList<>();
        for (Batch b : dl) {
            assertTrue(b.size() >= 1 && b.size() <= 16);
            assertEquals(b.size() * 3 * 32 * 32, b.images().length);
            assertEquals(b.size() * b.seqLen(), b.inputIds().length);
            assertEquals(b.size(), b.labels().length);
            b.samples().forEach(s -> ids.add(s.questionId()));
        }
        return ids;
    }

    static Map<String, Integer> count(Set<Long> ids) {
        Map<String, Integer> out = new TreeMap<>();
        for (long id : ids) {
            out.merge(loaderReason.get(id), 1, Integer::sum);
        }
        return out;
    }

    @Test
    void jsonSetSkipsExactlyTheDamagedRecords() throws Exception {
        Map<String, Integer> expectedReasons = count(loaderReason.keySet());
        List<Long> expectedIds = allIds.stream().filter(id -> !loaderReason.containsKey(id) && !malformed.contains(id)).toList();
        int damagedTotal = loaderReason.size() + malformed.size();
        System.out.printf("damaged: %d of %d records; json reader skips %d; loader skips %d %s; delivered %d%n",
                damagedTotal, RECORDS, malformed.size(), loaderReason.size(), expectedReasons, expectedIds.size());
        // the plan is ~10% and touches every reason
        assertTrue(damagedTotal >= 80 && damagedTotal <= 130, "damaged " + damagedTotal);
        assertEquals(Set.of("empty question", "no answers", "image file missing", "image unreadable", "image undecodable"),
                expectedReasons.keySet());
        assertEquals(5, expectedReasons.get("empty question"));
        assertEquals(5, expectedReasons.get("no answers"));
        assertEquals(2, malformed.size());
        assertEquals(RECORDS - damagedTotal, expectedIds.size());

        assertTimeoutPreemptively(LIMIT, () -> {
            try (VqaDataset ds = TextVqaDatasets.open(damaged, "train")) {
                assertInstanceOf(TextVqaJsonReader.class, ds);
                try (DataLoader dl = loader(ds)) {
                    List<Long> got = epoch(dl);
                    assertEquals(expectedIds, got);
                    assertEquals(RECORDS - damagedTotal, got.size());
                    assertEquals(loaderReason.size(), dl.skipped());
                    assertEquals(expectedReasons, dl.skippedByReason());
                    assertEquals(malformed.size(), ds.skippedCount());
                    // a second epoch skips the same, and the counts are per epoch, not cumulative
                    assertEquals(expectedIds, epoch(dl));
                    assertEquals(expectedReasons, dl.skippedByReason());
                    assertEquals(malformed.size(), ds.skippedCount());
                }
            }
        });
    }

    @Test
    void parquetSetSkipsTheSameCorruptImages() throws Exception {
        Path hub = tmp.resolve("hub");
        Path shard = hub.resolve("train-00000-of-00001.parquet");
        List<Long> expectedRows = allIds.stream().filter(id -> !unreadableImage.contains(id)).toList();
        List<Long> expectedIds = expectedRows.stream().filter(id -> !undecodableImage.contains(id)).toList();
        assertTimeoutPreemptively(LIMIT, () -> {
            // the undamaged json with the damaged images, converted: unreadable images are left out, corrupt bytes kept
            try (TextVqaJsonReader json = new TextVqaJsonReader(origJson, damaged.resolve(TextVqaSplit.TRAIN.imagesDir()))) {
                assertEquals(expectedRows.size(), TextVqaParquetWriter.write(shard, json, 64));
                assertEquals(0, json.skippedCount());
            }
            try (VqaDataset ds = TextVqaDatasets.open(hub, "train")) {
                assertInstanceOf(TextVqaParquetReader.class, ds);
                assertEquals(expectedRows.size(), ds.sizeIfCheap().getAsLong());
                try (DataLoader dl = loader(ds)) {
                    List<Long> got = epoch(dl);
                    assertEquals(expectedIds, got);
                    assertEquals(undecodableImage.size(), dl.skipped());
                    assertEquals(Map.of("image undecodable", undecodableImage.size()), dl.skippedByReason());
                    assertEquals(0, ds.skippedCount());
                }
            }
        });
        System.out.printf("parquet: %d rows written (%d left out: image unreadable/missing), %d skipped as undecodable, %d delivered%n",
                expectedRows.size(), unreadableImage.size(), undecodableImage.size(), expectedIds.size());
    }

    @Test
    void noImagesAtAllIsOneClearErrorQuickly() throws Exception {
        // the same json, but no train_images folder beside it
        Path bare = tmp.resolve("no-images");
        Files.createDirectories(bare);
        Files.copy(origJson, bare.resolve(TextVqaSplit.TRAIN.officialJsonName()));
        assertTimeoutPreemptively(LIMIT, () -> {
            try (VqaDataset ds = TextVqaDatasets.open(bare, "train"); DataLoader dl = loader(ds)) {
                Iterator<Batch> it = dl.iterator();
                IllegalStateException e = assertThrows(IllegalStateException.class, it::hasNext);
                String m = e.getMessage();
                assertTrue(m.contains("none of the " + RECORDS + " records of epoch 0"), m);
                assertTrue(m.contains("image file missing=" + RECORDS), m);
                assertTrue(m.contains(bare.resolve("train_images").toString()), m);
                assertTrue(m.contains(bare.resolve(TextVqaSplit.TRAIN.officialJsonName()).toString()), m); // the dataset
                assertFalse(it.hasNext()); // one exception, then the epoch is over
                assertEquals(Map.of("image file missing", RECORDS), dl.skippedByReason());
            }
        });
    }

    @Test
    void jsonAndParquetLoadersGiveIdenticalBatches() throws Exception {
        Path clean = tmp.resolve("clean");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(clean, 60, 0, 0, 5L, 64, 48, 2));
        Path hub = tmp.resolve("clean-hub");
        try (VqaDataset json = TextVqaDatasets.open(clean, "train")) {
            assertEquals(60, TextVqaParquetWriter.write(hub.resolve("train-00000-of-00001.parquet"), json, 7));
        }
        assertTimeoutPreemptively(LIMIT, () -> {
            try (VqaDataset json = TextVqaDatasets.open(clean, "train"); VqaDataset pq = TextVqaDatasets.open(hub, "train");
                    DataLoader a = loader(json); DataLoader b = loader(pq)) {
                assertInstanceOf(TextVqaJsonReader.class, json);
                assertInstanceOf(TextVqaParquetReader.class, pq);
                Iterator<Batch> ia = a.iterator();
                Iterator<Batch> ib = b.iterator();
                for (int n = 0; n < 3; n++) {
                    Batch x = ia.next();
                    Batch y = ib.next();
                    assertEquals(16, x.size());
                    assertEquals(n, x.index());
                    assertEquals(x.index(), y.index());
                    assertEquals(x.samples().stream().map(VqaSample::questionId).toList(),
                            y.samples().stream().map(VqaSample::questionId).toList());
                    assertEquals(x.seqLen(), y.seqLen());
                    assertArrayEquals(x.inputIds(), y.inputIds(), "input ids of batch " + n);
                    assertArrayEquals(x.labels(), y.labels(), "labels of batch " + n);
                    assertArrayEquals(x.images(), y.images(), "image floats of batch " + n);
                    assertTrue(Arrays.stream(x.labels()).anyMatch(l -> l != 0), "labels are real vocab indices");
                }
            }
        });
    }
}
