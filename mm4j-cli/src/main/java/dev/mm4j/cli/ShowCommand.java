package dev.mm4j.cli;

import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import dev.mm4j.util.AtomicFiles;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import javax.imageio.ImageIO;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mm4j show}: prints one sample and writes its image (500x500 PNG) and an HTML page. */
@Command(
        name = "show",
        mixinStandardHelpOptions = true,
        description = {
            "Display one TextVQA sample: print question id, question, answers, image id and size;",
            "write sample-<N>.png (the image resized to 500x500) and sample-<N>.html to --out."})
public final class ShowCommand implements Callable<Integer> {
    /** Side of the written PNG. */
    public static final int SIZE = 500;

    @Parameters(index = "0", paramLabel = "DATASET",
            description = "official json file or folder, a .parquet file, or a folder of parquet shards")
    Path dataset;

    @Option(names = "--split", defaultValue = "train", description = "train, val|validation, test (default ${DEFAULT-VALUE})")
    String split;

    @Option(names = "--index", defaultValue = "0", description = "sample index within the split (default ${DEFAULT-VALUE})")
    long index;

    @Option(names = "--out", defaultValue = ".", description = "where to write the PNG and HTML (default: current folder)")
    Path out;

    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    PrintStream stdout = System.out;

    @Override
    public Integer call() throws Exception {
        if (index < 0) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--index must be >= 0");
        }
        VqaSample s = null;
        long seen = 0;
        try (VqaDataset ds = TextVqaDatasets.open(dataset, split); VqaDataset.SampleIterator it = ds.iterator()) {
            while (it.hasNext()) {
                VqaSample x = it.next();
                if (seen++ == index) {
                    s = x;
                    break;
                }
            }
            if (s == null) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                        "--index " + index + " is past the end: " + ds.describe() + " has " + seen + " samples");
            }
        }
        byte[] bytes = s.image().readBytes();
        BufferedImage img = dev.mm4j.data.ImageTransform.decode(bytes, s.image().describe()); // pixel-limited
        stdout.println("sample      " + index + "  (" + s.origin() + ")");
        stdout.println("question_id " + s.questionId());
        stdout.println("question    " + s.question());
        stdout.println("image_id    " + s.imageId() + "  " + img.getWidth() + "x" + img.getHeight() + "  " + s.image().describe());
        stdout.println("answers     " + (s.answers().isEmpty() ? "(none)" : String.join(" | ", s.answers())));

        String png = "sample-" + index + ".png";
        String html = "sample-" + index + ".html";
        BufferedImage resized = dev.mm4j.util.Images.scale(img, SIZE, SIZE);
        AtomicFiles.write(out.resolve(png), o -> {
            if (!ImageIO.write(resized, "png", o)) {
                throw new IOException("no PNG writer");
            }
        });
        AtomicFiles.writeString(out.resolve(html), html(s, index, png, img.getWidth(), img.getHeight()));
        stdout.println("wrote       " + out.resolve(png) + ", " + out.resolve(html));
        return 0;
    }

    static String html(VqaSample s, long index, String png, int width, int height) {
        StringBuilder b = new StringBuilder();
        b.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>TextVQA sample ").append(index)
                .append("</title></head>\n<body>\n");
        b.append("<img src=\"").append(escape(png)).append("\" width=\"").append(SIZE).append("\" height=\"").append(SIZE)
                .append("\" alt=\"").append(escape(s.imageId())).append("\">\n");
        b.append("<p><b>Question</b> (id ").append(s.questionId()).append("): ").append(escape(s.question())).append("</p>\n");
        b.append("<p><b>Answers</b>:</p>\n<ol>\n");
        for (String a : s.answers()) {
            b.append("  <li>").append(escape(a)).append("</li>\n");
        }
        b.append("</ol>\n");
        b.append("<p>image_id ").append(escape(s.imageId())).append(", ").append(width).append("x").append(height)
                .append(" (").append(escape(s.origin())).append(")</p>\n");
        if (!s.extras().isEmpty()) {
            b.append("<table>\n");
            for (Map.Entry<String, Object> e : s.extras().entrySet()) {
                b.append("  <tr><td>").append(escape(e.getKey())).append("</td><td>").append(escape(String.valueOf(e.getValue())))
                        .append("</td></tr>\n");
            }
            b.append("</table>\n");
        }
        b.append("</body></html>\n");
        return b.toString();
    }

    /** Escapes &amp; &lt; &gt; &quot; &#39; for HTML text and attribute values. */
    public static String escape(String s) {
        StringBuilder b = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> b.append("&amp;");
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }
}
