package dev.mm4j.cli.charts;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.report.ChartRenderer;
import dev.mm4j.report.ConsoleBar;
import dev.mm4j.report.ProgressReporter;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The CLI installs its bar and its charts into core's seams (META-INF/services). */
class ConsoleBarsTest {

    @Test
    void barModeDrawsTheInstalledBarNotPlainLines() {
        assertInstanceOf(ConsoleBars.class, ConsoleBar.installed().orElseThrow());
        var buf = new ByteArrayOutputStream();
        try (var p = new ProgressReporter("train", 10, "step", 1, 0, ProgressReporter.Mode.BAR,
                new PrintStream(buf, true, StandardCharsets.UTF_8), Duration.ZERO, System::nanoTime)) {
            p.update(5, 1.0, 2.0);
        }
        String s = buf.toString(StandardCharsets.UTF_8);
        assertTrue(s.contains("train  50% [") && s.contains("5/10") && s.contains("loss 1.0000"), s);
        assertFalse(s.contains("[train]"), "a plain line, not the bar: " + s);
    }

    @Test
    void chartsAreTheInstalledRenderer() {
        assertInstanceOf(Charts.class, ChartRenderer.installed().orElseThrow());
    }
}
