package dev.mm4j.cli.charts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.report.HtmlReport;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HtmlReportTest {
    @TempDir Path dir;

    static byte[] jpeg(int w, int h) throws Exception {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        var g = img.createGraphics();
        g.setColor(Color.ORANGE);
        g.fillRect(0, 0, w, h);
        g.dispose();
        var out = new ByteArrayOutputStream();
        ImageIO.write(img, "jpg", out);
        return out.toByteArray();
    }

    @Test
    void pageHasSummaryChartGalleryAndEscapesEverything() throws Exception {
        Path run = dir.resolve("run");
        Path png = run.resolve("charts/loss_accuracy.png");
        Charts.writeLossAccuracyPng(ChartsTest.fakeRun(), png, 500, 350);
        Path imgFile = dir.resolve("images/a b.jpg");
        Files.createDirectories(imgFile.getParent());
        Files.write(imgFile, jpeg(40, 30));

        Path html = run.resolve("report.html");
        HtmlReport.create("Run <1> & \"friends\"")
                .summary("learning rate", 1e-4)
                .summary("steps", 3000)
                .summary("val accuracy", 0.41234567)
                .summary("<script>alert('k')</script>", "v")
                .chart(png)
                .sample(HtmlReport.Sample.withImageBytes(jpeg(640, 480),
                        "<script>alert(1)</script> what brand?", "<b>nokia</b>",
                        List.of("nokia", "nokia", "nokia", "nokia", "phone", "nokia", "nokia", "a&b", "nokia",
                                "nokia"), 1.0))
                .sample(HtmlReport.Sample.withImageFile(imgFile, "what year?", "1999",
                        List.of("1998", "1999", "1999"), 0.6))
                .sample(HtmlReport.Sample.withImageBytes(new byte[] {1, 2, 3}, "broken image?", "no",
                        List.of("yes"), 0.0))
                .write(html);

        String s = Files.readString(html);
        assertFalse(s.contains("<script>"), "raw <script> must not appear");
        assertTrue(s.contains("&lt;script&gt;alert(1)&lt;/script&gt; what brand?"));
        assertTrue(s.contains("&lt;script&gt;alert(&#39;k&#39;)&lt;/script&gt;"));
        assertTrue(s.contains("&lt;b&gt;nokia&lt;/b&gt;"));
        assertTrue(s.contains("<title>Run &lt;1&gt; &amp; &quot;friends&quot;</title>"));
        assertTrue(s.contains("nokia \u00d78, phone, a&amp;b"), s);
        assertTrue(s.contains("<th>learning rate</th><td>0.0001</td>"), s);
        assertTrue(s.contains("<th>steps</th><td>3000</td>"));
        assertTrue(s.contains("<th>val accuracy</th><td>0.412346</td>"), s);
        assertTrue(s.contains("src=\"charts/loss_accuracy.png\""));
        assertTrue(s.contains("src=\"../images/a%20b.jpg\""), s);
        assertTrue(s.contains("&#10003; 1.00") && s.contains("~ 0.60") && s.contains("&#10007; 0.00"));
        assertTrue(s.contains("3 shown: 1 correct, 1 partly correct, 1 wrong."));

        // the embedded thumbnail decodes and is at most THUMBNAIL_SIZE on its longest side
        var m = Pattern.compile("data:image/png;base64,([A-Za-z0-9+/=]+)").matcher(s);
        assertTrue(m.find());
        BufferedImage thumb = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(m.group(1))));
        assertEquals(HtmlReport.THUMBNAIL_SIZE, thumb.getWidth());
        assertEquals(144, thumb.getHeight());
    }

    @Test
    void tablesComeAfterTheSummaryInOrderAndEscaped() throws Exception {
        String s = HtmlReport.create("t").summary("steps", 5)
                .table(new HtmlReport.Table("VQA accuracy by question type", "types from <templates>",
                        List.of("question type", "VQA accuracy"), List.of(List.of("reading", "81.50%"), List.of("a<b", "9%"))))
                .table(new HtmlReport.Table("second", null, List.of("x"), List.of(List.of("1"))))
                .render(dir);
        int summary = s.indexOf("<h2>Summary</h2>");
        int first = s.indexOf("<h2>VQA accuracy by question type</h2>\n<p>types from &lt;templates&gt;</p>");
        int second = s.indexOf("<h2>second</h2>\n<table");
        assertTrue(summary >= 0 && first > summary && second > first, s);
        assertTrue(s.contains("<tr><th>question type</th><th>VQA accuracy</th></tr>\n<tr><td>reading</td><td>81.50%</td></tr>\n"
                + "<tr><td>a&lt;b</td><td>9%</td></tr>\n</table>"), s);
    }

    @Test
    void embeddedChartStandsAlone() throws Exception {
        Path png = dir.resolve("c.png");
        Charts.writeLossAccuracyPng(ChartsTest.fakeRun(), png, 300, 200);
        String s = HtmlReport.create("t").chartEmbedded(png).render(dir);
        assertTrue(s.contains("<img class=\"chart\" alt=\"loss and accuracy\" src=\"data:image/png;base64,"));
        assertEquals("a &amp; &lt;b&gt; &quot;c&quot; &#39;d&#39;", HtmlReport.escape("a & <b> \"c\" 'd'"));
    }
}
