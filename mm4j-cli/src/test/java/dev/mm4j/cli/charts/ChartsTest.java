package dev.mm4j.cli.charts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.report.MetricsLog;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChartsTest {
    @TempDir Path dir;

    static List<MetricsLog.Entry> fakeRun() {
        List<MetricsLog.Entry> m = new ArrayList<>();
        java.util.Random r = new java.util.Random(1);
        for (int s = 1; s <= 300; s++) {
            double loss = 4.0 * Math.exp(-s / 80.0) + 0.5 + 0.3 * r.nextGaussian();
            m.add(MetricsLog.Entry.train(s, loss, 1e-4, 1.0, 32, s / 100.0));
            if (s % 50 == 0) m.add(MetricsLog.Entry.validation(s, 0.1 + 0.3 * (1 - Math.exp(-s / 100.0)), s / 100.0));
        }
        m.add(MetricsLog.Entry.train(301, Double.NaN, 1e-4, 1.0, 32, 3.01)); // ignored, not drawn
        return m;
    }

    @Test
    void writesADecodablePngOfTheRequestedSize() throws Exception {
        Path png = dir.resolve("charts/loss_accuracy.png");
        Charts.writeLossAccuracyPng(fakeRun(), png);
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img);
        assertEquals(Charts.DEFAULT_WIDTH, img.getWidth());
        assertEquals(Charts.DEFAULT_HEIGHT, img.getHeight());
        try (var s = Files.list(png.getParent())) {
            assertEquals(1, s.count(), "no temp file left");
        }
    }

    @Test
    void worksWithoutValidationAndWithNothing() throws Exception {
        Path a = dir.resolve("a.png");
        Charts.writeLossAccuracyPng(List.of(MetricsLog.Entry.train(1, 1.0, 1e-4, 1, 1, 0)), a, 400, 300);
        BufferedImage img = ImageIO.read(a.toFile());
        assertEquals(400, img.getWidth());
        assertEquals(300, img.getHeight());
        Path b = dir.resolve("b.png");
        Charts.writeLossAccuracyPng(List.of(), b, 320, 200);
        assertTrue(Files.size(b) > 0);
        assertNotNull(ImageIO.read(b.toFile()));
    }
}
