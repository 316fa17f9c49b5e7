package dev.mm4j.search;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code k} and {@code candidates} are bounded ({@link ImageIndex#MAX_K}) with a one-line message, not an OutOfMemoryError. */
class ImageIndexSearchBoundsTest {
    @TempDir Path tmp;

    @Test
    void kAndCandidatesBeyondTheBoundAreOneLineErrors() throws Exception {
        List<ImageIndex.Entry> entries = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            float[] v = new float[4];
            v[i % 4] = 1;
            v[(i + 1) % 4] = i;
            entries.add(new ImageIndex.Entry("/img" + i + ".png", "%064d".formatted(i), "caption " + i, v));
        }
        Path dir = tmp.resolve("idx");
        ImageIndex.create(dir, entries, "none");
        float[] q = {1, 0, 0, 0};
        try (ImageIndex idx = ImageIndex.open(dir); ImageIndex.Searcher s = idx.searcher()) {
            assertEquals(5, s.search(q, ImageIndex.MAX_K, ImageIndex.MAX_K).size(), "the bound itself is fine");
            assertEquals(5, s.exact(q, ImageIndex.MAX_K).size());
            for (int k : new int[] {1_000_000_000, Integer.MAX_VALUE, ImageIndex.MAX_K + 1, 0, -3}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.search(q, k, 10));
                assertEquals("k must be from 1 to 10000, got " + k, e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> s.exact(q, k));
                assertEquals("k must be from 1 to 10000, got " + k, e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> idx.search(q, k));
                assertEquals("k must be from 1 to 10000, got " + k, e.getMessage());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.search(q, 5, 1_000_000_000));
            assertEquals("candidates must be from 1 to 10000, got 1000000000", e.getMessage());
        }
    }
}
