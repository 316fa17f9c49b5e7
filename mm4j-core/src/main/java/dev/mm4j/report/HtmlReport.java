package dev.mm4j.report;

import dev.mm4j.util.AtomicFiles;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * A self-contained HTML run report: a summary table (settings and results), the training chart, and a gallery
 * of samples (thumbnail, question, prediction, human answers, VQA score with a correct / partly / wrong
 * mark). Every text is HTML-escaped; the page is written atomically.
 *
 * <pre>{@code
 * HtmlReport.create("FLAVA TextVQA fine-tuning")
 *     .summary("learning rate", 1e-4).summary("val accuracy", "41.3 %")
 *     .chart(runDir.resolve("loss_accuracy.png"))
 *     .sample(HtmlReport.Sample.withImageBytes(jpeg, "what brand?", "nokia", answers, 1.0))
 *     .write(runDir.resolve("report.html"));
 * }</pre>
 */
public final class HtmlReport {
    static {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    /** Longest side of the embedded thumbnails, in pixels. */
    public static final int THUMBNAIL_SIZE = 192;

    /**
     * One gallery row. Give the image either as a file (linked relative to the report) or as an embedded
     * data URI ({@link #withImageBytes} makes a PNG thumbnail); both may be null.
     */
    public record Sample(Path imageFile, String imageDataUri, String question, String prediction,
            List<String> answers, double score) {

        /** A sample whose image is a file on disk, linked from the page. */
        public static Sample withImageFile(Path imageFile, String question, String prediction, List<String> answers,
                double score) {
            return new Sample(imageFile, null, question, prediction, answers, score);
        }

        /** A sample whose encoded image (JPEG/PNG/...) is shrunk to a PNG thumbnail embedded in the page. */
        public static Sample withImageBytes(byte[] encodedImage, String question, String prediction,
                List<String> answers, double score) {
            String uri = null;
            if (encodedImage != null) {
                try {
                    uri = "data:image/png;base64," + Base64.getEncoder()
                            .encodeToString(thumbnailPng(encodedImage, THUMBNAIL_SIZE));
                } catch (IOException e) {
                    uri = null; // undecodable image: the row shows no picture
                }
            }
            return new Sample(null, uri, question, prediction, answers, score);
        }
    }

    private final String title;
    private final Map<String, String> summary = new LinkedHashMap<>();
    private final List<Sample> samples = new ArrayList<>();
    private final List<Table> tables = new ArrayList<>();
    private Path chart;
    private boolean embedChart;

    private HtmlReport(String title) {
        this.title = title;
    }

    public static HtmlReport create(String title) {
        return new HtmlReport(title);
    }

    /** Adds a row to the summary table (value shown with {@code toString}; doubles with up to 6 significant digits). */
    public HtmlReport summary(String key, Object value) {
        summary.put(key, format(value));
        return this;
    }

    /** Adds all entries, in iteration order. */
    public HtmlReport summary(Map<String, ?> entries) {
        entries.forEach(this::summary);
        return this;
    }

    /** A titled table of text cells (e.g. accuracy by question type), shown after the summary. */
    public record Table(String title, String caption, List<String> header, List<List<String>> rows) {
        public Table {
            header = List.copyOf(header);
            rows = rows.stream().map(List::copyOf).toList();
        }
    }

    /** Adds a table after the summary (tables keep the order they were added in). */
    public HtmlReport table(Table t) {
        tables.add(t);
        return this;
    }

    /** The chart image, linked relative to the report. */
    public HtmlReport chart(Path png) {
        this.chart = png;
        this.embedChart = false;
        return this;
    }

    /** The chart image, embedded in the page as base64 (the page then stands alone). */
    public HtmlReport chartEmbedded(Path png) {
        this.chart = png;
        this.embedChart = true;
        return this;
    }

    public HtmlReport sample(Sample s) {
        samples.add(s);
        return this;
    }

    public HtmlReport samples(List<Sample> s) {
        samples.addAll(s);
        return this;
    }

    /** Writes the page atomically to {@code html}. */
    public void write(Path html) throws IOException {
        AtomicFiles.writeString(html, render(html.toAbsolutePath().getParent()));
    }

    /** The page's HTML; file links are made relative to {@code baseDir}. */
    public String render(Path baseDir) throws IOException {
        StringBuilder h = new StringBuilder(8192);
        h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>")
                .append(escape(title)).append("</title>\n<style>\n")
                .append("body{font-family:system-ui,sans-serif;margin:24px;color:#222}\n")
                .append("table{border-collapse:collapse;margin-bottom:24px}\n")
                .append("th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\n")
                .append("th{background:#f3f3f3}\n")
                .append(".ok{color:#1a7f37;font-weight:bold}.part{color:#9a6700;font-weight:bold}")
                .append(".bad{color:#cf222e;font-weight:bold}\n")
                .append("img.thumb{max-width:" + THUMBNAIL_SIZE + "px;max-height:" + THUMBNAIL_SIZE + "px}\n")
                .append("img.chart{max-width:100%}\n</style>\n</head>\n<body>\n");
        h.append("<h1>").append(escape(title)).append("</h1>\n");

        if (!summary.isEmpty()) {
            h.append("<h2>Summary</h2>\n<table class=\"summary\">\n");
            for (var e : summary.entrySet()) {
                h.append("<tr><th>").append(escape(e.getKey())).append("</th><td>").append(escape(e.getValue()))
                        .append("</td></tr>\n");
            }
            h.append("</table>\n");
        }

        for (Table t : tables) {
            h.append("<h2>").append(escape(t.title())).append("</h2>\n");
            if (t.caption() != null && !t.caption().isEmpty()) {
                h.append("<p>").append(escape(t.caption())).append("</p>\n");
            }
            h.append("<table class=\"data\">\n<tr>");
            for (String c : t.header()) {
                h.append("<th>").append(escape(c)).append("</th>");
            }
            h.append("</tr>\n");
            for (List<String> row : t.rows()) {
                h.append("<tr>");
                for (String c : row) {
                    h.append("<td>").append(escape(c)).append("</td>");
                }
                h.append("</tr>\n");
            }
            h.append("</table>\n");
        }

        if (chart != null) {
            h.append("<h2>Training curves</h2>\n<img class=\"chart\" alt=\"loss and accuracy\" src=\"");
            if (embedChart) {
                h.append("data:image/png;base64,").append(Base64.getEncoder().encodeToString(Files.readAllBytes(chart)));
            } else {
                h.append(escape(link(baseDir, chart)));
            }
            h.append("\">\n");
        }

        if (!samples.isEmpty()) {
            long ok = samples.stream().filter(s -> s.score() >= 1.0).count();
            long part = samples.stream().filter(s -> s.score() > 0 && s.score() < 1.0).count();
            h.append("<h2>Samples</h2>\n<p>").append(samples.size()).append(" shown: ").append(ok)
                    .append(" correct, ").append(part).append(" partly correct, ")
                    .append(samples.size() - ok - part).append(" wrong.</p>\n");
            h.append("<table class=\"samples\">\n<tr><th>image</th><th>question</th><th>prediction</th>")
                    .append("<th>human answers</th><th>score</th></tr>\n");
            for (Sample s : samples) {
                h.append("<tr><td>");
                String src = s.imageDataUri() != null ? s.imageDataUri()
                        : s.imageFile() != null ? link(baseDir, s.imageFile()) : null;
                if (src != null) {
                    h.append("<img class=\"thumb\" alt=\"\" src=\"").append(escape(src)).append("\">");
                }
                h.append("</td><td>").append(escape(s.question()))
                        .append("</td><td>").append(escape(s.prediction()))
                        .append("</td><td>").append(escape(answersText(s.answers())))
                        .append("</td><td>").append(mark(s.score())).append("</td></tr>\n");
            }
            h.append("</table>\n");
        }
        h.append("</body>\n</html>\n");
        return h.toString();
    }

    private static String mark(double score) {
        String num = String.format(Locale.ROOT, "%.2f", score);
        if (score >= 1.0) return "<span class=\"ok\" title=\"correct\">&#10003; " + num + "</span>";
        if (score > 0) return "<span class=\"part\" title=\"partly correct\">~ " + num + "</span>";
        return "<span class=\"bad\" title=\"wrong\">&#10007; " + num + "</span>";
    }

    /** The answers with counts, most frequent first, e.g. {@code nokia ×7, nokia phone ×2, phone}. */
    static String answersText(List<String> answers) {
        if (answers == null || answers.isEmpty()) return "";
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (String a : answers) counts.merge(a, 1, Integer::sum);
        List<Map.Entry<String, Integer>> es = new ArrayList<>(counts.entrySet());
        es.sort((x, y) -> Integer.compare(y.getValue(), x.getValue()));
        StringBuilder sb = new StringBuilder();
        for (var e : es) {
            if (sb.length() > 0) sb.append(", ");
            sb.append(e.getKey());
            if (e.getValue() > 1) sb.append(" \u00d7").append(e.getValue());
        }
        return sb.toString();
    }

    private static String link(Path baseDir, Path file) {
        Path f = file.toAbsolutePath().normalize();
        String rel;
        try {
            rel = baseDir == null ? f.toString() : baseDir.toAbsolutePath().normalize().relativize(f).toString();
        } catch (IllegalArgumentException e) {
            rel = f.toString();
        }
        List<String> segs = new ArrayList<>();
        for (String seg : rel.replace('\\', '/').split("/", -1)) {
            segs.add(java.net.URLEncoder.encode(seg, java.nio.charset.StandardCharsets.UTF_8).replace("+", "%20"));
        }
        return String.join("/", segs);
    }

    private static String format(Object v) {
        if (v == null) return "";
        if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (d == Math.rint(d) && Math.abs(d) < 1e15) return Long.toString((long) d);
            return String.format(Locale.ROOT, "%.6g", d).replaceAll("(\\.\\d*?)0+(e|$)", "$1$2").replace(".e", "e")
                    .replaceAll("\\.$", "");
        }
        return v.toString();
    }

    /** Escapes {@code & < > " '} for HTML text and attribute values. */
    public static String escape(String s) {
        if (s == null) return "";
        StringBuilder sb = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> sb.append("&amp;");
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '"' -> sb.append("&quot;");
                case '\'' -> sb.append("&#39;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }

    /** Decodes an image and re-encodes it as a PNG whose longest side is at most {@code maxSide}. */
    public static byte[] thumbnailPng(byte[] encodedImage, int maxSide) throws IOException {
        BufferedImage src = dev.mm4j.data.ImageTransform.decode(encodedImage, "image"); // pixel-limited
        double scale = Math.min(1.0, (double) maxSide / Math.max(src.getWidth(), src.getHeight()));
        int w = Math.max(1, (int) Math.round(src.getWidth() * scale));
        int hgt = Math.max(1, (int) Math.round(src.getHeight() * scale));
        BufferedImage dst = dev.mm4j.util.Images.scale(src, w, hgt);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(dst, "png", out);
        return out.toByteArray();
    }
}
