package dev.mm4j.flava;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** The analytic FLOP count: text keys trimmed to the longest question count only the work done. */
class FlavaFlopsTest {

    @Test
    void textKeysTrimmedToTheQuestionCountOnlyTheirProjectionsAndScores() {
        FlavaConfig c = FlavaConfig.fullSize(3997);
        long d = c.textHiddenSize;
        double all = FlavaFlops.forward(c, 2, 512, 512);
        // 12 text layers, 2 samples: key and value projections for 488 fewer tokens, 512 x 488 fewer scores
        double fewer = 2.0 * c.textNumHiddenLayers * (4.0 * (512 - 24) * d * d + 4.0 * 512 * (512 - 24) * d);
        assertEquals(all - fewer, FlavaFlops.forward(c, 2, 512, 24), 1e-9 * all);
        assertEquals(3 * (all - fewer), FlavaFlops.trainStep(c, 2, 512, 24), 1e-9 * all);
        // the nominal count (what bench printed before): 404.4 GFLOP a forward on 2 samples of 512 tokens
        assertEquals(404.4e9, all, 0.05e9);
    }
}
