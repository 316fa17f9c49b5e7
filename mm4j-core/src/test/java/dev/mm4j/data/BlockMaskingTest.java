package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * BEiT block masking against the invariants TorchMultimodal's ImageMaskingGenerator guarantees, and against the
 * reference's statistics over 1000 draws (tools/flava_pretraining_inputs_reference.py).
 */
class BlockMaskingTest {
    static JsonNode reference() throws Exception {
        try (InputStream in = BlockMaskingTest.class.getResourceAsStream("/fixtures/pretraining/reference_inputs.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    @Test
    void defaultsAreFlavaImageTransforms() throws Exception {
        JsonNode ref = reference().get("masking");
        BlockMasking m = new BlockMasking();
        assertEquals(ref.get("window").asInt(), m.height());
        assertEquals(ref.get("window").asInt(), m.width());
        assertEquals(ref.get("num_masking_patches").asInt(), m.numMaskingPatches());
        assertEquals(ref.get("min_num_patches").asInt(), m.minNumPatches());
        assertEquals(ref.get("max_num_patches").asInt(), m.maxNumPatches());
        assertEquals(ref.get("log_aspect_ratio").get(0).asDouble(), m.logAspectRatio()[0], 1e-15);
        assertEquals(ref.get("log_aspect_ratio").get(1).asDouble(), m.logAspectRatio()[1], 1e-15);
    }

    @Test
    void everyBlockRespectsTheCountSizeAndAspectBounds() {
        BlockMasking m = new BlockMasking();
        Random rnd = new Random(7);
        double logMin = m.logAspectRatio()[0];
        double logMax = m.logAspectRatio()[1];
        for (int d = 0; d < 2000; d++) {
            List<BlockMasking.Block> blocks = new ArrayList<>();
            long[] mask = m.draw(rnd, blocks);
            int count = BlockMasking.count(mask);
            assertTrue(count <= 75 && count > 0, "count " + count);
            assertEquals(count, blocks.stream().mapToInt(BlockMasking.Block::added).sum());
            int left = 75;
            for (BlockMasking.Block b : blocks) {
                assertTrue(b.h() < 14 && b.w() < 14, "block " + b);
                assertTrue(b.top() >= 0 && b.top() + b.h() <= 14 && b.left() >= 0 && b.left() + b.w() <= 14);
                // the area is uniform(min_num_patches, min(max_num_patches, left)) (Python's uniform takes the
                // ends in either order: near the end, left < 16); the sides are its rounded square roots
                int hi = Math.min(75, left);
                assertTrue(b.targetArea() >= Math.min(16, hi) && b.targetArea() <= Math.max(16, hi), "area " + b);
                assertTrue(Math.log(b.aspectRatio()) >= logMin && Math.log(b.aspectRatio()) <= logMax, "aspect " + b);
                assertEquals(Math.rint(Math.sqrt(b.targetArea() * b.aspectRatio())), b.h());
                assertEquals(Math.rint(Math.sqrt(b.targetArea() / b.aspectRatio())), b.w());
                assertTrue(b.added() >= 1 && b.added() <= Math.min(left, b.h() * b.w()), "added " + b);
                left -= b.added();
            }
            for (long v : mask) {
                assertTrue(v == 0 || v == 1);
            }
        }
    }

    @Test
    void meanCountAndPlacementMatchTheReferenceOver1000Draws() throws Exception {
        JsonNode ref = reference().get("masking");
        BlockMasking m = new BlockMasking();
        Random rnd = new Random(0);
        int draws = 1000;
        double sum = 0;
        double center = 0;
        double corners = 0;
        int min = Integer.MAX_VALUE;
        for (int d = 0; d < draws; d++) {
            long[] mask = m.draw(rnd);
            int c = BlockMasking.count(mask);
            sum += c;
            min = Math.min(min, c);
            for (int i = 5; i < 9; i++) {
                for (int j = 5; j < 9; j++) {
                    center += mask[i * 14 + j];
                }
            }
            corners += mask[0] + mask[13] + mask[13 * 14] + mask[13 * 14 + 13];
        }
        double mean = sum / draws;
        double refMean = ref.get("mean_count").asDouble();
        double std = ref.get("std_count").asDouble();
        // two independent means of 1000 draws: their difference has std sqrt(2/1000)*std; allow 5 of those
        assertEquals(refMean, mean, 5 * Math.sqrt(2.0 / draws) * std + 1e-9, "mean masked count");
        assertTrue(min >= ref.get("min_count").asInt() - 10, "min count " + min);
        assertEquals(ref.get("mean_patch_frequency_center_4x4").asDouble(), center / 16 / draws, 0.05);
        assertEquals(ref.get("mean_patch_frequency_corners").asDouble(), corners / 4 / draws, 0.03);
    }

    /** The script's xorshift64* stream: uniform and randint each take the next double, as in the script. */
    static final class ScriptedRandom extends Random {
        private long x;

        ScriptedRandom(long seed) {
            x = seed * 0x9E3779B97F4A7C15L + 1;
        }

        @Override
        public double nextDouble() {
            x ^= x >>> 12;
            x ^= x << 25;
            x ^= x >>> 27;
            return ((x * 0x2545F4914F6CDD1DL) >>> 11) * 0x1.0p-53;
        }

        @Override
        public int nextInt(int bound) {
            return (int) Math.floor(nextDouble() * bound);
        }
    }

    @Test
    void givenTheSameDrawsTheMasksEqualTheReferenceGeneratorsBitForBit() throws Exception {
        int cases = 0;
        for (JsonNode c : reference().get("scripted_masks")) {
            JsonNode max = c.get("max_num_patches");
            BlockMasking m = new BlockMasking(c.get("window").asInt(), c.get("window").asInt(),
                    c.get("num_masking_patches").asInt(), c.get("min_num_patches").asInt(),
                    max.isNull() ? null : max.asInt(), c.get("min_aspect").asDouble(), null);
            Random rnd = new ScriptedRandom(c.get("seed").asLong());
            for (JsonNode want : c.get("masks")) {
                long[] got = m.draw(rnd);
                long[] w = new long[want.size()];
                for (int i = 0; i < w.length; i++) {
                    w[i] = want.get(i).asLong();
                }
                assertArrayEquals(w, got, "seed " + c.get("seed") + " mask " + cases);
                cases++;
            }
        }
        assertEquals(18, cases);
    }

    @Test
    void sameSeedSameMask() {
        BlockMasking m = new BlockMasking();
        assertArrayEquals(m.draw(new Random(11)), m.draw(new Random(11)));
        assertFalse(java.util.Arrays.equals(m.draw(new Random(11)), m.draw(new Random(12))));
    }
}
