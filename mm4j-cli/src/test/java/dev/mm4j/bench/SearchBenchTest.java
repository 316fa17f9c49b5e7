package dev.mm4j.bench;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** bench-search on a few generated signs and a small random index: every figure is printed and plausible. */
class SearchBenchTest {
    @Test
    void printsThroughputRecallNextToExactAndLatencyAtScale() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        new SearchBench(new SearchBench.Options(null, null, "val", 40, List.of(500), 30, 5, 1, 3), new PrintStream(buf, true))
                .run();
        String out = buf.toString();
        Matcher images = Pattern.compile("images\\s+40\\s+([0-9.]+)\\s+([0-9.]+)").matcher(out);
        assertTrue(images.find(), out);
        assertTrue(Double.parseDouble(images.group(2)) > 0, out);
        assertTrue(Pattern.compile("texts\\s+40\\s+[0-9.]+\\s+[0-9.]+").matcher(out).find(), out);
        // the captioned images: exact and HNSW rows with R@1 <= R@5
        Matcher recall = Pattern.compile("(exact \\(brute force\\)|Lucene HNSW, \\d+ candidates)\\s+([0-9.]+)%\\s+([0-9.]+)%")
                .matcher(out);
        int rows = 0;
        while (recall.find()) {
            rows++;
            assertTrue(Double.parseDouble(recall.group(2)) <= Double.parseDouble(recall.group(3)), recall.group());
        }
        assertEquals(3, rows, out);
        // the scale table: 500 vectors built, exact search finds all of its own top k, HNSW at 100 candidates nearly all
        assertTrue(out.contains("500 vectors indexed in"), out);
        Matcher exact = Pattern.compile("exact \\(brute force\\)\\s+([0-9.]+)\\s+([0-9.]+)\\s+100\\.0%").matcher(out);
        assertTrue(exact.find(), out);
        assertTrue(Double.parseDouble(exact.group(1)) <= Double.parseDouble(exact.group(2)), "p50 <= p99: " + exact.group());
        Matcher hnsw = Pattern.compile("HNSW, 100 candidates\\s+([0-9.]+)\\s+([0-9.]+)\\s+([0-9.]+)%").matcher(out);
        assertTrue(hnsw.find(), out);
        assertTrue(Double.parseDouble(hnsw.group(3)) >= 90, hnsw.group());
        float[] v = SearchBench.unit(new java.util.Random(1), 64);
        double norm = 0;
        for (float x : v) {
            norm += x * x;
        }
        assertEquals(1.0, norm, 1e-5);
    }
}
