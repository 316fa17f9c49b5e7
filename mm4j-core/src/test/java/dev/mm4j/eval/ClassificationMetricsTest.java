package dev.mm4j.eval;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;

class ClassificationMetricsTest {

    @Test
    void accuracyMacroF1AndPerClassAsScikitLearnComputesThem() {
        // sklearn: accuracy_score = 4/6; f1_score(average=None) = [0.8, 0.5, 0.666...]; macro = 0.6555...
        int[] gold = {0, 0, 1, 1, 2, 2};
        int[] pred = {0, 0, 1, 2, 2, 0};
        ClassificationMetrics m = ClassificationMetrics.of(gold, pred, List.of("a", "b", "c"));
        assertEquals(4.0 / 6, m.accuracy(), 1e-12);
        assertEquals(0.8, m.perClass().get(0).f1(), 1e-12); // p 2/3, r 1
        assertEquals(2.0 / 3, m.perClass().get(1).f1(), 1e-12); // p 1, r 1/2
        assertEquals(0.5, m.perClass().get(2).f1(), 1e-12); // p 1/2, r 1/2
        assertEquals((0.8 + 2.0 / 3 + 0.5) / 3, m.macroF1(), 1e-12);
        assertEquals(2, m.perClass().get(2).support());
        assertTrue(m.toJson().contains("\"macro_f1\": 0.655556"), m.toJson());
    }

    @Test
    void classesThatNeverOccurAreLeftOutOfTheMacroAverage() {
        ClassificationMetrics m = ClassificationMetrics.of(new int[] {0, 1}, new int[] {0, 0}, List.of("x", "y", "unused"));
        assertEquals(0.5, m.accuracy(), 1e-12);
        assertEquals((2.0 / 3 + 0) / 2, m.macroF1(), 1e-12);
        assertEquals(0.5, ClassificationMetrics.majorityBaseline(new int[] {1, 1, 0}, new int[] {1, 0}, 3), 1e-12);
    }
}
