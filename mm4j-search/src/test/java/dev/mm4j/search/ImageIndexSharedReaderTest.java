package dev.mm4j.search;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ImageIndex#shared()}: one reader for every query, refreshed when the index changes, unavailable while it is gone. */
class ImageIndexSharedReaderTest {
    @TempDir Path tmp;

    static List<ImageIndex.Entry> entries(int n) {
        List<ImageIndex.Entry> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            float[] v = new float[4];
            v[i % 4] = 1;
            v[(i + 1) % 4] = 0.1f * i;
            out.add(new ImageIndex.Entry("/img" + i + ".png", "%064x".formatted(i), null, v));
        }
        return out;
    }

    @Test
    void oneReaderRefreshedWhenTheIndexChangesAndUnavailableWhileItIsGone() throws Exception {
        Path dir = tmp.resolve("idx");
        ImageIndex.create(dir, entries(3), "none");
        float[] q = {1, 0, 0, 0};
        try (ImageIndex idx = ImageIndex.open(dir)) {
            Object first;
            try (ImageIndex.Searcher a = idx.shared(); ImageIndex.Searcher b = idx.shared()) {
                assertSame(a.reader, b.reader, "the same reader for every query");
                first = a.reader;
                assertEquals(3, a.size());
            }
            idx.search(q, 2);
            idx.find("%064x".formatted(1)).orElseThrow();
            try (ImageIndex.Searcher c = idx.shared()) {
                assertSame(first, c.reader, "search and find reopened nothing");
            }
            ImageIndex.create(dir, entries(5), "none"); // rebuilt on disk while open
            Thread.sleep(1200);
            assertEquals(5, idx.size());
            assertEquals(5, idx.search(q, 10).size());
            Path away = tmp.resolve("away");
            Files.move(dir, away);
            Thread.sleep(1200);
            ImageIndex.UnavailableException e = assertThrows(ImageIndex.UnavailableException.class, () -> idx.search(q, 1));
            assertTrue(e.getMessage().startsWith("index unavailable: " + dir), e.getMessage());
            assertFalse(idx.available());
            Files.move(away, dir);
            Thread.sleep(1200);
            assertTrue(idx.available());
            assertEquals(5, idx.search(q, 10).size());
        }
    }
}
