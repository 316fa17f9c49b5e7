package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mixed pretraining loader: per-batch source sampling by ratio, per-kind fields, determinism, resume. */
class PretrainingLoaderTest {
    @TempDir static Path tmp;
    static QuestionTokenizer tokenizer;
    static PretrainingSource.Pairs pairs;
    static PretrainingSource.Texts texts;
    static PretrainingSource.Images images;

    @BeforeAll
    static void data() throws Exception {
        tokenizer = QuestionTokenizer.bertBaseUncased(512);
        Files.createDirectories(tmp.resolve("img/sub"));
        StringBuilder manifest = new StringBuilder();
        StringBuilder txt = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            BufferedImage img = new BufferedImage(20 + i, 18 + 2 * i, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < img.getHeight(); y++) {
                for (int x = 0; x < img.getWidth(); x++) {
                    img.setRGB(x, y, ((x * 9 + i * 20) % 256) << 16 | ((y * 7) % 256) << 8 | (i * 21 % 256));
                }
            }
            String name = (i % 2 == 0 ? "img/" : "img/sub/") + "s" + i + ".png";
            ImageIO.write(img, "png", tmp.resolve(name).toFile());
            manifest.append("{\"image\": \"").append(name).append("\", \"text\": \"sign number ").append(i)
                    .append(" says word").append(i).append("\"}\n");
            txt.append("text line ").append(i).append(" about a sign\n");
        }
        Files.writeString(tmp.resolve("captions.jsonl"), manifest);
        Files.writeString(tmp.resolve("texts.txt"), txt);
        pairs = PretrainingSource.pairs(tmp.resolve("captions.jsonl"), "train");
        texts = PretrainingSource.texts(tmp.resolve("texts.txt"));
        images = PretrainingSource.images(tmp.resolve("img"));
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    /** Small sizes so the tests run fast: 32px encoder input, 16px codebook input, a 4x4 patch grid. */
    static PretrainingLoader.Builder small(long seed) {
        return PretrainingLoader.builder().tokenizer(tokenizer).seed(seed).batchSize(4)
                .imageTransform(new PretrainingImageTransform(true, 32, 16, 0.9, 1.0, ImageTransform.Normalize.CLIP))
                .blockMasking(new BlockMasking(4, 4, 6, 2, null, 0.3, null)).textMaxLength(24).pairsMaxLength(16);
    }

    @Test
    void eachBatchComesFromOneSourceDrawnByTheRatios() {
        try (PretrainingLoader l = small(5).source(pairs, 2).source(texts, 1).source(images, 1).build()) {
            assertArrayEquals(new double[] {0.5, 0.25, 0.25}, l.shares(), 1e-12);
            int[] n = new int[3];
            int steps = 20_000;
            for (long s = 0; s < steps; s++) {
                n[l.sourceAt(s)]++;
            }
            // binomial std at 20000 draws: <= 0.0036; allow about 4 of them
            assertEquals(0.5, n[0] / (double) steps, 0.015);
            assertEquals(0.25, n[1] / (double) steps, 0.015);
            assertEquals(0.25, n[2] / (double) steps, 0.015);
        }
    }

    @Test
    void eachKindCarriesItsObjectivesFields() {
        try (PretrainingLoader l = small(1).source(pairs).source(texts).source(images).build()) {
            Set<PretrainingSource.Kind> seen = new HashSet<>();
            Iterator<PretrainingBatch> it = l.from(0);
            for (int k = 0; k < 30 && seen.size() < 3; k++) {
                PretrainingBatch b = it.next();
                seen.add(b.kind());
                assertEquals(4, b.size());
                switch (b.kind()) {
                    case TEXT -> {
                        assertNull(b.image());
                        assertNull(b.imagePatchesMask());
                        assertNull(b.text());
                        assertNull(b.itmLabels());
                        assertEquals(24, b.seqLen());
                        assertEquals(4 * 24, b.textMasked().length);
                        assertEquals(4 * 24, b.mlmLabels().length);
                        assertEquals(101, b.textMasked()[0]);
                    }
                    case IMAGE -> {
                        assertNull(b.textMasked());
                        assertNull(b.mlmLabels());
                        assertEquals(4 * 3 * 32 * 32, b.image().length);
                        assertEquals(4 * 3 * 16 * 16, b.imageForCodebook().length);
                        assertEquals(4 * 16, b.imagePatchesMask().length);
                        for (float v : b.imageForCodebook()) {
                            assertTrue(v >= 0.1f && v <= 0.90000004f, "codebook pixel " + v);
                        }
                    }
                    case PAIRS -> {
                        assertEquals(4 * 3 * 32 * 32, b.image().length);
                        assertEquals(4 * 16, b.text().length);
                        assertEquals(4 * 16, b.textMasked().length);
                        assertEquals(4, b.itmLabels().length);
                        // text is the unmasked ids; text_masked differs only where mlm_labels are set
                        for (int i = 0; i < b.text().length; i++) {
                            if (b.mlmLabels()[i] == MlmMasking.IGNORE_INDEX) {
                                assertEquals(b.text()[i], b.textMasked()[i]);
                            } else {
                                assertEquals(b.text()[i], b.mlmLabels()[i]);
                            }
                        }
                    }
                    default -> fail();
                }
                for (int s = 0; b.imagePatchesMask() != null && s < b.size(); s++) {
                    int c = 0;
                    for (int p = 0; p < 16; p++) {
                        c += (int) b.imagePatchesMask()[s * 16 + p];
                    }
                    assertTrue(c >= 1 && c <= 6, "masked patches " + c);
                }
            }
            assertEquals(3, seen.size());
        }
    }

    @Test
    void sameSeedSameBatchesAndResumingGivesTheSameRest() {
        List<PretrainingBatch> first = new ArrayList<>();
        try (PretrainingLoader l = small(7).source(pairs).source(texts).source(images).build()) {
            Iterator<PretrainingBatch> it = l.from(0);
            for (int k = 0; k < 16; k++) {
                first.add(it.next());
            }
            // random access gives the iterator's batch
            assertBatchEquals(first.get(9), l.batch(first.get(9).step()));
        }
        try (PretrainingLoader again = small(7).source(pairs).source(texts).source(images).workers(3)
                .prefetch(5).build()) {
            Iterator<PretrainingBatch> it = again.from(0);
            for (int k = 0; k < 16; k++) {
                assertBatchEquals(first.get(k), it.next());
            }
        }
        try (PretrainingLoader resumed = small(7).source(pairs).source(texts).source(images).prefetch(1).build()) {
            Iterator<PretrainingBatch> it = resumed.from(first.get(9).step() + 1);
            for (int k = 10; k < 16; k++) {
                assertBatchEquals(first.get(k), it.next());
            }
        }
        try (PretrainingLoader other = small(8).source(pairs).source(texts).source(images).build()) {
            Iterator<PretrainingBatch> it = other.from(0);
            boolean differs = false;
            for (int k = 0; k < 16; k++) {
                PretrainingBatch b = it.next();
                differs |= b.kind() != first.get(k).kind() || !b.origins().equals(first.get(k).origins());
            }
            assertTrue(differs, "another seed gives other batches");
        }
    }

    @Test
    void aSourcesEpochVisitsEveryRecordOnceShuffled() {
        try (PretrainingLoader l = small(3).source(texts).build()) {
            assertEquals(3, l.batchesPerEpoch(0));
            Iterator<PretrainingBatch> it = l.from(0);
            for (int epoch = 0; epoch < 2; epoch++) {
                List<String> origins = new ArrayList<>();
                for (int k = 0; k < 3; k++) {
                    origins.addAll(it.next().origins());
                }
                assertEquals(12, new HashSet<>(origins).size(), "epoch " + epoch + ": " + origins);
                assertNotEquals(texts.origins(), origins, "shuffled");
            }
        }
    }

    @Test
    void explicitMasksPlansAndNegativesAreUsed() {
        try (PretrainingLoader l = small(2).source(pairs).build()) {
            long[][] masks = new long[4][16];
            masks[1][5] = 1;
            masks[3][0] = masks[3][15] = 1;
            int[] itm = {-1, 11, -1, 0};
            PretrainingBatch b = l.batch(0, new PretrainingLoader.Overrides(null, masks, null, itm));
            long[] want = new long[64];
            want[16 + 5] = 1;
            want[48] = want[63] = 1;
            assertArrayEquals(want, b.imagePatchesMask());
            assertArrayEquals(new long[] {1, 0, 1, 0}, b.itmLabels());
            // sample 1 reads record 11's caption, sample 3 record 0's
            long[] c11 = tokenizer.encodePadded(pairs.captions().get(11), 16);
            assertArrayEquals(c11, Arrays.copyOfRange(b.text(), 16, 32));
            long[] c0 = tokenizer.encodePadded(pairs.captions().get(0), 16);
            assertArrayEquals(c0, Arrays.copyOfRange(b.text(), 48, 64));
            // an explicit MLM plan for sample 2: position 1 becomes [MASK], nothing else
            MlmMasking.Action[] actions = new MlmMasking.Action[16];
            java.util.Arrays.fill(actions, MlmMasking.Action.NONE);
            actions[1] = MlmMasking.Action.MASK_TOKEN;
            MlmMasking.Plan[] plans = new MlmMasking.Plan[4];
            plans[2] = new MlmMasking.Plan(actions, null);
            PretrainingBatch p = l.batch(0, new PretrainingLoader.Overrides(null, masks, plans, itm));
            long[] text2 = Arrays.copyOfRange(p.text(), 32, 48);
            long[] want2 = text2.clone();
            want2[1] = 103;
            assertArrayEquals(want2, Arrays.copyOfRange(p.textMasked(), 32, 48));
            long[] labels2 = new long[16];
            Arrays.fill(labels2, -1);
            labels2[1] = text2[1];
            assertArrayEquals(labels2, Arrays.copyOfRange(p.mlmLabels(), 32, 48));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> l.batch(0, new PretrainingLoader.Overrides(null, new long[3][16], null, null)));
            assertEquals("patchMasks has 3 entries for a batch of 4", e.getMessage());
        }
    }

    @Test
    void anUndecodableImageIsSkippedAndCounted() throws Exception {
        Path dir = tmp.resolve("withbad");
        Files.createDirectories(dir);
        for (int i = 0; i < 4; i++) {
            Files.copy(images.images().get(i), dir.resolve("ok" + i + ".png"));
        }
        Files.writeString(dir.resolve("broken.jpg"), "not a jpeg");
        PretrainingSource.Images src = PretrainingSource.images(dir);
        assertEquals(5, src.size());
        try (PretrainingLoader l = small(4).source(src).batchSize(5).build()) {
            PretrainingBatch b = l.batch(0);
            assertEquals(4, b.size());
            assertEquals(4 * 3 * 32 * 32, b.image().length);
            assertFalse(b.origins().contains(dir.resolve("broken.jpg").toString()));
            assertEquals(1, l.skipped());
            assertEquals(1, l.skippedByReason().get("image undecodable"));
        }
        Path allBad = tmp.resolve("allbad");
        Files.createDirectories(allBad);
        Files.writeString(allBad.resolve("a.png"), "x");
        try (PretrainingLoader l = small(4).source(PretrainingSource.images(allBad)).build()) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> l.batch(0));
            assertTrue(e.getMessage().startsWith("none of the 1 records of source " + allBad + " could be used"),
                    e.getMessage());
            // the same through the prefetching iterator, on the consumer's thread
            Iterator<PretrainingBatch> it = l.from(0);
            e = assertThrows(IllegalStateException.class, it::next);
            assertTrue(e.getMessage().startsWith("none of the 1 records of source " + allBad + " could be used"),
                    e.getMessage());
        }
    }

    @Test
    void withoutItmProbabilityPairsCarryNoItmLabelsAndTextsNeverPredictClsSepOrPad() {
        try (PretrainingLoader l = small(6).source(pairs).itm(new ItmNegatives(0)).build()) {
            PretrainingBatch b = l.batch(0);
            assertNull(b.itmLabels());
            assertNotNull(b.text());
        }
        try (PretrainingLoader l = small(6).source(texts).mlm(new MlmMasking(1.0, MlmMasking.Vocab.BERT_UNCASED))
                .build()) {
            PretrainingBatch b = l.batch(0);
            for (int s = 0; s < b.size(); s++) {
                long[] ids = tokenizer.encodePadded(texts.texts().get(
                        texts.origins().indexOf(b.origins().get(s))), 24);
                for (int i = 0; i < 24; i++) {
                    long label = b.mlmLabels()[s * 24 + i];
                    boolean special = ids[i] == 101 || ids[i] == 102 || ids[i] == 0;
                    // probability 1: every other position is predicted, with its original id as the label
                    assertEquals(special ? MlmMasking.IGNORE_INDEX : ids[i], label, "sample " + s + " position " + i);
                }
            }
        }
    }

    /**
     * Micro-batches and processes cut the same global batches: batch 2 x accumulation 2 on 1 process, and batch 2 on
     * each of 2 processes, give the micro-batches whose concatenation is the plain loader's batch of 4 (records, crops,
     * masks, ITM choices: every draw is seeded by the sample's place in the global batch), every process the same
     * source per step; a resumed shard continues where it stopped.
     */
    @Test
    void accumulationAndShardsCutTheGlobalBatchesOfThePlainLoader() {
        try (PretrainingLoader plain = small(7).source(pairs, 1).source(texts, 1).source(images, 1).build();
                PretrainingLoader accum = small(7).batchSize(2).accumulation(2)
                        .source(pairs, 1).source(texts, 1).source(images, 1).build();
                PretrainingLoader rank0 = small(7).batchSize(2).shard(0, 2)
                        .source(pairs, 1).source(texts, 1).source(images, 1).build();
                PretrainingLoader rank1 = small(7).batchSize(2).shard(1, 2)
                        .source(pairs, 1).source(texts, 1).source(images, 1).build()) {
            assertEquals(4, accum.globalBatch());
            assertEquals(3, accum.batchesPerEpoch(0)); // 12 records / 4
            Iterator<PretrainingBatch> p = plain.from(0);
            Iterator<PretrainingBatch> a = accum.from(0);
            Iterator<PretrainingBatch> r0 = rank0.from(0);
            Iterator<PretrainingBatch> r1 = rank1.from(0);
            Set<PretrainingSource.Kind> kinds = new HashSet<>();
            List<PretrainingBatch> shard1 = new ArrayList<>();
            for (int step = 0; step < 12; step++) {
                PretrainingBatch whole = p.next();
                PretrainingBatch a0 = a.next();
                PretrainingBatch a1 = a.next();
                assertBatchEquals(a0, r0.next());
                PretrainingBatch s1 = r1.next();
                assertBatchEquals(a1, s1);
                shard1.add(s1);
                assertEquals(step, a0.step());
                assertEquals(step, a1.step());
                assertEquals(whole.kind(), a1.kind(), "every process draws the same source");
                kinds.add(whole.kind());
                List<String> both = new ArrayList<>(a0.origins());
                both.addAll(a1.origins());
                assertEquals(whole.origins(), both, "step " + step);
                assertArrayEquals(whole.image(), concat(a0.image(), a1.image()), "step " + step);
                assertArrayEquals(whole.imagePatchesMask(), concat(a0.imagePatchesMask(), a1.imagePatchesMask()));
                assertArrayEquals(whole.textMasked(), concat(a0.textMasked(), a1.textMasked()), "step " + step);
                assertArrayEquals(whole.itmLabels(), concat(a0.itmLabels(), a1.itmLabels()), "step " + step);
            }
            assertEquals(3, kinds.size(), kinds.toString());
            Iterator<PretrainingBatch> resumed = rank1.from(5);
            for (int step = 5; step < 12; step++) {
                assertBatchEquals(shard1.get(step), resumed.next());
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> small(7).batchSize(4).shard(0, 4).source(texts, 1).build());
        assertTrue(e.getMessage().contains("has 12 records, fewer than one global batch of 16"), e.getMessage());
    }

    private static float[] concat(float[] a, float[] b) {
        if (a == null) {
            return b == null ? null : b;
        }
        float[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static long[] concat(long[] a, long[] b) {
        if (a == null) {
            return b == null ? null : b;
        }
        long[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static void assertBatchEquals(PretrainingBatch a, PretrainingBatch b) {
        assertEquals(a.step(), b.step());
        assertEquals(a.kind(), b.kind());
        assertEquals(a.origins(), b.origins());
        assertArrayEquals(a.image(), b.image());
        assertArrayEquals(a.imageForCodebook(), b.imageForCodebook());
        assertArrayEquals(a.imagePatchesMask(), b.imagePatchesMask());
        assertArrayEquals(a.text(), b.text());
        assertArrayEquals(a.textMasked(), b.textMasked());
        assertArrayEquals(a.mlmLabels(), b.mlmLabels());
        assertArrayEquals(a.itmLabels(), b.itmLabels());
    }
}
