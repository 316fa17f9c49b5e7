package dev.mm4j.cli;

import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Batch;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.Padding;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.data.VqaSample;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.GradientPaint;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import javax.imageio.ImageIO;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Measures the data pipeline alone: JPEG decode + RGB + ToTensor + resize + tokenize + collate. */
@Command(
        name = "bench-loader",
        mixinStandardHelpOptions = true,
        description = "Generate N synthetic JPEGs (~1024x768) and time the DataLoader over them "
                + "(decode, to-tensor + resize, tokenize, collate).")
public final class BenchLoaderCommand implements Callable<Integer> {

    @Option(names = {"-n", "--count"}, description = "number of images (default ${DEFAULT-VALUE})")
    int count = 200;

    @Option(names = "--dir", description = "where to write the JPEGs (default: a temp dir, deleted afterwards)")
    Path dir;

    @Option(names = "--image-width", description = "generated width (default ${DEFAULT-VALUE})")
    int imageWidth = 1024;

    @Option(names = "--image-height", description = "generated height (default ${DEFAULT-VALUE})")
    int imageHeight = 768;

    @Option(names = {"-w", "--workers"}, description = "loader threads (default ${DEFAULT-VALUE})")
    int workers = 2;

    @Option(names = {"-b", "--batch-size"}, description = "batch size (default ${DEFAULT-VALUE})")
    int batchSize = 2;

    @Option(names = "--prefetch", description = "batches decoded ahead (default ${DEFAULT-VALUE})")
    int prefetch = 4;

    @Option(names = "--size", description = "output image size (default ${DEFAULT-VALUE})")
    int size = 224;

    @Option(names = "--antialias", description = "antialiased resize (torchvision >= 0.17)")
    boolean antialias;

    @Option(names = "--padding", description = "FIXED (to --max-length, the tutorial) or DYNAMIC (default ${DEFAULT-VALUE})")
    Padding padding = Padding.FIXED;

    @Option(names = "--max-length", description = "question max length (default ${DEFAULT-VALUE})")
    int maxLength = 512;

    @Option(names = "--warmup", description = "samples run first and not timed (JIT warm-up; default ${DEFAULT-VALUE})")
    int warmup = 20;

    @Option(names = "--seed", description = "image generator seed (default ${DEFAULT-VALUE})")
    long seed = 1;

    private static final String[] QUESTIONS = {
        "what does the sign say?", "what brand is the phone?", "what is the number on the jersey?",
        "what time does the clock show?", "what is written on the bottle label in large letters?",
        "who is the author of the book?", "what is the name of the store on the left side of the street?"
    };
    private static final String[] WORDS = {"STOP", "NIKE", "OPEN", "23", "CAFE", "EXIT", "SALE", "12:45"};

    @Override
    public Integer call() throws Exception {
        boolean temp = dir == null;
        Path d = temp ? Files.createTempDirectory("mm4j-bench-loader") : Files.createDirectories(dir);
        try {
            long g0 = System.nanoTime();
            List<VqaSample> samples = generate(d);
            double genS = (System.nanoTime() - g0) / 1e9;
            long bytes = 0;
            for (VqaSample s : samples) {
                bytes += Files.size(((VqaSample.FileImage) s.image()).path());
            }
            System.out.printf("generated %d JPEGs %dx%d in %s (%.1f s, mean %.0f KiB)%n", count, imageWidth,
                    imageHeight, d, genS, bytes / 1024.0 / count);
            AnswerVocab vocab = AnswerVocab.fromText("<unk>\n" + String.join("\n", WORDS) + "\n", "bench vocab");
            ImageTransform transform = new ImageTransform(size, size, antialias);
            try (QuestionTokenizer tok = QuestionTokenizer.bertBaseUncased(maxLength)) {
                if (warmup > 0) {
                    run(samples.subList(0, Math.min(warmup, samples.size())), transform, tok, vocab);
                }
                Result r = run(samples, transform, tok, vocab);
                DataLoader.Stats st = r.stats;
                System.out.printf("bench-loader: %d samples, %d batches of %d, %d worker thread(s), %dx%d%s, %s padding "
                                + "(L=%d)%n", r.samples, r.batches, batchSize, workers, size, size,
                        antialias ? " antialias" : "", padding, r.seqLen);
                System.out.printf("  throughput: %.1f samples/s (%.2f s wall)%n", r.samples / r.seconds, r.seconds);
                System.out.printf("  per-stage ms per sample (summed over threads): read %.2f, decode %.2f, "
                                + "to-tensor+resize %.2f, tokenize %.3f%n", st.readMsPerSample(), st.decodeMsPerSample(),
                        st.resizeMsPerSample(), st.tokenizeMsPerSample());
                System.out.printf("  available processors: %d%n", Runtime.getRuntime().availableProcessors());
            }
            return 0;
        } finally {
            if (temp) {
                try (var walk = Files.walk(d)) {
                    walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
    }

    private record Result(int samples, int batches, int seqLen, double seconds, DataLoader.Stats stats) {}

    private Result run(List<VqaSample> samples, ImageTransform transform, QuestionTokenizer tok, AnswerVocab vocab) {
        try (DataLoader dl = DataLoader.builder(samples).transform(transform).tokenizer(tok).vocab(vocab)
                .batchSize(batchSize).workers(workers).prefetch(prefetch).padding(padding).requireAnswers(true)
                .build()) {
            long t0 = System.nanoTime();
            int n = 0;
            int batches = 0;
            int seqLen = 0;
            double checksum = 0;
            for (Iterator<Batch> it = dl.iterator(); it.hasNext(); ) {
                Batch b = it.next();
                n += b.size();
                batches++;
                seqLen = Math.max(seqLen, b.seqLen());
                checksum += b.images()[b.images().length / 2] + b.inputIds()[0];
            }
            double s = (System.nanoTime() - t0) / 1e9;
            if (Double.isNaN(checksum)) {
                throw new IllegalStateException("NaN in batch");
            }
            return new Result(n, batches, seqLen, s, dl.stats());
        }
    }

    private List<VqaSample> generate(Path d) throws IOException {
        Random rnd = new Random(seed);
        List<VqaSample> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            BufferedImage img = new BufferedImage(imageWidth, imageHeight, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = img.createGraphics();
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setPaint(new GradientPaint(0, 0, randomColor(rnd), imageWidth, imageHeight, randomColor(rnd)));
            g.fillRect(0, 0, imageWidth, imageHeight);
            for (int k = 0; k < 12; k++) {
                g.setColor(randomColor(rnd));
                int x = rnd.nextInt(imageWidth);
                int y = rnd.nextInt(imageHeight);
                int w = 40 + rnd.nextInt(imageWidth / 3);
                int h = 40 + rnd.nextInt(imageHeight / 3);
                switch (k % 3) {
                    case 0 -> g.fillOval(x, y, w, h);
                    case 1 -> g.fillRect(x, y, w, h);
                    default -> {
                        g.setStroke(new BasicStroke(2 + rnd.nextInt(10)));
                        g.drawLine(x, y, rnd.nextInt(imageWidth), rnd.nextInt(imageHeight));
                    }
                }
            }
            String word = WORDS[rnd.nextInt(WORDS.length)];
            g.setColor(Color.WHITE);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 60 + rnd.nextInt(80)));
            g.drawString(word, rnd.nextInt(imageWidth / 2), 100 + rnd.nextInt(imageHeight - 150));
            g.dispose();
            // sensor-like noise so the JPEG is not trivially compressible
            int[] row = new int[imageWidth];
            for (int y = 0; y < imageHeight; y++) {
                img.getRGB(0, y, imageWidth, 1, row, 0, imageWidth);
                for (int x = 0; x < imageWidth; x++) {
                    int n = rnd.nextInt(25) - 12;
                    int p = row[x];
                    row[x] = (clamp(((p >> 16) & 0xff) + n) << 16) | (clamp(((p >> 8) & 0xff) + n) << 8)
                            | clamp((p & 0xff) + n);
                }
                img.setRGB(0, y, imageWidth, 1, row, 0, imageWidth);
            }
            Path p = d.resolve(String.format("bench_%05d.jpg", i));
            if (!ImageIO.write(img, "jpeg", p.toFile())) {
                throw new IOException("no JPEG writer");
            }
            List<String> answers = new ArrayList<>();
            for (int a = 0; a < 10; a++) {
                answers.add(a < 7 ? word.toLowerCase() : WORDS[rnd.nextInt(WORDS.length)].toLowerCase());
            }
            out.add(new VqaSample(i, QUESTIONS[i % QUESTIONS.length], "bench_" + i, answers,
                    new VqaSample.FileImage(p), Map.of(), "bench-loader sample " + i));
        }
        return out;
    }

    private static int clamp(int v) {
        return Math.max(0, Math.min(255, v));
    }

    private static Color randomColor(Random rnd) {
        return new Color(rnd.nextInt(256), rnd.nextInt(256), rnd.nextInt(256));
    }
}
