package dev.mm4j.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MetricsLogTest {
    @TempDir Path dir;

    @Test
    void aStepsNamedLossPartsRoundTripInTheirOrder() throws Exception {
        Path f = dir.resolve("parts.jsonl");
        Map<String, Double> parts = new LinkedHashMap<>();
        parts.put("mlm", 2.25);
        parts.put("itm", 0.5);
        parts.put("global_contrastive", Double.NaN);
        var e = MetricsLog.Entry.train(4, 2.75, 1e-4, 1.5, 12, 0.5, parts);
        try (var log = MetricsLog.open(f)) {
            log.append(e);
        }
        assertEquals("{\"step\":4,\"loss\":2.75,\"lr\":1.0E-4,\"grad_norm\":1.5,\"samples_per_s\":12.0,\"epoch\":0.5,"
                + "\"loss_parts\":{\"mlm\":2.25,\"itm\":0.5,\"global_contrastive\":\"NaN\"}}", Files.readAllLines(f).get(0));
        MetricsLog.Entry back = MetricsLog.read(f).get(0);
        assertEquals(List.of("mlm", "itm", "global_contrastive"), List.copyOf(back.lossParts().keySet()));
        assertEquals(2.25, back.lossParts().get("mlm"));
        assertTrue(back.lossParts().get("global_contrastive").isNaN());
        assertTrue(MetricsLog.Entry.train(1, 1, 1, 1, 1, 1).lossParts().isEmpty());
    }

    @Test
    void roundTrip() throws Exception {
        Path f = dir.resolve("run/metrics.jsonl");
        var a = MetricsLog.Entry.train(1, 2.5, 1e-5, 0.75, 31.5, 0.01);
        var b = MetricsLog.Entry.validation(1, 0.4125, 0.01);
        var c = MetricsLog.Entry.train(2, Double.NaN, 2e-5, Double.POSITIVE_INFINITY, 30.0, 0.02);
        try (var log = MetricsLog.open(f)) {
            log.append(a);
            log.append(b);
            // flushed per line: readable while still open
            assertEquals(List.of(a, b), MetricsLog.read(f));
            log.append(c);
        }
        List<MetricsLog.Entry> back = MetricsLog.read(f);
        assertEquals(3, back.size());
        assertEquals(a, back.get(0));
        assertEquals(b, back.get(1));
        assertTrue(back.get(2).loss().isNaN());
        assertTrue(back.get(2).gradNorm().isInfinite());
        String first = Files.readAllLines(f).get(0);
        assertEquals("{\"step\":1,\"loss\":2.5,\"lr\":1.0E-5,\"grad_norm\":0.75,\"samples_per_s\":31.5,\"epoch\":0.01}",
                first);
        assertNull(back.get(1).loss());
        // appending again continues the file
        try (var log = MetricsLog.open(f)) {
            log.append(MetricsLog.Entry.train(3, 1.0, 1e-5, 0.5, 30, 0.03));
        }
        assertEquals(4, MetricsLog.read(f).size());
    }

    @Test
    void tornLastLineIsSkippedAndTruncateAfterRewrites() throws Exception {
        Path f = dir.resolve("metrics.jsonl");
        try (var log = MetricsLog.open(f)) {
            for (int s = 1; s <= 5; s++) log.append(MetricsLog.Entry.train(s, 5 - s, 1e-4, 1, 10, 0));
        }
        Files.writeString(f, "{\"step\":6,\"lo", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        assertEquals(5, MetricsLog.read(f).size());
        try (var log = MetricsLog.open(f)) {
            log.append(MetricsLog.Entry.train(6, 0.5, 1e-4, 1, 10, 0));
        }
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L),
                MetricsLog.read(f).stream().map(MetricsLog.Entry::step).toList());
        assertEquals(3, MetricsLog.truncateAfter(f, 3)); // steps 4, 5, 6
        assertEquals(List.of(1L, 2L, 3L), MetricsLog.read(f).stream().map(MetricsLog.Entry::step).toList());
        assertTrue(Files.readString(f).endsWith("\n"));
        assertEquals(List.of(), MetricsLog.read(dir.resolve("absent.jsonl")));
    }

    @Test
    void anEntryIsWrittenOncePerKindAndStepAcrossReopens() throws Exception {
        Path f = dir.resolve("once.jsonl");
        try (var log = MetricsLog.open(f)) {
            assertTrue(log.append(MetricsLog.Entry.train(9, 1.5, 1e-4, 1, 10, 1)));
            assertTrue(log.append(MetricsLog.Entry.validation(9, 0.25, 1)));
        }
        // a resumed finished run validates again at the same step: before, a second line
        try (var log = MetricsLog.open(f)) {
            assertFalse(log.append(MetricsLog.Entry.validation(9, 0.25, 1)));
            assertTrue(log.append(MetricsLog.Entry.train(10, 1.25, 1e-4, 1, 10, 1)));
        }
        assertEquals(List.of("9 null", "9 0.25", "10 null"), MetricsLog.read(f).stream()
                .map(e -> e.step() + " " + e.valAccuracy()).toList());
    }
}
