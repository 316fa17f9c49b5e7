package dev.mm4j.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressReporterTest {

    @Test
    void plainModePrintsPeriodicLinesWithLossRateAndEta() {
        var buf = new ByteArrayOutputStream();
        var clock = new AtomicLong(0);
        long sec = 1_000_000_000L;
        try (var p = new ProgressReporter("train", 100, "step", 1, 0, ProgressReporter.Mode.PLAIN,
                new PrintStream(buf, true, StandardCharsets.UTF_8), Duration.ofSeconds(30), clock::get)) {
            clock.set(1 * sec);
            p.update(1, 2.5, 16.0);          // first update always prints
            clock.set(10 * sec);
            p.update(2, 2.4, 16.0);          // within 30 s: silent
            clock.set(40 * sec);
            p.update(40, 1.25, 32.0);        // prints; ETA = 40 s * 60 / 40 = 60 s
        }                                    // close prints the final line
        String[] lines = buf.toString(StandardCharsets.UTF_8).split("\n");
        assertEquals(3, lines.length, String.join("\n", lines));
        assertTrue(lines[0].startsWith("[train] 1/100 (1.0%) step | loss 2.5000 | 16.0 samples/s"), lines[0]);
        assertEquals("[train] 40/100 (40.0%) steps | loss 1.2500 | 32.0 samples/s | elapsed 0:00:40 | ETA 0:01:00",
                lines[1]);
        assertTrue(lines[2].startsWith("[train] 40/100"), lines[2]);
    }

    @Test
    void offModePrintsNothingAndBytesUseMiB() {
        var buf = new ByteArrayOutputStream();
        try (var p = new ProgressReporter("x", 10, "step", 1, 0, ProgressReporter.Mode.OFF,
                new PrintStream(buf, true, StandardCharsets.UTF_8), Duration.ZERO, System::nanoTime)) {
            p.stepTo(5);
        }
        assertEquals("", buf.toString(StandardCharsets.UTF_8));
        var clock = new AtomicLong(0);
        var p = new ProgressReporter("f.bin", -1, "MiB", 1 << 20, 0, ProgressReporter.Mode.PLAIN,
                new PrintStream(new ByteArrayOutputStream()), Duration.ZERO, clock::get);
        p.stepTo(3L << 20);
        assertEquals("[f.bin] 3.0 MiB | elapsed 0:00:00", p.plainLine());
    }

    @Test
    void barModeRendersWithoutFailing() {
        var buf = new ByteArrayOutputStream();
        try (var p = new ProgressReporter("train", 10, "step", 1, 0, ProgressReporter.Mode.BAR,
                new PrintStream(buf, true, StandardCharsets.UTF_8), Duration.ZERO, System::nanoTime)) {
            p.update(5, 1.0, 2.0);
        }
        String s = buf.toString(StandardCharsets.UTF_8);
        assertTrue(s.contains("train"), s);
    }
}
