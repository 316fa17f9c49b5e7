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
        // the nominal count (what bench printed before the multimodal encoder's last layer ran for its CLS token
        // alone): 404.4 GFLOP a forward on 2 samples of 512 tokens, less that layer's 710 - 1 queries' projections,
        // scores and feed-forward
        long mm = c.multimodalHiddenSize;
        double lastLayer = 2.0 * (4.0 * 709 * mm * mm + 4.0 * 709 * 710 * mm + 4.0 * 709 * mm * c.multimodalIntermediateSize);
        assertEquals(404.4e9, all + lastLayer, 0.05e9);
    }
}
