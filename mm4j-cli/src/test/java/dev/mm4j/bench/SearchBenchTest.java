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
    void printsThroughputRecallNextToExactAndLatencyAtScaleForEachSetting() throws Exception {
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
        // the scale table: for each set (random 64-d, clustered 768-d) and encoding (float32, int8), an index of 500
        // vectors: its size, open and verify times, HNSW at 100 and 400 candidates, and exact search
        Pattern index = Pattern.compile("(random|clustered)\\s+500\\s+(\\d+)\\s+(float32|int8)\\s+([0-9.]+)\\s+([0-9.]+)\\s+"
                + "([0-9.]+)\\s+([0-9.]+)\\s+HNSW, 100 candidates\\s+([0-9.]+)\\s+([0-9.]+)\\s+([0-9.]+)%\n"
                + "\\s+HNSW, 400 candidates\\s+([0-9.]+)\\s+([0-9.]+)\\s+([0-9.]+)%\n"
                + "\\s+exact \\(brute force\\)\\s+([0-9.]+)\\s+([0-9.]+)\\s+100\\.0%");
        Matcher m = index.matcher(out);
        java.util.Map<String, Double> sizeMb = new java.util.HashMap<>();
        int indexes = 0;
        while (m.find()) {
            indexes++;
            String key = m.group(1) + " " + m.group(3);
            assertEquals(m.group(1).equals("random") ? "64" : "768", m.group(2), key);
            assertTrue(out.contains(m.group(1) + ": 500 vectors of " + m.group(2) + " (HNSW M 16, beam width 100, "
                    + m.group(3) + ") indexed in"), key);
            sizeMb.put(key, Double.parseDouble(m.group(5)));
            assertTrue(Double.parseDouble(m.group(5)) > 0 && Double.parseDouble(m.group(6)) > 0
                    && Double.parseDouble(m.group(7)) > 0, "size, open and verify times: " + m.group());
            for (int[] p : new int[][] {{8, 9}, {11, 12}, {14, 15}}) {
                assertTrue(Double.parseDouble(m.group(p[0])) <= Double.parseDouble(m.group(p[1])), "p50 <= p99: " + m.group());
            }
            // 100 candidates of 500 vectors find nearly all of the exact top 5 (int8 too: the candidates are ranked
            // by their float32 vectors), 400 at least as many
            double r100 = Double.parseDouble(m.group(10));
            double r400 = Double.parseDouble(m.group(13));
            assertTrue(r100 >= 90, key + ": " + m.group());
            assertTrue(r400 >= r100 - 1, key + ": " + m.group());
        }
        assertEquals(4, indexes, out);
        // int8 keeps the float32 vectors beside the quantized ones: a bigger index on disk
        assertTrue(sizeMb.get("clustered int8") > sizeMb.get("clustered float32"), sizeMb.toString());
        float[] v = SearchBench.unit(new java.util.Random(1), 64);
        double norm = 0;
        for (float x : v) {
            norm += x * x;
        }
        assertEquals(1.0, norm, 1e-5);
    }
}
