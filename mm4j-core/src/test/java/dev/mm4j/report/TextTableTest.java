package dev.mm4j.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class TextTableTest {
    @Test
    void alignsTheFirstColumnLeftAndTheOthersRight() {
        String t = TextTable.format("  ", List.of("type", "n", "accuracy"),
                List.of(List.of("reading", "252", "81.50%"), List.of("all", "400", "9.00%")));
        assertEquals("""
                  type       n  accuracy
                  -------  ---  --------
                  reading  252    81.50%
                  all      400     9.00%
                """, t);
        assertThrows(IllegalArgumentException.class, () -> TextTable.lines("", List.of("a", "b"), List.of(List.of("x"))));
    }
}
