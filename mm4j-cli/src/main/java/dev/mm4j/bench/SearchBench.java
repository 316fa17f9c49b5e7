package dev.mm4j.bench;

import ai.djl.Device;
import dev.mm4j.data.CaptionPairs;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.report.TextTable;
import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import dev.mm4j.search.RetrievalRecall;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.util.FileTrees;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Search figures: embedding throughput of a model (images/s with decode and resize, texts/s with tokenization), text ->
 * image recall@1/@5 on captioned images through the Lucene index's HNSW search next to exact brute force, and at scale
 * (random unit vectors of the model's dimension, and clustered vectors of 768 dimensions; float32 and int8) the index's
 * build time, size on disk, open and checksum-verification time, query latency p50/p99 and the recall@k of HNSW
 * against exact search.
 */
public final class SearchBench {

    /**
     * {@code model}: a bundle or checkpoint (null: the demo-sized FLAVA, untrained); {@code data}: a caption manifest or
     * a synth folder whose {@code split} is embedded (null: {@code images} demo-look signs are generated); {@code sizes}:
     * the index sizes of the scale part, each built as a random set (unit vectors of the model's dimension) and a
     * clustered set ({@code clusteredDimension}), once per {@code quantizations} entry, with {@code hnswM} and
     * {@code beamWidth} ({@code sets}: which of the two); {@code queries} timed per index; {@code k} hits per query; {@code candidates}: the HNSW
     * searches' candidate counts.
     */
    public record Options(Path model, Path data, String split, int images, List<Integer> sizes, int queries, int k,
            int threads, long seed, List<Integer> candidates, List<ImageIndex.Quantization> quantizations,
            int clusteredDimension, int hnswM, int beamWidth, List<String> sets) {
        /** The defaults of everything after {@code seed}: candidates 100 and 400, float32 and int8, 768-d clusters, M 16, beam 100. */
        public Options(Path model, Path data, String split, int images, List<Integer> sizes, int queries, int k, int threads,
                long seed) {
            this(model, data, split, images, sizes, queries, k, threads, seed, List.of(100, 400),
                    List.of(ImageIndex.Quantization.NONE, ImageIndex.Quantization.INT8), 768,
                    ImageIndex.Settings.DEFAULT.hnswM(), ImageIndex.Settings.DEFAULT.beamWidth(), SETS);
        }
    }

    /** The vector sets of the scale part. */
    public static final List<String> SETS = List.of("random", "clustered");

    /**
     * The scale part's figures for one index: the set ({@code random}, {@code clustered}), its size and dimension, the
     * settings, the build, the size on disk, opening it (without and with checksum verification), each way of searching.
     */
    public record Scale(String set, int vectors, int dimension, ImageIndex.Settings settings, double buildSeconds, long bytes,
            ImageIndex.OpenCost open, List<Latency> searches) {}

    /** Query latency of one way of searching, and the fraction of the exact top k it finds. */
    public record Latency(String search, double p50Ms, double p99Ms, double recallAtK) {}

    private final Options o;
    private final PrintStream out;

    public SearchBench(Options options, PrintStream out) {
        this.o = options;
        this.out = out;
    }

    public void run() throws IOException {
        int threads = Hardware.configureThreads(o.threads());
        Path tmp = Files.createTempDirectory("mm4j-bench-search");
        try (Embedder embedder = o.model() == null
                ? Embedder.untrained(FinetuneSettings.preset("demo").flavaConfig(1), Device.cpu())
                : Embedder.open(o.model(), null, Device.cpu())) {
            out.printf("bench-search: %s, embeddings of %d; %d libtorch thread(s), %d available processors%n",
                    o.model() == null ? "the demo-sized FLAVA (untrained: speed only)" : embedder.source(),
                    embedder.dimension(), threads, Runtime.getRuntime().availableProcessors());
            List<CaptionPairs.Pair> pairs = pairs(tmp.resolve("data"));
            embedded(embedder, pairs, tmp.resolve("captioned"));
            List<Scale> rows = new ArrayList<>();
            for (int n : o.sizes()) {
                for (String set : o.sets()) {
                    int d = set.equals("random") ? embedder.dimension() : o.clusteredDimension();
                    Random random = new Random(o.seed() + n + (set.equals("random") ? 0 : 7919));
                    VectorSet vs = set.equals("random") ? VectorSet.random(random, n, o.queries(), d)
                            : VectorSet.clustered(random, n, o.queries(), d);
                    for (ImageIndex.Quantization q : o.quantizations()) {
                        ImageIndex.Settings settings = new ImageIndex.Settings(o.hnswM(), o.beamWidth(), q);
                        rows.add(scale(set, vs, settings, tmp.resolve(set + "-" + n + "-" + q.key())));
                    }
                }
            }
            out.printf("%nindex at scale: %d random queries per index, k=%d, one segment (Lucene HNSW, cosine, M=%d, beam %d); "
                    + "random: unit vectors of the model's dimension (%d); clustered: %d dimensions, sqrt(n) clusters of low "
                    + "intrinsic dimension (a random centre plus a Gaussian in a random 16-d subspace and 10%% isotropic noise), "
                    + "queries drawn alike; open: the commit opened, verify: every file's checksum (warm page cache):%n",
                    o.queries(), o.k(), o.hnswM(), o.beamWidth(), embedder.dimension(), o.clusteredDimension());
            List<List<String>> cells = new ArrayList<>();
            for (Scale s : rows) {
                for (Latency l : s.searches()) {
                    boolean first = l == s.searches().get(0);
                    cells.add(List.of(first ? s.set() : "", first ? String.format(Locale.ROOT, "%,d", s.vectors()) : "",
                            first ? Integer.toString(s.dimension()) : "",
                            first ? (s.settings().quantization() == ImageIndex.Quantization.INT8 ? "int8" : "float32") : "",
                            first ? fmt("%.1f", s.buildSeconds()) : "", first ? fmt("%.1f", s.bytes() / 1e6) : "",
                            first ? fmt("%.1f", s.open().openMs()) : "", first ? fmt("%.1f", s.open().verifyMs()) : "",
                            l.search(), fmt("%.2f", l.p50Ms()), fmt("%.2f", l.p99Ms()), fmt("%.1f%%", 100 * l.recallAtK())));
                }
            }
            out.print(TextTable.format("  ", List.of("set", "vectors", "dim", "vectors as", "build s", "size MB", "open ms",
                    "verify ms", "search", "p50 ms", "p99 ms", "recall@" + o.k()), cells));
        } finally {
            FileTrees.delete(tmp);
        }
    }

    private static String fmt(String format, double v) {
        return String.format(Locale.ROOT, format, v);
    }

    /** The captioned images: the data's split, or generated demo-look signs. */
    private List<CaptionPairs.Pair> pairs(Path generated) throws IOException {
        if (o.data() != null) {
            return CaptionPairs.read(o.data(), o.split());
        }
        // about 1.3 questions per image: enough questions for the requested images
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(generated, o.images() * 4 / 3 + 10, 0, 0, o.seed(), 256, 192,
                Runtime.getRuntime().availableProcessors(), SyntheticTextVqa.Look.DEMO));
        List<CaptionPairs.Pair> all = CaptionPairs.read(generated, "train");
        return all.subList(0, Math.min(o.images(), all.size()));
    }

    /** Throughput of the embedder on the pairs, then text -> image recall through the index: HNSW and exact. */
    private void embedded(Embedder embedder, List<CaptionPairs.Pair> pairs, Path indexDir) throws IOException {
        List<byte[]> bytes = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        for (CaptionPairs.Pair p : pairs) {
            bytes.add(p.image().readBytes());
            names.add(p.origin());
            texts.add(p.text());
        }
        int warm = Math.min(Embedder.BATCH, pairs.size());
        embedder.images(bytes.subList(0, warm), names.subList(0, warm));
        embedder.texts(texts.subList(0, warm));
        long t0 = System.nanoTime();
        float[][] images = embedder.images(bytes, names);
        double imageSeconds = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        float[][] queries = embedder.texts(texts);
        double textSeconds = (System.nanoTime() - t0) / 1e9;
        out.printf("%nembedding %d images (JPEG decode + resize included) and their %d captions, batches of %d:%n",
                images.length, texts.size(), Embedder.BATCH);
        out.print(TextTable.format("  ", List.of("input", "count", "seconds", "per second"), List.of(
                List.of("images", Integer.toString(images.length), fmt("%.2f", imageSeconds), fmt("%.1f", images.length / imageSeconds)),
                List.of("texts", Integer.toString(texts.size()), fmt("%.2f", textSeconds), fmt("%.1f", texts.size() / textSeconds)))));

        List<ImageIndex.Entry> entries = new ArrayList<>();
        for (int i = 0; i < images.length; i++) {
            entries.add(new ImageIndex.Entry(Integer.toString(i), Integer.toString(i), texts.get(i), images[i]));
        }
        ImageIndex.create(indexDir, entries, embedder.source());
        List<Set<Integer>> relevant = RetrievalRecall.relevant(texts, texts.stream().map(List::of).toList());
        int k = 5;
        int[] candidates = {k, ImageIndex.DEFAULT_CANDIDATES};
        List<List<int[]>> ranked = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>()); // exact, then HNSW
        try (ImageIndex index = ImageIndex.open(indexDir); ImageIndex.Searcher s = index.searcher()) {
            for (float[] q : queries) {
                ranked.get(0).add(rows(s.exact(q, k)));
                for (int c = 0; c < candidates.length; c++) {
                    ranked.get(c + 1).add(rows(s.search(q, k, candidates[c])));
                }
            }
        }
        out.printf("%ntext -> image retrieval, each caption among the %d images (a hit: an image with that very caption)%s:%n",
                images.length, o.model() == null ? " (untrained model: chance level)" : "");
        List<List<String>> cells = new ArrayList<>();
        for (int r = 0; r < ranked.size(); r++) {
            RetrievalRecall.Result res = RetrievalRecall.ranked(ranked.get(r), relevant, images.length);
            cells.add(List.of(r == 0 ? "exact (brute force)" : "Lucene HNSW, " + candidates[r - 1] + " candidates",
                    fmt("%.1f%%", 100 * res.at1()), fmt("%.1f%%", 100 * res.at5())));
        }
        out.print(TextTable.format("  ", List.of("search", "R@1", "R@5"), cells));
    }

    /** The rows (stored as their path) of hits. */
    private static int[] rows(List<ImageIndex.Hit> hits) {
        return hits.stream().mapToInt(h -> Integer.parseInt(h.path())).toArray();
    }

    /** Index vectors and query vectors of one distribution. */
    record VectorSet(float[][] vectors, float[][] queries) {
        static VectorSet random(Random random, int n, int queries, int dimension) {
            float[][] v = new float[n][];
            for (int i = 0; i < n; i++) {
                v[i] = unit(random, dimension);
            }
            float[][] q = new float[queries][];
            for (int i = 0; i < queries; i++) {
                q[i] = unit(random, dimension);
            }
            return new VectorSet(v, q);
        }

        /**
         * sqrt(n) clusters (at least 2): each a random unit centre, and a point of it the centre plus a Gaussian in a
         * random 16-dimensional subspace (norm about 1) and isotropic noise (norm about 0.1), L2-normalised: data of a
         * low intrinsic dimension, as embeddings are. The queries are drawn the same way.
         */
        static VectorSet clustered(Random random, int n, int queries, int dimension) {
            int clusters = Math.max(2, (int) Math.sqrt(n));
            int sub = Math.min(16, dimension);
            float[][] centres = new float[clusters][];
            float[][][] bases = new float[clusters][sub][];
            for (int c = 0; c < clusters; c++) {
                centres[c] = unit(random, dimension);
                for (int j = 0; j < sub; j++) {
                    bases[c][j] = unit(random, dimension);
                }
            }
            float[][] v = new float[n][];
            for (int i = 0; i < n; i++) {
                int c = random.nextInt(clusters);
                v[i] = point(random, centres[c], bases[c]);
            }
            float[][] q = new float[queries][];
            for (int i = 0; i < queries; i++) {
                int c = random.nextInt(clusters);
                q[i] = point(random, centres[c], bases[c]);
            }
            return new VectorSet(v, q);
        }

        private static float[] point(Random random, float[] centre, float[][] basis) {
            int d = centre.length;
            float[] p = centre.clone();
            double scale = 1 / Math.sqrt(basis.length);
            for (float[] b : basis) {
                float z = (float) (random.nextGaussian() * scale);
                for (int i = 0; i < d; i++) {
                    p[i] += z * b[i];
                }
            }
            float noise = (float) (0.1 / Math.sqrt(d));
            double norm = 0;
            for (int i = 0; i < d; i++) {
                p[i] += noise * (float) random.nextGaussian();
                norm += p[i] * p[i];
            }
            float inv = (float) (1 / Math.sqrt(norm));
            for (int i = 0; i < d; i++) {
                p[i] *= inv;
            }
            return p;
        }
    }

    /**
     * Builds an index of the set's vectors with {@code settings}; times opening it, HNSW queries at each candidate count
     * and exact queries; HNSW's recall@k against exact search.
     */
    private Scale scale(String set, VectorSet vs, ImageIndex.Settings settings, Path dir) throws IOException {
        int n = vs.vectors().length;
        int dimension = vs.vectors()[0].length;
        List<ImageIndex.Entry> entries = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String id = Integer.toString(i);
            entries.add(new ImageIndex.Entry(id, id, null, vs.vectors()[i]));
        }
        long t0 = System.nanoTime();
        ImageIndex.create(dir, entries, set + " unit vectors", settings);
        double build = (System.nanoTime() - t0) / 1e9;
        long bytes;
        try (Stream<Path> files = Files.list(dir)) {
            bytes = files.mapToLong(p -> p.toFile().length()).sum();
        }
        ImageIndex.OpenCost open = ImageIndex.openCost(dir);
        out.printf("  %s: %,d vectors of %d (%s) indexed in %.1f s%n", set, n, dimension, settings, build);
        int[] candidates = o.candidates().stream().mapToInt(Integer::intValue).distinct().toArray();
        int queries = vs.queries().length;
        double[][] ms = new double[candidates.length + 1][queries]; // the last row: exact
        double[] overlap = new double[candidates.length];
        try (ImageIndex index = ImageIndex.open(dir); ImageIndex.Searcher s = index.searcher()) {
            for (int i = 0; i < Math.min(100, queries); i++) { // warm-up
                s.search(vs.queries()[i], o.k());
            }
            for (int i = 0; i < queries; i++) {
                float[] q = vs.queries()[i];
                long a = System.nanoTime();
                Set<Integer> truth = new HashSet<>();
                for (int r : rows(s.exact(q, o.k()))) {
                    truth.add(r);
                }
                ms[candidates.length][i] = (System.nanoTime() - a) / 1e6;
                for (int c = 0; c < candidates.length; c++) {
                    a = System.nanoTime();
                    int[] approx = rows(s.search(q, o.k(), candidates[c]));
                    ms[c][i] = (System.nanoTime() - a) / 1e6;
                    overlap[c] += Arrays.stream(approx).filter(truth::contains).count() / (double) truth.size();
                }
            }
        }
        List<Latency> searches = new ArrayList<>();
        for (int c = 0; c <= candidates.length; c++) {
            Arrays.sort(ms[c]);
            searches.add(new Latency(c < candidates.length ? "HNSW, " + candidates[c] + " candidates" : "exact (brute force)",
                    ServeBench.pct(ms[c], 0.50), ServeBench.pct(ms[c], 0.99),
                    c < candidates.length ? overlap[c] / queries : 1.0));
        }
        FileTrees.delete(dir); // the next index's room on disk
        return new Scale(set, n, dimension, settings, build, bytes, open, searches);
    }

    /** A random direction: Gaussian coordinates, L2-normalised. */
    static float[] unit(Random random, int dimension) {
        float[] v = new float[dimension];
        double norm = 0;
        for (int i = 0; i < dimension; i++) {
            v[i] = (float) random.nextGaussian();
            norm += v[i] * v[i];
        }
        float inv = (float) (1 / Math.sqrt(norm));
        for (int i = 0; i < dimension; i++) {
            v[i] *= inv;
        }
        return v;
    }
}
