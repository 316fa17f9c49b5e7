package dev.mm4j.bench;

import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Batch;
import dev.mm4j.data.DataLoader;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.Padding;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import dev.mm4j.util.FileTrees;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * The data pipeline alone: JPEG decode + RGB + ToTensor + resize + tokenize + collate, over a synthetic
 * TextVQA ({@link SyntheticTextVqa}) rendered at photo size.
 */
public final class LoaderBench {

    /** What to measure: the generated images, the loader's workers, batch and prefetch, and the transform. */
    public record Options(int count, Path dir, int imageWidth, int imageHeight, int workers, int batchSize, int prefetch,
            int size, boolean antialias, Padding padding, int maxLength, int warmup, long seed) {}

    private record Result(int samples, int batches, int seqLen, double seconds, DataLoader.Stats stats) {}

    private final Options o;
    private final PrintStream out;

    public LoaderBench(Options options, PrintStream out) {
        this.o = options;
        this.out = out;
    }

    public void run() throws IOException {
        boolean temp = o.dir() == null;
        Path d = temp ? Files.createTempDirectory("mm4j-bench-loader") : Files.createDirectories(o.dir());
        try {
            var summary = SyntheticTextVqa.generate(new SyntheticTextVqa.Options(d, o.count(), 0, 0, o.seed(),
                    o.imageWidth(), o.imageHeight(), Runtime.getRuntime().availableProcessors()));
            List<VqaSample> samples = new ArrayList<>();
            try (VqaDataset ds = TextVqaDatasets.open(d, "train")) {
                ds.forEach(samples::add);
            }
            out.printf("generated %d questions on %d JPEGs %dx%d in %s (%.1f s, mean %.0f KiB)%n", samples.size(),
                    summary.images(), o.imageWidth(), o.imageHeight(), d, summary.seconds(),
                    summary.jpegBytes() / 1024.0 / Math.max(1, summary.images()));
            AnswerVocab vocab = AnswerVocab.load(d.resolve("answers.txt"));
            ImageTransform transform = new ImageTransform(o.size(), o.size(), o.antialias());
            try (QuestionTokenizer tok = QuestionTokenizer.bertBaseUncased(o.maxLength())) {
                if (o.warmup() > 0) {
                    time(samples.subList(0, Math.min(o.warmup(), samples.size())), transform, tok, vocab);
                }
                Result r = time(samples, transform, tok, vocab);
                DataLoader.Stats st = r.stats;
                out.printf("bench-loader: %d samples, %d batches of %d, %d worker thread(s), %dx%d%s, %s padding (L=%d)%n",
                        r.samples, r.batches, o.batchSize(), o.workers(), o.size(), o.size(),
                        o.antialias() ? " antialias" : "", o.padding(), r.seqLen);
                out.printf("  throughput: %.1f samples/s (%.2f s wall)%n", r.samples / r.seconds, r.seconds);
                out.printf("  per-stage ms per sample (summed over threads): read %.2f, decode %.2f, "
                                + "to-tensor+resize %.2f, tokenize %.3f%n", st.readMsPerSample(), st.decodeMsPerSample(),
                        st.resizeMsPerSample(), st.tokenizeMsPerSample());
                out.printf("  available processors: %d%n", Runtime.getRuntime().availableProcessors());
            }
        } finally {
            if (temp) {
                FileTrees.delete(d);
            }
        }
    }

    private Result time(List<VqaSample> samples, ImageTransform transform, QuestionTokenizer tok, AnswerVocab vocab) {
        try (DataLoader dl = DataLoader.builder(samples).transform(transform).tokenizer(tok).vocab(vocab)
                .batchSize(o.batchSize()).workers(o.workers()).prefetch(o.prefetch()).padding(o.padding())
                .requireAnswers(true).build()) {
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
}
