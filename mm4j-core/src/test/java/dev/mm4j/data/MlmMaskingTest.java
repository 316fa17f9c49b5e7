package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** BERT masking (DataCollatorForLanguageModeling semantics, TorchMultimodal's ignore index -1). */
class MlmMaskingTest {
    private static final MlmMasking.Vocab V = MlmMasking.Vocab.BERT_UNCASED;

    /** [CLS] w... [SEP] [PAD]...: words drawn from ordinary ids, a few [UNK]s inside. */
    private static long[] sequence(Random rnd, int words, int padTo) {
        long[] ids = new long[padTo];
        ids[0] = V.cls();
        for (int i = 1; i <= words; i++) {
            ids[i] = i % 37 == 0 ? V.unk() : 1000 + rnd.nextInt(29000);
        }
        ids[words + 1] = V.sep();
        return ids; // rest 0 = [PAD]
    }

    @Test
    void proportionsOnALargeSeededSampleAre15PercentThen80_10_10() {
        MlmMasking m = new MlmMasking();
        Random data = new Random(1);
        Random rnd = new Random(42);
        long eligible = 0;
        long chosen = 0;
        long toMask = 0;
        long toRandom = 0;
        long kept = 0;
        for (int s = 0; s < 4000; s++) {
            long[] ids = sequence(data, 40 + data.nextInt(30), 77);
            MlmMasking.Masked out = m.apply(ids, rnd);
            for (int i = 0; i < ids.length; i++) {
                if (V.isSpecial(ids[i])) {
                    assertEquals(ids[i], out.textMasked()[i], "special token changed at " + i);
                    assertEquals(MlmMasking.IGNORE_INDEX, out.mlmLabels()[i], "special token predicted at " + i);
                    continue;
                }
                eligible++;
                if (out.mlmLabels()[i] == MlmMasking.IGNORE_INDEX) {
                    assertEquals(ids[i], out.textMasked()[i], "an unmasked position changed at " + i);
                    continue;
                }
                assertEquals(ids[i], out.mlmLabels()[i], "the label is the original id");
                chosen++;
                if (out.textMasked()[i] == V.mask()) {
                    toMask++;
                } else if (out.textMasked()[i] == ids[i]) {
                    kept++; // (a random replacement equal to the token itself is counted as kept: p = 1/30522)
                } else {
                    toRandom++;
                    assertTrue(out.textMasked()[i] >= 0 && out.textMasked()[i] < V.size());
                }
            }
        }
        assertTrue(eligible > 200_000, "sample size " + eligible);
        double p = (double) chosen / eligible;
        assertEquals(0.15, p, 0.004, "share of eligible tokens chosen");
        assertEquals(0.8, (double) toMask / chosen, 0.01, "[MASK] share of the chosen");
        assertEquals(0.1, (double) toRandom / chosen, 0.008, "random share of the chosen");
        assertEquals(0.1, (double) kept / chosen, 0.008, "kept share of the chosen");
    }

    @Test
    void specialTokensAreNeverMaskedEvenAtProbabilityOne() {
        MlmMasking m = new MlmMasking(1.0, V);
        long[] ids = {V.cls(), 2023, V.unk(), 2003, V.sep(), V.pad(), V.pad(), V.mask()};
        MlmMasking.Masked out = m.apply(ids, new Random(3));
        long[] labels = out.mlmLabels();
        assertArrayEquals(new long[] {-1, 2023, -1, 2003, -1, -1, -1, -1}, labels);
        for (int i : new int[] {0, 2, 4, 5, 6, 7}) {
            assertEquals(ids[i], out.textMasked()[i]);
        }
    }

    @Test
    void anExplicitPlanIsAppliedExactlyAndLabelsAreMinusOneElsewhere() {
        MlmMasking m = new MlmMasking();
        long[] ids = {101, 2054, 2003, 2023, 3899, 102, 0, 0};
        MlmMasking.Action N = MlmMasking.Action.NONE;
        MlmMasking.Plan plan = new MlmMasking.Plan(new MlmMasking.Action[] {N, MlmMasking.Action.MASK_TOKEN, N,
                MlmMasking.Action.RANDOM_TOKEN, MlmMasking.Action.KEEP, N, N, N},
                new long[] {0, 0, 0, 7592, 0, 0, 0, 0});
        MlmMasking.Masked out = m.apply(ids, plan);
        assertArrayEquals(new long[] {101, 103, 2003, 7592, 3899, 102, 0, 0}, out.textMasked());
        assertArrayEquals(new long[] {-1, 2054, -1, 2023, 3899, -1, -1, -1}, out.mlmLabels());
        MlmMasking.Plan bad = new MlmMasking.Plan(new MlmMasking.Action[] {MlmMasking.Action.MASK_TOKEN, N, N, N, N,
                N, N, N}, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.apply(ids, bad));
        assertEquals("position 0 holds the special token 101, which is never masked", e.getMessage());
    }

    @Test
    void theSameSeedGivesTheSameMasking() {
        MlmMasking m = new MlmMasking();
        long[] ids = sequence(new Random(5), 60, 77);
        assertArrayEquals(m.apply(ids, new Random(9)).textMasked(), m.apply(ids, new Random(9)).textMasked());
        assertFalse(java.util.Arrays.equals(m.apply(ids, new Random(9)).mlmLabels(),
                m.apply(ids, new Random(10)).mlmLabels()));
    }

    @Test
    void wholeWordMaskingTakesWordsWholeUpToRoundedFifteenPercentOfTheLength() {
        MlmMasking m = new MlmMasking();
        Random rnd = new Random(21);
        // [CLS] then 30 words of 1..3 pieces, [SEP], padded to 77
        for (int s = 0; s < 500; s++) {
            long[] ids = new long[77];
            boolean[] cont = new boolean[77];
            ids[0] = V.cls();
            int p = 1;
            for (int w = 0; w < 30; w++) {
                int pieces = 1 + rnd.nextInt(3);
                for (int k = 0; k < pieces && p < 75; k++) {
                    ids[p] = 2000 + rnd.nextInt(20000);
                    cont[p] = k > 0;
                    p++;
                }
            }
            ids[p] = V.sep();
            MlmMasking.Plan plan = m.drawWholeWord(ids, cont, rnd);
            MlmMasking.Masked out = m.apply(ids, plan);
            int chosen = 0;
            for (int i = 0; i < ids.length; i++) {
                boolean c = out.mlmLabels()[i] != MlmMasking.IGNORE_INDEX;
                if (c) {
                    chosen++;
                    assertFalse(V.isSpecial(ids[i]), "special token chosen at " + i);
                }
                if (cont[i]) { // a continuation piece is chosen exactly when the piece before it is
                    assertEquals(out.mlmLabels()[i - 1] != MlmMasking.IGNORE_INDEX, c, "word split at " + i);
                }
            }
            // round(77 * 0.15) = 12 positions, [PAD]s among the candidates (dropped after)
            assertTrue(chosen <= 12, "chosen " + chosen);
        }
        // no padding and one-piece words: exactly round(length * p) positions
        long[] ids = new long[42];
        ids[0] = V.cls();
        for (int i = 1; i < 41; i++) {
            ids[i] = 3000 + i;
        }
        ids[41] = V.sep();
        for (int s = 0; s < 50; s++) {
            MlmMasking.Masked out = m.apply(ids, m.drawWholeWord(ids, new boolean[42], rnd));
            assertEquals(6, java.util.Arrays.stream(out.mlmLabels()).filter(l -> l != -1).count()); // round(6.3)
        }
    }

    @Test
    void theTokenizerMarksWordPieceContinuations() throws Exception {
        try (QuestionTokenizer t = QuestionTokenizer.bertBaseUncased(512)) {
            java.util.List<String> pieces = t.tokens("unaffable sign");
            boolean[] cont = t.continuations("unaffable sign", 10);
            assertEquals(10, cont.length);
            for (int i = 0; i < pieces.size(); i++) {
                assertEquals(pieces.get(i).startsWith("##"), cont[i], pieces.get(i));
            }
            assertTrue(pieces.stream().anyMatch(x -> x.startsWith("##")), pieces.toString());
            assertFalse(cont[pieces.size()]);
            // truncated: the last kept position is [SEP]
            boolean[] cut = t.continuations("unaffable unaffable unaffable", 4);
            assertFalse(cut[3]);
        }
    }

    @Test
    void theTextDatasPathProtectsOnlyClsSepAndPadSoAnUnkCanBeMasked() {
        MlmMasking text = new MlmMasking().withProtection(MlmMasking.Protected.CLS_SEP_PAD);
        long[] ids = {V.cls(), V.unk(), 2003, V.sep(), V.pad()};
        MlmMasking.Masked out = new MlmMasking(1.0, V, MlmMasking.Protected.CLS_SEP_PAD).apply(ids, new Random(1));
        assertArrayEquals(new long[] {-1, V.unk(), 2003, -1, -1}, out.mlmLabels());
        assertTrue(text.isProtected(V.cls()) && text.isProtected(V.sep()) && text.isProtected(V.pad()));
        assertFalse(text.isProtected(V.unk()));
        assertTrue(new MlmMasking().isProtected(V.unk()));
    }
}
