package dev.mm4j.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class VqaAccuracyTest {

    /** Expected values were produced by running the vqaEval.py rules in Python 3. */
    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '~', value = {
        "Two|2",
        "the cat|cat",
        "dont|don't",
        "isnt|isn't",
        "youre|you're",
        "yes.|yes",
        "yes|yes",
        "1,000|1000",
        "1000|1000",
        "1,000 dollars, maybe|1000 dollars maybe",
        "hello-world|hello world",
        "hello - world|hello world",
        "3.5|3.5",
        "U.S.A.|usa",
        "coca-cola, inc|coca cola inc",
        "a, b|b",
        "Im here|im here",
        "e.g.|eg",
        "(555) 123-4567|555 123 4567",
        "what?!|what",
        "1.000,5|1.0005",
        "$1,000.00|$1000.00",
        "10.|10",
        "one two three four|1 2 3 4",
        "None|0",
        "a.b|ab",
        "it's|it's",
        "x , y-z|x y z",
    })
    void normalizesLikeVqaEval(String in, String expected) {
        assertEquals(expected, VqaAccuracy.normalize(in));
    }

    @Test
    void whitespaceAndTabsAndNewlines() {
        assertEquals("end", VqaAccuracy.normalize("  The\tEnd\n"));
        assertEquals("", VqaAccuracy.normalize("   "));
        assertEquals("", VqaAccuracy.normalize("the"));
    }

    @Test
    void periodStripRemovesAtMost32Periods() {
        // re.sub(pattern, "", text, re.UNICODE): the flag lands in the count slot (32)
        assertEquals("........", VqaAccuracy.normalize(".".repeat(40)));
    }

    private static List<String> answers(String hit, int hits, String miss) {
        List<String> a = new ArrayList<>(Collections.nCopies(hits, hit));
        a.addAll(Collections.nCopies(10 - hits, miss));
        return a;
    }

    @Test
    void leaveOneOutScores() {
        assertEquals(1.0, VqaAccuracy.score("cat", answers("cat", 10, "dog")), 1e-12);
        assertEquals(1.0, VqaAccuracy.score("cat", answers("cat", 4, "dog")), 1e-12);
        // 3 of 10 is NOT 1.0 under leave-one-out: the 3 subsets that drop a match see only 2 -> 2/3;
        // (3 * 2/3 + 7 * 1) / 10 = 0.9 (this is what vqaEval.py computes)
        assertEquals(0.9, VqaAccuracy.score("cat", answers("cat", 3, "dog")), 1e-12);
        assertEquals(0.6, VqaAccuracy.score("cat", answers("cat", 2, "dog")), 1e-12);
        assertEquals(0.3, VqaAccuracy.score("cat", answers("cat", 1, "dog")), 1e-12);
        assertEquals(0.0, VqaAccuracy.score("cat", answers("cat", 0, "dog")), 1e-12);
    }

    @Test
    void normalizationAppliesToBothSides() {
        assertEquals(1.0, VqaAccuracy.score("Two", answers("2", 4, "3")), 1e-12);
        assertEquals(0.9, VqaAccuracy.score("2", answers("two", 3, "3")), 1e-12);
        assertEquals(0.6, VqaAccuracy.score("The Cat.", answers("cat", 2, "dog")), 1e-12);
        assertEquals(0.3, VqaAccuracy.score("dont", List.of("don't", "no", "no", "no", "no", "no", "no", "no", "no",
                "no")), 1e-12);
        assertEquals(1.0, VqaAccuracy.score("1000", answers("1,000", 5, "1 000")), 1e-12);
        assertEquals(0.0, VqaAccuracy.score("", answers("cat", 10, "dog")), 1e-12);
        assertEquals(0.0, VqaAccuracy.score("cat", List.of()), 1e-12);
    }

    @Test
    void accumulator() {
        VqaAccuracy.Accumulator acc = new VqaAccuracy.Accumulator();
        assertEquals(0.0, acc.accuracy());
        assertEquals(1.0, acc.add("cat", answers("cat", 4, "dog")), 1e-12);
        assertEquals(0.3, acc.add("cat", answers("cat", 1, "dog")), 1e-12);
        acc.add("cat", answers("cat", 0, "dog"));
        acc.add("cat", answers("cat", 2, "dog"));
        assertEquals(4, acc.count());
        assertEquals((1.0 + 0.3 + 0.0 + 0.6) / 4, acc.accuracy(), 1e-12);
        VqaAccuracy.Accumulator other = new VqaAccuracy.Accumulator();
        other.addScore(1.0);
        acc.merge(other);
        assertEquals(5, acc.count());
        assertEquals(2.9 / 5, acc.accuracy(), 1e-12);
    }
}
