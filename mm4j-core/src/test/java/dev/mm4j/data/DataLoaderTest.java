package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DataLoaderTest {
    static QuestionTokenizer tok;
    static AnswerVocab vocab = AnswerVocab.fromText("<unk>\nyes\nno\nstop\n", "test vocab");
    static final ImageTransform SMALL = new ImageTransform(8, 8, false);
    @TempDir
    static Path dir;

    @BeforeAll
    static void open() throws IOException {
        tok = QuestionTokenizer.bertBaseUncased(16);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    static byte[] png(int seed) {
        BufferedImage img = new BufferedImage(12 + seed % 5, 10 + seed % 3, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(new Color((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256));
        g.fillRect(0, 0, img.getWidth(), img.getHeight());
        g.dispose();
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", bos);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bos.toByteArray();
    }

    static VqaSample sample(int i, String question, List<String> answers, VqaSample.ImageSource image) {
        return new VqaSample(i, question, "img" + i, answers, image, Map.of(), "test.json record " + i);
    }

    /** n good samples; half are files, half embedded bytes; question i has i%7 extra words. */
    static List<VqaSample> good(int n) throws IOException {
        List<VqaSample> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String q = "what does the sign say" + " sign".repeat(i % 7) + "?";
            List<String> answers = List.of(i % 3 == 0 ? "stop" : "yes", "no", i % 3 == 0 ? "stop" : "yes");
            VqaSample.ImageSource src;
            if (i % 2 == 0) {
                Path p = dir.resolve("img" + i + ".png");
                Files.write(p, png(i));
                src = new VqaSample.FileImage(p);
            } else {
                src = new VqaSample.BytesImage(png(i), "img" + i + ".png");
            }
            out.add(sample(i, q, answers, src));
        }
        return out;
    }

    static DataLoader.Builder loader(List<VqaSample> s) {
        return DataLoader.builder(s).transform(SMALL).tokenizer(tok).vocab(vocab).batchSize(4).workers(2).prefetch(3);
    }

    static List<Long> ids(Iterator<Batch> it) {
        List<Long> out = new ArrayList<>();
        it.forEachRemaining(b -> b.samples().forEach(s -> out.add(s.questionId())));
        return out;
    }

    @Test
    void fileOrderByDefaultAndContentsCorrect() throws IOException {
        List<VqaSample> s = good(10);
        try (DataLoader dl = loader(s).build()) {
            assertEquals(3, dl.batchesPerEpoch());
            List<Batch> batches = new ArrayList<>();
            dl.iterator().forEachRemaining(batches::add);
            assertEquals(List.of(4, 4, 2), batches.stream().map(Batch::size).toList());
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L),
                    batches.stream().flatMap(b -> b.samples().stream()).map(VqaSample::questionId).toList());
            Batch b0 = batches.get(0);
            assertArrayEquals(new long[] {3, 1, 1, 3}, b0.labels());
            assertEquals(4 * 3 * 8 * 8, b0.images().length);
            // sample 1's image, as the transform computes it
            float[] one = SMALL.apply(s.get(1).image().readBytes());
            float[] got = java.util.Arrays.copyOfRange(b0.images(), 3 * 64, 2 * 3 * 64);
            assertArrayEquals(one, got);
            long[] row1 = java.util.Arrays.copyOfRange(b0.inputIds(), 16, 32);
            assertArrayEquals(tok.encodePadded(s.get(1).question(), 16), row1);
            assertEquals(0, dl.skipped());
        }
    }

    @Test
    void fixedVersusDynamicPadding() throws IOException {
        List<VqaSample> s = good(8);
        try (DataLoader fixed = loader(s).build();
                DataLoader dyn = loader(s).padding(Padding.DYNAMIC).build()) {
            for (Iterator<Batch> it = fixed.iterator(); it.hasNext(); ) {
                Batch b = it.next();
                assertEquals(16, b.seqLen());
                assertEquals(b.size() * 16, b.inputIds().length);
            }
            List<Integer> lens = new ArrayList<>();
            for (Iterator<Batch> it = dyn.iterator(); it.hasNext(); ) {
                Batch b = it.next();
                int longest = b.samples().stream().mapToInt(x -> tok.encode(x.question()).length).max().orElseThrow();
                assertEquals(longest, b.seqLen());
                assertEquals(b.size() * longest, b.inputIds().length);
                lens.add(b.seqLen());
            }
            // questions 0-3 have 0..3 extra words (longest 8+3), 4-7 have 4,5,6,0 (longest 8+6)
            assertEquals(List.of(11, 14), lens);
        }
    }

    @Test
    void shuffleIsDeterministicPerSeedAndEpoch() throws IOException {
        List<VqaSample> s = good(23);
        List<Long> a0;
        List<Long> a1;
        try (DataLoader a = loader(s).shuffle(true, 42).workers(2).build()) {
            a0 = ids(a.iterator());
            a1 = ids(a.iterator()); // epoch 1
        }
        try (DataLoader b = loader(s).shuffle(true, 42).workers(1).prefetch(1).build()) {
            assertEquals(a0, ids(b.epoch(0, 0)));
            assertEquals(a1, ids(b.epoch(1, 0)));
        }
        try (DataLoader c = loader(s).shuffle(true, 7).workers(2).build()) {
            assertNotEquals(a0, ids(c.iterator()));
        }
        assertNotEquals(a0, a1);
        assertEquals(23, a0.size());
        assertEquals(23, a0.stream().distinct().count());
        // repeated runs with two threads give the same order
        for (int r = 0; r < 3; r++) {
            try (DataLoader a = loader(s).shuffle(true, 42).workers(2).build()) {
                assertEquals(a0, ids(a.iterator()));
            }
        }
    }

    @Test
    void resumeFromABatchAndDropLast() throws IOException {
        List<VqaSample> s = good(10);
        try (DataLoader dl = loader(s).shuffle(true, 3).build()) {
            List<Long> full = ids(dl.epoch(2, 0));
            assertEquals(full.subList(8, 10), ids(dl.epoch(2, 2)));
            Batch b = dl.epoch(2, 1).next();
            assertEquals(1, b.index());
            assertEquals(2, b.epoch());
            assertEquals(full.subList(4, 8), b.samples().stream().map(VqaSample::questionId).toList());
            assertTrue(ids(dl.epoch(2, 3)).isEmpty());
        }
        try (DataLoader dl = loader(s).dropLast(true).build()) {
            assertEquals(2, dl.batchesPerEpoch());
            assertEquals(8, ids(dl.iterator()).size());
        }
        // a streaming Iterable source (not a List) gives the same batches
        Iterable<VqaSample> stream = s::iterator;
        try (DataLoader dl = DataLoader.builder(stream).transform(SMALL).tokenizer(tok).vocab(vocab).batchSize(4).build()) {
            assertEquals(-1, dl.batchesPerEpoch());
            assertEquals(List.of(4L, 5L, 6L, 7L, 8L, 9L), ids(dl.epoch(0, 1)));
        }
        // ... and shuffled (read into memory first) the same order as the List source
        try (DataLoader fromStream = DataLoader.builder(stream).transform(SMALL).tokenizer(tok).vocab(vocab)
                        .batchSize(4).shuffle(true, 3).build();
                DataLoader fromList = loader(s).shuffle(true, 3).build()) {
            assertEquals(ids(fromList.epoch(5, 0)), ids(fromStream.epoch(5, 0)));
            assertEquals(3, fromStream.batchesPerEpoch());
        }
    }

    @Test
    void badRecordsAreSkippedCountedAndNamed() throws IOException {
        List<VqaSample> s = new ArrayList<>(good(50));
        // ~10% bad: corrupt bytes, missing file, empty question, no answers, truncated PNG
        s.set(3, sample(3, "q?", List.of("yes"), new VqaSample.BytesImage("garbage".getBytes(), "corrupt3.jpg")));
        s.set(11, sample(11, "q?", List.of("yes"), new VqaSample.FileImage(dir.resolve("missing11.jpg"))));
        s.set(20, sample(20, "  ", List.of("yes"), new VqaSample.BytesImage(png(20), "img20.png")));
        s.set(33, sample(33, "q?", List.of(), new VqaSample.BytesImage(png(33), "img33.png")));
        byte[] truncated = java.util.Arrays.copyOf(png(40), 30);
        s.set(40, sample(40, "q?", List.of("no"), new VqaSample.BytesImage(truncated, "trunc40.png")));
        try (DataLoader dl = loader(s).requireAnswers(true).build()) {
            List<Long> got = ids(dl.iterator());
            assertEquals(45, got.size());
            assertTrue(!got.contains(3L) && !got.contains(11L) && !got.contains(20L) && !got.contains(33L)
                    && !got.contains(40L));
            assertEquals(5, dl.skipped());
            Map<String, Integer> expected = new LinkedHashMap<>();
            expected.put("empty question", 1);
            expected.put("image file missing", 1);
            expected.put("image undecodable", 2);
            expected.put("no answers", 1);
            assertEquals(expected, dl.skippedByReason());
            // resume numbering is positional: batch 1 = positions 4..7 minus nothing; batch 0 lost sample 3
            Iterator<Batch> it = dl.epoch(1, 0);
            Batch b0 = it.next();
            assertEquals(3, b0.size());
            assertEquals(0, b0.index());
        }
        // without requireAnswers the answerless record is kept (label 0)
        try (DataLoader dl = loader(s).build()) {
            assertEquals(46, ids(dl.iterator()).size());
            assertEquals(4, dl.skipped());
        }
    }

    @Test
    void anImageOverThePixelLimitIsSkippedAndCounted() throws IOException {
        List<VqaSample> s = new ArrayList<>(good(8));
        BufferedImage big = new BufferedImage(100, 80, BufferedImage.TYPE_INT_RGB); // 8,000 pixels
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        ImageIO.write(big, "png", bos);
        s.set(5, sample(5, "q?", List.of("yes"), new VqaSample.BytesImage(bos.toByteArray(), "big5.png")));
        // limit 3,000 pixels: up to 6,000 decodes (with a warning), 8,000 is refused; the small images are ~150 pixels
        try (DataLoader dl = loader(s).transform(SMALL.withMaxImagePixels(3_000)).requireAnswers(true).build()) {
            List<Long> got = ids(dl.iterator());
            assertEquals(7, got.size());
            assertFalse(got.contains(5L));
            assertEquals(Map.of("image too large", 1), dl.skippedByReason());
        }
    }

    @Test
    void questionsLongerThanTheMaximumAreCountedPerEpoch() throws IOException {
        List<VqaSample> s = new ArrayList<>(good(8)); // questions of up to 13 tokens; max length 16
        s.set(2, sample(2, "what" + " does the sign say".repeat(10) + "?", List.of("yes"), s.get(2).image()));
        s.set(6, sample(6, "why" + " is it red".repeat(10) + "?", List.of("no"), s.get(6).image()));
        try (DataLoader dl = loader(s).build()) {
            List<Batch> batches = new ArrayList<>();
            dl.iterator().forEachRemaining(batches::add);
            assertEquals(2, dl.truncated()); // before: cut silently
            assertEquals(16, batches.get(0).seqLen());
            assertEquals(8, batches.stream().mapToInt(Batch::size).sum(), "truncated questions are still used");
            dl.iterator().forEachRemaining(b -> { });
            assertEquals(2, dl.truncated(), "counted afresh each epoch");
        }
        QuestionTokenizer.Encoded e = tok.encoded("what" + " does the sign say".repeat(10) + "?");
        assertTrue(e.truncated());
        assertEquals(16, e.ids().length);
        assertEquals(44, e.untruncatedLength());
    }

    @Test
    void nothingReadableIsOneClearError() {
        List<VqaSample> s = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            s.add(sample(i, "q?", List.of("yes"), new VqaSample.FileImage(dir.resolve("nope" + i + ".jpg"))));
        }
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            try (DataLoader dl = loader(s).build()) {
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> ids(dl.iterator()));
                assertTrue(e.getMessage().contains("none of the 9 records"), e.getMessage());
                assertTrue(e.getMessage().contains("nope0.jpg"), e.getMessage());
            }
        });
    }

    @Test
    void workerFailureReachesTheConsumer() throws IOException {
        List<VqaSample> s = new ArrayList<>(good(12));
        // an answers list that blows up when the worker computes the label: an unexpected worker failure
        List<String> boom = new java.util.AbstractList<>() {
            @Override
            public String get(int i) {
                throw new IllegalStateException("simulated");
            }

            @Override
            public int size() {
                throw new IllegalStateException("simulated");
            }
        };
        s.set(6, sample(6, "q?", boom, s.get(6).image()));
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            try (DataLoader dl = loader(s).build()) {
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> ids(dl.iterator()));
                assertTrue(e.getMessage().contains("batch 1"), e.getMessage());
            }
        });
    }
}
