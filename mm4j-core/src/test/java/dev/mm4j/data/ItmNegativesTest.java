package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** ITM negatives as VLTransform draws them. */
class ItmNegativesTest {
    @Test
    void aboutItmProbabilityOfTheSamplesGetAnotherSamplesDifferentCaption() {
        List<String> captions = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            captions.add("caption " + (i % 40)); // some captions repeat: a negative must still differ in text
        }
        ItmNegatives itm = new ItmNegatives();
        assertEquals(0.1, itm.itmProbability());
        Random rnd = new Random(17);
        int[] samples = new int[50];
        for (int i = 0; i < 50; i++) {
            samples[i] = i;
        }
        int negatives = 0;
        int total = 0;
        for (int round = 0; round < 400; round++) {
            int[] c = itm.draw(captions, samples, rnd);
            long[] labels = ItmNegatives.labels(c);
            for (int i = 0; i < c.length; i++) {
                total++;
                if (c[i] == ItmNegatives.POSITIVE) {
                    assertEquals(1, labels[i]);
                } else {
                    negatives++;
                    assertEquals(0, labels[i]);
                    assertNotEquals(captions.get(samples[i]), captions.get(c[i]), "a negative keeps its own text");
                }
            }
        }
        assertEquals(0.1, (double) negatives / total, 0.01, "negative share over " + total);
    }

    @Test
    void probabilityZeroMakesNoNegativesAndNoLabels() {
        ItmNegatives none = new ItmNegatives(0);
        assertFalse(none.labelsPresent());
        int[] c = none.draw(List.of("a", "b"), new int[] {0, 1, 0, 1}, new Random(1));
        assertArrayEquals(new int[] {-1, -1, -1, -1}, c);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new ItmNegatives(1).draw(List.of("same", "same"), new int[] {0}, new Random(1)));
        assertTrue(e.getMessage().startsWith("no caption different from \"same\""), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ItmNegatives(1.5));
    }
}
