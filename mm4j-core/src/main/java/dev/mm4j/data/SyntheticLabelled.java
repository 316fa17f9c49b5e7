package dev.mm4j.data;

import dev.mm4j.util.AtomicFiles;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;

/**
 * Labelled data to run without downloads, in the layouts of the real sets ({@link LabelledExamples}):
 * <ul>
 *   <li>{@link #renderedSentences}: short positive / negative phrases rendered as images in torchvision's ImageFolder
 *       layout ({@code train|val|test/negative|positive/N.png}), like RenderedSST2;</li>
 *   <li>{@link #textPairs}: a GLUE-style TSV sentence-pair set ({@code train.tsv}, {@code dev.tsv}, {@code test.tsv}
 *       with QNLI's header {@code index question sentence label}): a question and a sentence, {@code entailment} when
 *       the sentence answers the kind of question asked (a colour, a number, a place, a time), else
 *       {@code not_entailment}; half of each.</li>
 * </ul>
 * Deterministic for a seed. Labels are balanced, so the majority-class baseline is 50%.
 */
public final class SyntheticLabelled {
    /** Words of the rendered phrases, by sentiment. */
    public static final List<String> POSITIVE = List.of("good", "great", "fun", "superb", "lovely", "moving", "witty", "smart");
    public static final List<String> NEGATIVE = List.of("bad", "dull", "awful", "boring", "weak", "stale", "messy", "poor");
    private static final List<String> NOUNS = List.of("film", "movie", "plot", "cast", "story", "script");

    private SyntheticLabelled() {}

    /** How many examples per split. */
    public record Sizes(int train, int val, int test) {}

    /**
     * Writes {@code out/{train,val,test}/{negative,positive}/N.png}: each image one phrase ("so good", "dull plot", ...)
     * in black or dark ink on a light background, its size, place and font varied; {@code size} pixels square.
     */
    public static void renderedSentences(Path out, Sizes sizes, int size, long seed) throws IOException {
        String[] splits = {"train", "val", "test"};
        int[] counts = {sizes.train(), sizes.val(), sizes.test()};
        for (int s = 0; s < splits.length; s++) {
            Random r = new Random(seed * 1000003L + s);
            for (int i = 0; i < counts[s]; i++) {
                boolean positive = i % 2 == 0;
                List<String> words = positive ? POSITIVE : NEGATIVE;
                String word = words.get(r.nextInt(words.size()));
                String phrase = r.nextBoolean() ? word : word + " " + NOUNS.get(r.nextInt(NOUNS.size()));
                Path f = out.resolve(splits[s]).resolve(positive ? "positive" : "negative")
                        .resolve(String.format("%05d.png", i));
                Files.createDirectories(f.getParent());
                byte[] png = render(r, phrase, size);
                AtomicFiles.write(f, o -> o.write(png));
            }
        }
    }

    private static byte[] render(Random r, String phrase, int size) throws IOException {
        BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            int bg = 215 + r.nextInt(40);
            g.setColor(new Color(bg, bg - r.nextInt(15), bg - r.nextInt(15)));
            g.fillRect(0, 0, size, size);
            String[] lines = phrase.split(" ");
            int style = r.nextBoolean() ? Font.BOLD : Font.PLAIN;
            Font font = new Font(r.nextBoolean() ? Font.SANS_SERIF : Font.SERIF, style, 12);
            float px = size * (0.30f + 0.08f * r.nextFloat()) / lines.length * (lines.length == 1 ? 1f : 1.4f);
            font = font.deriveFont(px);
            g.setFont(font);
            FontMetrics fm = g.getFontMetrics();
            int widest = 0;
            for (String l : lines) {
                widest = Math.max(widest, fm.stringWidth(l));
            }
            if (widest > size - 4) {
                font = font.deriveFont(px * (size - 4) / (float) widest);
                g.setFont(font);
                fm = g.getFontMetrics();
                widest = 0;
                for (String l : lines) {
                    widest = Math.max(widest, fm.stringWidth(l));
                }
            }
            int lineH = fm.getAscent() + fm.getDescent();
            int blockH = lineH * lines.length;
            int x0 = 2 + r.nextInt(Math.max(1, size - 4 - widest));
            int y0 = 2 + r.nextInt(Math.max(1, size - 4 - blockH));
            int ink = r.nextInt(60);
            g.setColor(new Color(ink, ink, ink + r.nextInt(40)));
            for (int i = 0; i < lines.length; i++) {
                g.drawString(lines[i], x0, y0 + i * lineH + fm.getAscent());
            }
        } finally {
            g.dispose();
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ImageIO.write(img, "png", bytes);
        return bytes.toByteArray();
    }

    private static final String[][] QUESTIONS = {
        {"what colour is the %s?", "which colour is the %s?"},
        {"how many %s are there?", "how many %s are left?"},
        {"where is the %s?", "in which city is the %s?"},
        {"when was the %s built?", "what year was the %s built?"},
    };
    private static final String[][] ANSWERS = {
        {"red", "green", "blue", "yellow", "purple", "orange"},
        {"three", "seven", "twelve", "forty", "nine", "two"},
        {"paris", "london", "tokyo", "cairo", "lima", "oslo"},
        {"1990", "2004", "1875", "1961", "2012", "1930"},
    };
    private static final String[] SENTENCES = {"the %s is %s.", "the %s: %s."};
    private static final String[] THINGS = {"house", "bridge", "tower", "boat", "shop", "museum", "garden", "library"};

    /**
     * Writes {@code train.tsv}, {@code dev.tsv}, {@code test.tsv} (test without labels, as GLUE's) in QNLI's layout.
     */
    public static void textPairs(Path out, Sizes sizes, long seed) throws IOException {
        Files.createDirectories(out);
        String[] files = {"train.tsv", "dev.tsv", "test.tsv"};
        int[] counts = {sizes.train(), sizes.val(), sizes.test()};
        for (int s = 0; s < files.length; s++) {
            Random r = new Random(seed * 1000003L + 17 + s);
            boolean labelled = s < 2;
            StringBuilder sb = new StringBuilder(labelled ? "index\tquestion\tsentence\tlabel\n" : "index\tquestion\tsentence\n");
            for (int i = 0; i < counts[s]; i++) {
                boolean entail = i % 2 == 0;
                int q = r.nextInt(QUESTIONS.length);
                int a = entail ? q : (q + 1 + r.nextInt(QUESTIONS.length - 1)) % QUESTIONS.length;
                String thing = THINGS[r.nextInt(THINGS.length)];
                String question = String.format(QUESTIONS[q][r.nextInt(QUESTIONS[q].length)], q == 1 ? thing + "s" : thing);
                String sentence = String.format(SENTENCES[r.nextInt(SENTENCES.length)], thing,
                        ANSWERS[a][r.nextInt(ANSWERS[a].length)]);
                sb.append(i).append('\t').append(question).append('\t').append(sentence);
                if (labelled) {
                    sb.append('\t').append(entail ? "entailment" : "not_entailment");
                }
                sb.append('\n');
            }
            AtomicFiles.writeString(out.resolve(files[s]), sb.toString());
        }
    }

    /** All files under {@code dir} (for tests and summaries). */
    static List<Path> files(Path dir) throws IOException {
        List<Path> out = new ArrayList<>();
        try (var s = Files.walk(dir)) {
            s.filter(Files::isRegularFile).sorted().forEach(out::add);
        }
        return out;
    }
}
