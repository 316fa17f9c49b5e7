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
 *   <li>{@link #renderedSentences}: positive / negative words rendered as images in torchvision's ImageFolder
 *       layout ({@code train|val|test/negative|positive/N.png}), like RenderedSST2;</li>
 *   <li>{@link #textPairs}: a GLUE-style TSV sentence-pair set ({@code train.tsv}, {@code dev.tsv}, {@code test.tsv}
 *       with QNLI's header {@code index question sentence label}): a question and a sentence, {@code entailment} when
 *       the sentence answers the kind of question asked (a colour, a number, a place, a time), else
 *       {@code not_entailment}; half of each.</li>
 * </ul>
 * Deterministic for a seed. Labels are balanced, so the majority-class baseline is 50%.
 */
public final class SyntheticLabelled {
    /** The rendered words, by sentiment. */
    public static final List<String> POSITIVE = List.of("good", "great", "superb", "lovely");
    public static final List<String> NEGATIVE = List.of("bad", "dull", "awful", "boring");

    private SyntheticLabelled() {}

    /** How many examples per split. */
    public record Sizes(int train, int val, int test) {}

    /**
     * Writes {@code out/{train,val,test}/{negative,positive}/N.png}: each image one word of {@link #POSITIVE} or
     * {@link #NEGATIVE} in dark ink on a light background, bold sans-serif as wide as the image allows, centred with a
     * little jitter; {@code size} pixels square.
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
                String phrase = word;
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
            int bg = 225 + r.nextInt(31);
            g.setColor(new Color(bg, bg, bg));
            g.fillRect(0, 0, size, size);
            String[] lines = phrase.split(" ");
            // one typeface, each line as wide as the image allows (up to a cap), the block centred with a little jitter
            Font font = new Font(Font.SANS_SERIF, Font.BOLD, 12);
            g.setFont(font);
            FontMetrics fm = g.getFontMetrics();
            int widest = 0;
            for (String l : lines) {
                widest = Math.max(widest, fm.stringWidth(l));
            }
            float px = Math.min(12f * (size * 0.9f) / widest, size * 0.42f / lines.length);
            g.setFont(font.deriveFont(px));
            fm = g.getFontMetrics();
            int lineH = fm.getAscent() + fm.getDescent();
            int y = (size - lineH * lines.length) / 2 + r.nextInt(5) - 2;
            int ink = r.nextInt(50);
            g.setColor(new Color(ink, ink, ink));
            for (String l : lines) {
                int x = (size - fm.stringWidth(l)) / 2 + r.nextInt(5) - 2;
                g.drawString(l, x, y + fm.getAscent());
                y += lineH;
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
