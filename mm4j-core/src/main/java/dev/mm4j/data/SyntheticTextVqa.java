package dev.mm4j.data;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.util.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.GradientPaint;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.MemoryCacheImageOutputStream;

/**
 * Writes a small synthetic TextVQA in the official layout, so the whole pipeline can be exercised (and a
 * small model can actually learn something) without the 7 GB release:
 *
 * <pre>
 * out/TextVQA_0.5.1_train.json, TextVQA_0.5.1_val.json, TextVQA_0.5.1_test.json
 * out/train_images/&lt;image_id&gt;.jpg   (train and val images, as in the release)
 * out/test_images/&lt;image_id&gt;.jpg
 * out/captions_SPLIT.jsonl            (one caption per image, for retrieval: {"image": "train_images/ID.jpg", "text": ...})
 * out/answers.txt                    (answer vocabulary, line 0 = &lt;unk&gt;)
 * </pre>
 *
 * Each image is a background (gradient, noise or shapes) with a sign / label / plate carrying one word
 * from {@link #WORDS} in a Java2D logical font, style, size, colour and position of its own. Each image
 * gets one or two questions from a few templates ("what does the sign say?", "what colour is the
 * word?", "what colour is the sign?"), with ten human-like answers: 7 to 10 of them agree, the rest are a
 * misspelling, another word, or "unanswerable". Test records carry no answers (as in the release).
 *
 * <p>Deterministic for a seed: every image is drawn from its own {@code Random} derived from (seed,
 * split, image index), with fixed rendering hints and JPEG quality, and json is written field by field
 * in a fixed order; so the same seed gives byte-identical files on the same JDK and fonts.
 */
public final class SyntheticTextVqa {

    /** The words written on signs (answers of the "what does it say" questions). */
    public static final List<String> WORDS = List.of(
            "stop", "open", "exit", "sale", "coffee", "pizza", "hotel", "bank", "taxi", "bus",
            "park", "books", "music", "beer", "wine", "pharmacy", "bakery", "garage", "police", "school",
            "market", "cinema", "museum", "library", "post", "toys", "fresh", "welcome", "closed", "danger");

    /** Colour names (answers of the colour questions) and their RGB. */
    public static final List<String> COLOURS = List.of("red", "green", "blue", "yellow", "white", "black", "orange", "purple");

    /** The index of white in {@link #COLOURS}: the colour of the panel that {@link Look#whitePanel} writes on. */
    private static final int WHITE = 4;

    private static final Color[] RGB = {
        new Color(0xD0, 0x20, 0x20), new Color(0x20, 0x9A, 0x30), new Color(0x20, 0x40, 0xD0), new Color(0xF0, 0xD8, 0x20),
        new Color(0xF8, 0xF8, 0xF8), new Color(0x10, 0x10, 0x10), new Color(0xF0, 0x80, 0x10), new Color(0x80, 0x28, 0xA0)
    };

    /** The answer for questions that cannot be answered from the image. */
    public static final String UNANSWERABLE = "unanswerable";

    private static final String[] FONTS = {Font.SERIF, Font.SANS_SERIF, Font.MONOSPACED, Font.DIALOG};
    private static final int[] STYLES = {Font.PLAIN, Font.BOLD, Font.ITALIC, Font.BOLD | Font.ITALIC};
    private static final String[] OBJECTS = {"sign", "label", "plate"};
    private static final String[] IMAGE_CLASSES = {
        "Street sign", "Signage", "Billboard", "Poster", "Building", "Shop", "Car", "Tree", "Person", "Window"};
    private static final float JPEG_QUALITY = 0.9f;

    /**
     * Optional scene knobs, for an easier (or harder) picture than the default one. {@link #DEFAULT} is the
     * original scene: with it the output is byte-identical to what the generator wrote before these knobs.
     *
     * @param textScaleMin   smallest font size, as a fraction of the image height (default 0.10)
     * @param textScaleMax   largest font size, as a fraction of the image height (default 0.24)
     * @param maxDistractors random shapes drawn on a "shapes" background: -1 = the default 3 to 8, else 0 to this many
     * @param positionJitter how far the sign may wander from the centre, as a fraction of the free room around it:
     *                       1 = anywhere in the image (default), 0 = always centred
     * @param oneTextStyle   write every word in upper case, bold sans-serif, instead of one of 4 fonts x 4 styles x
     *                       3 cases (default false); the other random draws stay as they are
     * @param whitePanel     write the word on a white panel set in the sign (a coloured board with a white face, as on
     *                       many shop and street signs) instead of straight on the sign's colour (default false): the
     *                       letters always stand on the same colour, the text colour is one that stands out on white
     *                       (red, green, blue, black, orange, purple) and the sign's colour is the board's
     */
    public record Look(double textScaleMin, double textScaleMax, int maxDistractors, double positionJitter,
                       boolean oneTextStyle, boolean whitePanel) {
        /** The original scene. */
        public static final Look DEFAULT = new Look(0.10, 0.24, -1, 1.0, false, false);

        public Look {
            if (!(textScaleMin > 0) || !(textScaleMax >= textScaleMin) || textScaleMax > 1) {
                throw new IllegalArgumentException("text scale must satisfy 0 < min <= max <= 1, got " + textScaleMin + ".." + textScaleMax);
            }
            if (maxDistractors < -1) {
                throw new IllegalArgumentException("max distractors must be >= 0 (or -1 for the default), got " + maxDistractors);
            }
            if (!(positionJitter >= 0 && positionJitter <= 1)) {
                throw new IllegalArgumentException("position jitter must be between 0 and 1, got " + positionJitter);
            }
        }

        public Look withTextScale(double min, double max) {
            return new Look(min, max, maxDistractors, positionJitter, oneTextStyle, whitePanel);
        }

        public Look withMaxDistractors(int n) {
            return new Look(textScaleMin, textScaleMax, n, positionJitter, oneTextStyle, whitePanel);
        }

        public Look withPositionJitter(double j) {
            return new Look(textScaleMin, textScaleMax, maxDistractors, j, oneTextStyle, whitePanel);
        }

        public Look withOneTextStyle(boolean one) {
            return new Look(textScaleMin, textScaleMax, maxDistractors, positionJitter, one, whitePanel);
        }

        public Look withWhitePanel(boolean panel) {
            return new Look(textScaleMin, textScaleMax, maxDistractors, positionJitter, oneTextStyle, panel);
        }

        /**
         * The demo's scene, easier than the default so that a small ViT trained from scratch learns to read in a
         * few minutes: a big sign (font 30-40% of the image height, so the word stays legible at the model's
         * input size), near the centre (within 20% of the free room, so the word lands on about the same patches
         * and the ViT need not learn translation invariance first), no distractor shapes (a plain background
         * where the default draws 3-8 shapes), one text style (upper case, bold sans-serif: thick strokes, so
         * "what colour is the word?" is learned as well as the sign's colour) and the word on a white panel (so
         * that the letters always stand on the same colour: with the sign's colour behind them, which changes the
         * look of every letter, the demo's model does not learn to read in its budget; see the README's demo section).
         */
        public static final Look DEMO = DEFAULT.withTextScale(0.30, 0.40).withMaxDistractors(0).withPositionJitter(0.2)
                .withOneTextStyle(true).withWhitePanel(true);
    }

    /**
     * The kinds of question the generator asks, each with its templates ({@code %s} is the object: sign, label or
     * plate). {@link #of} tells the kind of a question text, so that results can be broken down by kind.
     */
    public enum QuestionKind {
        /** The word itself: "what does the sign say?" */
        READING("reading", "what does the %s say?", "what word is written on the %s?", "what is written on the %s?",
                "what does the text on the %s read?"),
        /** The colour of the word. */
        TEXT_COLOUR("text colour", "what colour is the word?", "what color is the text?", "what colour is the writing on the %s?"),
        /** The colour of the sign. */
        SIGN_COLOUR("sign colour", "what colour is the %s?", "what color is the %s?");

        private final String label;
        private final List<String> templates;
        private final java.util.regex.Pattern pattern;

        QuestionKind(String label, String... templates) {
            this.label = label;
            this.templates = List.of(templates);
            StringBuilder re = new StringBuilder();
            for (String t : templates) {
                re.append(re.length() == 0 ? "" : "|").append(java.util.regex.Pattern.quote(t)
                        .replace("%s", "\\E(?:" + String.join("|", OBJECTS) + ")\\Q"));
            }
            this.pattern = java.util.regex.Pattern.compile(re.toString());
        }

        /** A short name for tables: reading, text colour, sign colour. */
        public String label() {
            return label;
        }

        /** The question texts of this kind, {@code %s} standing for the object. */
        public List<String> templates() {
            return templates;
        }

        /** The kind of a question this generator writes, or empty for any other question. */
        public static java.util.Optional<QuestionKind> of(String question) {
            for (QuestionKind k : values()) {
                if (k.pattern.matcher(question).matches()) {
                    return java.util.Optional.of(k);
                }
            }
            return java.util.Optional.empty();
        }
    }

    /** What to generate. */
    public record Options(Path out, int train, int val, int test, long seed, int width, int height, int threads, Look look) {
        /** The original scene ({@link Look#DEFAULT}). */
        public Options(Path out, int train, int val, int test, long seed, int width, int height, int threads) {
            this(out, train, val, test, seed, width, height, threads, Look.DEFAULT);
        }

        public Options {
            if (look == null) {
                throw new IllegalArgumentException("look must not be null (Look.DEFAULT for the original scene)");
            }
            if (train < 0 || val < 0 || test < 0) {
                throw new IllegalArgumentException("question counts must be >= 0");
            }
            if (width < 64 || height < 48 || width > 8192 || height > 8192) {
                throw new IllegalArgumentException("image size must be between 64x48 and 8192x8192, got " + width + "x" + height);
            }
            if (threads < 1) {
                throw new IllegalArgumentException("threads must be >= 1");
            }
        }

        /** Defaults: 256x192 images, as many threads as cores. */
        public static Options of(Path out, int train, int val, int test, long seed) {
            return new Options(out, train, val, test, seed, 256, 192, Runtime.getRuntime().availableProcessors());
        }

        public Options withLook(Look l) {
            return new Options(out, train, val, test, seed, width, height, threads, l);
        }
    }

    /** What was written. */
    public record Summary(int questions, int images, long jpegBytes, double seconds) {
        public double imagesPerSecond() {
            return seconds > 0 ? images / seconds : Double.POSITIVE_INFINITY;
        }
    }

    /** One question about a scene (answers empty for test). */
    record Question(long questionId, String text, List<String> answers) {}

    /** One image and its questions. */
    record Scene(String imageId, String word, int signColour, int textColour, String object,
                 List<String> imageClasses, String flickrId, int farm, int server, String secret, byte[] jpeg,
                 List<Question> questions) {}

    private SyntheticTextVqa() {}

    /** The answer vocabulary written to answers.txt: {@code <unk>}, the words, the colours, unanswerable. */
    public static List<String> answerVocabulary() {
        List<String> v = new ArrayList<>();
        v.add("<unk>");
        v.addAll(WORDS);
        v.addAll(COLOURS);
        v.add(UNANSWERABLE);
        return Collections.unmodifiableList(v);
    }

    /** Generates the three splits under {@code opts.out()}. */
    public static Summary generate(Options opts) throws IOException {
        long t0 = System.nanoTime();
        Files.createDirectories(opts.out());
        int images = 0;
        long bytes = 0;
        long nextQuestionId = 0;
        ExecutorService pool = Executors.newFixedThreadPool(opts.threads(), r -> {
            Thread t = new Thread(r, "synth");
            t.setDaemon(true);
            return t;
        });
        try {
            for (TextVqaSplit split : TextVqaSplit.values()) {
                int n = switch (split) {
                    case TRAIN -> opts.train();
                    case VAL -> opts.val();
                    case TEST -> opts.test();
                };
                List<Scene> scenes = generateSplit(opts, split, n, nextQuestionId, pool);
                Path imagesDir = opts.out().resolve(split.imagesDir());
                Files.createDirectories(imagesDir);
                List<Future<?>> writes = new ArrayList<>();
                for (Scene s : scenes) {
                    writes.add(pool.submit(() -> {
                        writeImage(imagesDir.resolve(s.imageId() + ".jpg"), s.jpeg());
                        return null;
                    }));
                    images++;
                    bytes += s.jpeg().length;
                    nextQuestionId += s.questions().size();
                }
                await(writes);
                writeJson(opts, split, scenes);
                writeCaptions(opts, split, scenes);
            }
            AtomicFiles.writeString(opts.out().resolve("answers.txt"), String.join("\n", answerVocabulary()) + "\n");
        } finally {
            pool.shutdownNow();
        }
        return new Summary(opts.train() + opts.val() + opts.test(), images, bytes, (System.nanoTime() - t0) / 1e9);
    }

    /**
     * Temp file + rename (never a half-written JPEG under the final name), but without the fsync that
     * {@link AtomicFiles#write} does: fsync per file caps the rate at a few hundred images/s, and a
     * synthetic set that a crash interrupted is simply generated again. The json files, written last,
     * do go through {@link AtomicFiles}.
     */
    private static void writeImage(Path target, byte[] jpeg) throws IOException {
        Path tmp = target.resolveSibling("." + target.getFileName() + "." + Thread.currentThread().getId() + ".tmp");
        try {
            Files.write(tmp, jpeg);
            AtomicFiles.moveIntoPlace(tmp, target);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    private static void await(List<Future<?>> futures) throws IOException {
        try {
            for (Future<?> f : futures) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IOException(e.getCause().toString(), e.getCause());
        }
    }

    /** Plans the split (how many questions per image) sequentially, then renders images in parallel. */
    private static List<Scene> generateSplit(Options opts, TextVqaSplit split, int questions, long firstQuestionId,
                                             ExecutorService pool) throws IOException {
        Random plan = new Random(mix(opts.seed(), split.ordinal(), -1));
        List<Integer> perImage = new ArrayList<>();
        int left = questions;
        while (left > 0) {
            int k = Math.min(left, plan.nextInt(10) < 3 ? 2 : 1);
            perImage.add(k);
            left -= k;
        }
        List<Future<Scene>> futures = new ArrayList<>();
        long qid = firstQuestionId;
        for (int i = 0; i < perImage.size(); i++) {
            final int index = i;
            final long q0 = qid;
            final int k = perImage.get(i);
            futures.add(pool.submit(() -> scene(opts, split, index, q0, k)));
            qid += k;
        }
        List<Scene> scenes = new ArrayList<>(futures.size());
        try {
            for (Future<Scene> f : futures) {
                scenes.add(f.get());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IOException(e.getCause().toString(), e.getCause());
        }
        return scenes;
    }

    static long mix(long seed, int split, long index) {
        long z = seed * 0x9E3779B97F4A7C15L + split * 0xBF58476D1CE4E5B9L + index * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static Scene scene(Options opts, TextVqaSplit split, int index, long firstQuestionId, int questions) throws IOException {
        Random r = new Random(mix(opts.seed(), split.ordinal(), index));
        String imageId = String.format(Locale.ROOT, "%016x", r.nextLong());
        String word = WORDS.get(r.nextInt(WORDS.size()));
        int sign = r.nextInt(COLOURS.size());
        int text;
        do {
            text = r.nextInt(COLOURS.size());
        } while (!contrasts(opts.look().whitePanel() ? WHITE : sign, text));
        String object = OBJECTS[r.nextInt(OBJECTS.length)];
        byte[] jpeg = render(r, opts.width(), opts.height(), opts.look(), word, RGB[sign], RGB[text]);

        List<String> classes = new ArrayList<>();
        int nClasses = 1 + r.nextInt(3);
        List<String> pool = new ArrayList<>(Arrays.asList(IMAGE_CLASSES));
        for (int i = 0; i < nClasses; i++) {
            classes.add(pool.remove(r.nextInt(pool.size())));
        }
        String flickrId = Long.toString(1_000_000_000L + (r.nextLong() >>> 1) % 9_000_000_000L);
        int farm = 1 + r.nextInt(9);
        int server = 1000 + r.nextInt(8000);
        String secret = String.format(Locale.ROOT, "%010x", r.nextLong() >>> 24);

        // distinct kinds of question when an image gets two
        List<QuestionKind> kinds = new ArrayList<>(List.of(QuestionKind.values()));
        List<Question> qs = new ArrayList<>();
        for (int i = 0; i < questions; i++) {
            QuestionKind kind = kinds.remove(r.nextInt(10) < 6 ? 0 : r.nextInt(kinds.size()));
            String q = String.format(Locale.ROOT, kind.templates.get(r.nextInt(kind.templates.size())), object);
            String truth = switch (kind) {
                case READING -> word;
                case TEXT_COLOUR -> COLOURS.get(text);
                case SIGN_COLOUR -> COLOURS.get(sign);
            };
            List<String> confusers = kind == QuestionKind.READING ? WORDS : COLOURS;
            List<String> answers = split == TextVqaSplit.TEST ? List.of() : noisyAnswers(r, truth, confusers);
            qs.add(new Question(firstQuestionId + i, q, answers));
        }
        return new Scene(imageId, word, sign, text, object, List.copyOf(classes), flickrId, farm, server, secret, jpeg, List.copyOf(qs));
    }

    /** Black on black (or white on yellow) would be unreadable. */
    private static boolean contrasts(int a, int b) {
        if (a == b) {
            return false;
        }
        Color x = RGB[a];
        Color y = RGB[b];
        double lx = 0.299 * x.getRed() + 0.587 * x.getGreen() + 0.114 * x.getBlue();
        double ly = 0.299 * y.getRed() + 0.587 * y.getGreen() + 0.114 * y.getBlue();
        return Math.abs(lx - ly) > 60;
    }

    /** Ten answers: 7..10 agree on the truth, the rest misspell it, name another word, or give up. */
    static List<String> noisyAnswers(Random r, String truth, List<String> confusers) {
        int p = r.nextInt(100);
        int agree = p < 45 ? 10 : p < 75 ? 9 : p < 92 ? 8 : 7;
        List<String> answers = new ArrayList<>(10);
        for (int i = 0; i < agree; i++) {
            answers.add(truth);
        }
        while (answers.size() < 10) {
            int kind = r.nextInt(3);
            if (kind == 0 && truth.length() > 3) {
                answers.add(misspell(r, truth));
            } else if (kind == 1) {
                String other;
                do {
                    other = confusers.get(r.nextInt(confusers.size()));
                } while (other.equals(truth));
                answers.add(other);
            } else {
                answers.add(UNANSWERABLE);
            }
        }
        Collections.shuffle(answers, r);
        return List.copyOf(answers);
    }

    private static String misspell(Random r, String w) {
        int i = 1 + r.nextInt(w.length() - 2);
        return switch (r.nextInt(3)) {
            case 0 -> w.substring(0, i) + w.substring(i + 1); // drop a letter
            case 1 -> w.substring(0, i) + w.charAt(i + 1) + w.charAt(i) + w.substring(i + 2); // swap two
            default -> w.substring(0, i) + w.charAt(i) + w.substring(i); // double one
        };
    }

    private static byte[] render(Random r, int w, int h, Look look, String word, Color signColour, Color textColour) throws IOException {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_FRACTIONALMETRICS, RenderingHints.VALUE_FRACTIONALMETRICS_ON);
            g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
            g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
            background(r, g, img, w, h, look.maxDistractors());

            // the text and its sign
            String shown = switch (r.nextInt(3)) {
                case 0 -> word.toUpperCase(Locale.ROOT);
                case 1 -> Character.toUpperCase(word.charAt(0)) + word.substring(1);
                default -> word;
            };
            float size = look.equals(Look.DEFAULT) ? h * (0.10f + 0.14f * r.nextFloat()) // the original, float for float
                    : h * (float) (look.textScaleMin() + (look.textScaleMax() - look.textScaleMin()) * r.nextFloat());
            Font font = new Font(FONTS[r.nextInt(FONTS.length)], STYLES[r.nextInt(STYLES.length)], 12).deriveFont(size);
            if (look.oneTextStyle()) {
                shown = word.toUpperCase(Locale.ROOT);
                font = new Font(Font.SANS_SERIF, Font.BOLD, 12).deriveFont(size);
            }
            g.setFont(font);
            FontMetrics fm = g.getFontMetrics();
            int tw = fm.stringWidth(shown);
            int pad = Math.max(4, (int) (size * 0.35f));
            // with a white panel, the sign is a board around it: a margin of its colour on every side, thin at the
            // sides (the width is what long words need) and broad above and below (so that its colour is plain to see)
            int mx = look.whitePanel() ? Math.max(3, (int) (size * 0.15f)) : 0;
            int sw = Math.min(w - 4 - 2 * mx, tw + 2 * pad);
            int sh = fm.getAscent() + fm.getDescent() + pad;
            if (tw + 2 * pad > w - 4 - 2 * mx) { // too wide: shrink the font to fit
                font = font.deriveFont(size * (w - 4 - 2 * mx - 2 * pad) / (float) tw);
                g.setFont(font);
                fm = g.getFontMetrics();
                tw = fm.stringWidth(shown);
                sh = fm.getAscent() + fm.getDescent() + pad;
            }
            int my = look.whitePanel() ? Math.max(3, Math.min((int) (size * 0.6f), (h - 4 - sh) / 2)) : 0;
            int sx = 2 + mx + position(r, w - sw - 2 * mx - 3, look.positionJitter());
            int sy = 2 + my + position(r, h - sh - 2 * my - 3, look.positionJitter());
            double angle = Math.toRadians(r.nextGaussian() * 4);
            AffineTransform saved = g.getTransform();
            g.rotate(angle, sx + sw / 2.0, sy + sh / 2.0);
            g.setColor(new Color(0, 0, 0, 70)); // shadow
            g.fillRoundRect(sx - mx + 3, sy - my + 3, sw + 2 * mx, sh + 2 * my, pad, pad);
            g.setColor(signColour);
            g.fillRoundRect(sx - mx, sy - my, sw + 2 * mx, sh + 2 * my, pad, pad);
            if (look.whitePanel()) {
                g.setColor(RGB[WHITE]);
                g.fillRoundRect(sx, sy, sw, sh, pad / 2, pad / 2);
            }
            if (r.nextBoolean()) {
                g.setColor(textColour);
                g.setStroke(new BasicStroke(Math.max(1f, size / 14f)));
                g.drawRoundRect(sx + 2, sy + 2, sw - 4, sh - 4, pad, pad);
            }
            g.setColor(textColour);
            g.drawString(shown, sx + (sw - tw) / 2f, sy + pad / 2f + fm.getAscent());
            g.setTransform(saved);
        } finally {
            g.dispose();
        }
        return jpeg(img);
    }

    /** Offset in [0, room): uniform (jitter 1, the original draw), else that fraction of the room around its middle. */
    private static int position(Random r, int room, double jitter) {
        int u = r.nextInt(Math.max(1, room));
        if (jitter == 1.0) {
            return u;
        }
        double mid = Math.max(0, room - 1) / 2.0;
        return (int) Math.round(mid + (u - mid) * jitter);
    }

    private static void background(Random r, Graphics2D g, BufferedImage img, int w, int h, int maxDistractors) {
        Color a = new Color(r.nextInt(256), r.nextInt(256), r.nextInt(256));
        Color b = new Color(r.nextInt(256), r.nextInt(256), r.nextInt(256));
        switch (r.nextInt(3)) {
            case 0 -> { // gradient
                g.setPaint(new GradientPaint(r.nextInt(w), r.nextInt(h), a, r.nextInt(w), r.nextInt(h), b));
                g.fillRect(0, 0, w, h);
            }
            case 1 -> { // coarse noise, 8x8 cells around a base colour
                int cell = 8;
                for (int y = 0; y < h; y += cell) {
                    for (int x = 0; x < w; x += cell) {
                        int d = r.nextInt(61) - 30;
                        g.setColor(new Color(clamp(a.getRed() + d), clamp(a.getGreen() + d), clamp(a.getBlue() + d)));
                        g.fillRect(x, y, cell, cell);
                    }
                }
            }
            default -> { // shapes
                g.setColor(a);
                g.fillRect(0, 0, w, h);
                int n = maxDistractors < 0 ? 3 + r.nextInt(6) : r.nextInt(maxDistractors + 1);
                for (int i = 0; i < n; i++) {
                    g.setColor(new Color(r.nextInt(256), r.nextInt(256), r.nextInt(256)));
                    int x = r.nextInt(w);
                    int y = r.nextInt(h);
                    int sw = w / 8 + r.nextInt(w / 3);
                    int sh = h / 8 + r.nextInt(h / 3);
                    if (r.nextBoolean()) {
                        g.fillOval(x - sw / 2, y - sh / 2, sw, sh);
                    } else {
                        g.fillRect(x - sw / 2, y - sh / 2, sw, sh);
                    }
                }
            }
        }
    }

    private static int clamp(int v) {
        return Math.max(0, Math.min(255, v));
    }

    /** Encodes with a fixed quality (ImageIO's default writer, no metadata beyond JFIF). */
    static byte[] jpeg(BufferedImage img) throws IOException {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(32 * 1024);
        try (MemoryCacheImageOutputStream out = new MemoryCacheImageOutputStream(bytes)) {
            writer.setOutput(out);
            ImageWriteParam p = writer.getDefaultWriteParam();
            p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            p.setCompressionQuality(JPEG_QUALITY);
            writer.write(null, new IIOImage(img, null, null), p);
        } finally {
            writer.dispose();
        }
        return bytes.toByteArray();
    }

    /** {@code what does the sign say?} → [what, does, the, sign, say]: lower case, punctuation dropped. */
    static List<String> tokens(String question) {
        List<String> out = new ArrayList<>();
        for (String t : question.toLowerCase(Locale.ROOT).split("[^a-z0-9']+")) {
            if (!t.isEmpty()) {
                out.add(t);
            }
        }
        return out;
    }

    /**
     * What the image shows, as a retrieval caption: "a green sign with a white panel that says CLOSED" (a white
     * panel look) or "a red sign with blue letters that says STOP".
     */
    static String caption(Scene s, Look look) {
        String what = look.whitePanel() ? "with a white panel" : "with " + COLOURS.get(s.textColour()) + " letters";
        return "a " + COLOURS.get(s.signColour()) + " sign " + what + " that says " + s.word().toUpperCase(Locale.ROOT);
    }

    /** {@code captions_SPLIT.jsonl}: one {@code {"image", "text"}} per image, the path relative to the folder. */
    private static void writeCaptions(Options opts, TextVqaSplit split, List<Scene> scenes) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        for (Scene s : scenes) {
            com.fasterxml.jackson.databind.node.ObjectNode o = mapper.createObjectNode(); // field order fixed
            o.put("image", split.imagesDir() + "/" + s.imageId() + ".jpg");
            o.put("text", caption(s, opts.look()));
            sb.append(mapper.writeValueAsString(o)).append('\n');
        }
        AtomicFiles.writeString(opts.out().resolve(CaptionPairs.manifestName(split.officialName())), sb.toString());
    }

    private static void writeJson(Options opts, TextVqaSplit split, List<Scene> scenes) throws IOException {
        Path file = opts.out().resolve(split.officialJsonName());
        ObjectMapper mapper = new ObjectMapper();
        AtomicFiles.write(file, out -> {
            try (JsonGenerator g = mapper.getFactory().createGenerator(out, JsonEncoding.UTF8)) {
                g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
                g.writeStartObject();
                g.writeStringField("dataset_type", split.officialName());
                g.writeStringField("dataset_name", "textvqa");
                g.writeStringField("dataset_version", "0.5.1");
                g.writeArrayFieldStart("data");
                for (Scene s : scenes) {
                    for (Question q : s.questions()) {
                        g.writeStartObject();
                        g.writeStringField("question", q.text());
                        g.writeStringField("image_id", s.imageId());
                        if (split != TextVqaSplit.TEST) {
                            g.writeArrayFieldStart("answers");
                            for (String a : q.answers()) {
                                g.writeString(a);
                            }
                            g.writeEndArray();
                        }
                        g.writeNumberField("question_id", q.questionId());
                        g.writeArrayFieldStart("image_classes");
                        for (String c : s.imageClasses()) {
                            g.writeString(c);
                        }
                        g.writeEndArray();
                        String base = "https://farm" + s.farm() + ".staticflickr.com/" + s.server() + "/" + s.flickrId() + "_" + s.secret();
                        g.writeStringField("flickr_original_url", base + "_o.jpg");
                        g.writeStringField("flickr_300k_url", base + "_z.jpg");
                        g.writeNumberField("image_width", opts.width());
                        g.writeNumberField("image_height", opts.height());
                        g.writeArrayFieldStart("question_tokens");
                        for (String t : tokens(q.text())) {
                            g.writeString(t);
                        }
                        g.writeEndArray();
                        g.writeStringField("set_name", split.officialName());
                        g.writeEndObject();
                    }
                }
                g.writeEndArray();
                g.writeEndObject();
            }
        });
    }
}
