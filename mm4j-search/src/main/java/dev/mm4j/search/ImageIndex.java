package dev.mm4j.search;

import dev.mm4j.inference.Embedder;
import ai.djl.Device;
import dev.mm4j.data.CaptionPairs;
import dev.mm4j.flava.FlavaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.KnnFloatVectorQuery;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.SearcherManager;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A plain Lucene index of image embeddings (HNSW, cosine), one document per image:
 * <ul>
 *   <li>{@value #VECTOR}: {@code KnnFloatVectorField}, the L2-normalised image embedding, cosine similarity;
 *   <li>{@value #PATH}: {@code StringField} (stored, indexed as one term), the image file's absolute path;
 *   <li>{@value #SHA256}: {@code StringField} (stored), the SHA-256 of the file's bytes: the key of incremental indexing;
 *   <li>{@value #TEXT}: {@code StoredField}, the caption when the images came from a manifest.
 * </ul>
 * The commit's user data holds {@value #MODEL} (the embedding model's path), {@value #CONFIG} (its config file for a
 * checkpoint, if any) and {@value #DIMENSION}, so that {@code search} embeds queries with the same model, and the
 * {@link Settings} ({@value #HNSW_M}, {@value #BEAM_WIDTH}, {@value #QUANTIZATION}) that later runs keep. Opening an
 * index verifies its files' checksums ({@link #verify}), once per commit. Luke or any Lucene 9 tool opens the folder.
 */
public final class ImageIndex implements AutoCloseable {
    public static final String VECTOR = "vector";
    public static final String PATH = "path";
    public static final String SHA256 = "sha256";
    public static final String TEXT = "text";
    public static final String MODEL = "mm4j.model";
    public static final String CONFIG = "mm4j.config";
    public static final String DIMENSION = "mm4j.dimension";

    /** Images embedded per batch while indexing. */
    private static final int BATCH = 64;
    private static final Logger LOG = LoggerFactory.getLogger(ImageIndex.class);

    /** One image to index: its file and an optional caption. */
    public record Source(Path image, String text) {}

    /**
     * What an indexing run did: images added, unchanged (already indexed, skipped), replaced (a path whose bytes
     * changed), the index's size after it, the files skipped because they could not be used, the settings the index
     * was built with, and the commits made.
     */
    public record Stats(int added, int unchanged, int replaced, int total, List<Skipped> skipped, Settings settings,
            int commits) {
        /** The skipped files counted by reason ("image undecodable", ...), in reason order. */
        public Map<String, Integer> skippedByReason() {
            return countByReason(skipped);
        }

        static Map<String, Integer> countByReason(List<Skipped> skipped) {
            Map<String, Integer> m = new java.util.TreeMap<>();
            skipped.forEach(s -> m.merge(s.reason(), 1, Integer::sum));
            return m;
        }
    }

    /** A file that was not indexed: its path, the kind of problem (as training counts them), the message (naming it). */
    public record Skipped(String path, String reason, String message) {}

    public static final String HNSW_M = "mm4j.hnsw_m";
    public static final String BEAM_WIDTH = "mm4j.beam_width";
    public static final String QUANTIZATION = "mm4j.quantization";

    /** How the vectors are stored: as float32 only, or also as int8 ({@code Lucene99HnswScalarQuantizedVectorsFormat}). */
    public enum Quantization {
        /** float32 vectors, the graph searched on them ({@code Lucene99HnswVectorsFormat}). */
        NONE,
        /**
         * int8 scalar quantization (Lucene's 7-bit, per-segment confidence interval): the graph is built and searched
         * on the quantized vectors (4x less memory to scan), the float32 vectors are kept too (for merges and exact search).
         */
        INT8;

        /** {@code none} or {@code int8} (any case). */
        public static Quantization parse(String s) {
            for (Quantization q : values()) {
                if (q.key().equalsIgnoreCase(s.trim())) {
                    return q;
                }
            }
            throw new IllegalArgumentException("quantization must be none or int8, got '" + s + "'");
        }

        /** The recorded value: {@code none}, {@code int8}. */
        public String key() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * The HNSW graph's settings and the vectors' encoding, recorded in the commit's user data ({@value #HNSW_M},
     * {@value #BEAM_WIDTH}, {@value #QUANTIZATION}): {@code hnswM} neighbours per node (Lucene's maxConn, OpenSearch's
     * {@code m}), {@code beamWidth} candidates while inserting (OpenSearch's {@code ef_construction}).
     */
    public record Settings(int hnswM, int beamWidth, Quantization quantization) {
        /** Lucene's defaults (M 16, beam width 100, float32): what indexes that record no settings were built with. */
        public static final Settings DEFAULT = new Settings(
                org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat.DEFAULT_MAX_CONN,
                org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat.DEFAULT_BEAM_WIDTH, Quantization.NONE);

        public Settings {
            if (hnswM < 1 || hnswM > org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat.MAXIMUM_MAX_CONN) {
                throw new IllegalArgumentException("--hnsw-m must be in [1, "
                        + org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat.MAXIMUM_MAX_CONN + "], got " + hnswM);
            }
            if (beamWidth < 1 || beamWidth > org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat.MAXIMUM_BEAM_WIDTH) {
                throw new IllegalArgumentException("--beam-width must be in [1, "
                        + org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat.MAXIMUM_BEAM_WIDTH + "], got " + beamWidth);
            }
            java.util.Objects.requireNonNull(quantization, "quantization");
        }

        /** The settings a commit's user data records; absent keys are {@link #DEFAULT}'s (indexes of earlier versions). */
        public static Settings recorded(Map<String, String> userData) {
            try {
                return new Settings(Integer.parseInt(userData.getOrDefault(HNSW_M, Integer.toString(DEFAULT.hnswM()))),
                        Integer.parseInt(userData.getOrDefault(BEAM_WIDTH, Integer.toString(DEFAULT.beamWidth()))),
                        Quantization.parse(userData.getOrDefault(QUANTIZATION, DEFAULT.quantization().key())));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("the index records unusable settings " + userData + ": " + e.getMessage(), e);
            }
        }

        /** The user data entries that record these settings. */
        public Map<String, String> userData() {
            return Map.of(HNSW_M, Integer.toString(hnswM), BEAM_WIDTH, Integer.toString(beamWidth), QUANTIZATION, quantization.key());
        }

        /** Lucene's vector format for these settings. */
        public org.apache.lucene.codecs.KnnVectorsFormat format() {
            return quantization == Quantization.INT8
                    ? new org.apache.lucene.codecs.lucene99.Lucene99HnswScalarQuantizedVectorsFormat(hnswM, beamWidth)
                    : new org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat(hnswM, beamWidth);
        }

        /**
         * The default codec with {@link #format()} for the vector field. Segments record the format by name (both are
         * Lucene's own, found by SPI), so any Lucene 9.12 reader opens the index without this codec.
         */
        public org.apache.lucene.codecs.Codec codec() {
            org.apache.lucene.codecs.KnnVectorsFormat f = format();
            return new org.apache.lucene.codecs.lucene912.Lucene912Codec() {
                @Override
                public org.apache.lucene.codecs.KnnVectorsFormat getKnnVectorsFormatForField(String field) {
                    return f;
                }
            };
        }

        @Override
        public String toString() {
            return "HNSW M " + hnswM + ", beam width " + beamWidth + ", " + (quantization == Quantization.INT8 ? "int8" : "float32");
        }
    }

    /**
     * The settings a caller asks for; null keeps what an existing index records (or {@link Settings#DEFAULT}'s for a new
     * one). A value that differs from the recorded one is refused: the graph and the stored vectors of an index are
     * built one way.
     */
    public record Requested(Integer hnswM, Integer beamWidth, Quantization quantization) {
        public static final Requested NONE = new Requested(null, null, null);

        /** The settings to build with, given what {@code dir} records ({@code recorded}; null for a new index). */
        public Settings resolve(Path dir, Settings recorded) {
            Settings base = recorded == null ? Settings.DEFAULT : recorded;
            Settings s = new Settings(hnswM == null ? base.hnswM() : hnswM, beamWidth == null ? base.beamWidth() : beamWidth,
                    quantization == null ? base.quantization() : quantization);
            if (recorded != null && !s.equals(recorded)) {
                List<String> diff = new ArrayList<>();
                if (s.hnswM() != recorded.hnswM()) {
                    diff.add("--hnsw-m " + recorded.hnswM() + " (asked: " + s.hnswM() + ")");
                }
                if (s.beamWidth() != recorded.beamWidth()) {
                    diff.add("--beam-width " + recorded.beamWidth() + " (asked: " + s.beamWidth() + ")");
                }
                if (s.quantization() != recorded.quantization()) {
                    diff.add("--quantization " + recorded.quantization().key() + " (asked: " + s.quantization().key() + ")");
                }
                throw new IllegalArgumentException(dir + " was built with " + String.join(", ", diff)
                        + ": leave the option out to keep the index's setting, or index into another --out");
            }
            return s;
        }
    }

    /** A search hit: the image, its cosine similarity to the query, its caption (or null), the SHA-256 of its bytes. */
    public record Hit(String path, double score, String text, String sha256) {}

    /** An indexed image's stored fields: its path, the SHA-256 of its bytes when indexed, its caption (or null). */
    public record Stored(String path, String sha256, String text) {}

    private final Path path;
    private final Directory directory;

    private ImageIndex(Path path, Directory directory) {
        this.path = path;
        this.directory = directory;
    }

    /**
     * Opens (not creates) the index in {@code dir} and verifies its latest commit ({@link #verify}): a corrupt index
     * is refused with an {@link IOException} naming the damaged file.
     */
    public static ImageIndex open(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException("no index at " + dir + " (build one with: mm4j index --model DIR --images DIR --out " + dir + ")");
        }
        Directory d = FSDirectory.open(dir);
        try {
            if (!DirectoryReader.indexExists(d)) {
                throw new IOException(dir + " is not a Lucene index (build one with mm4j index)");
            }
            ImageIndex index = new ImageIndex(dir, d);
            index.reader().close(); // opens and verifies the latest commit
            return index;
        } catch (IOException | RuntimeException e) {
            d.close();
            throw e;
        }
    }

    /** The commit generation whose files {@link #reader()} verified last (-1: none yet). */
    private long verifiedGeneration = -1;

    /**
     * A reader of the latest commit, verified once per commit generation: {@link #verify} runs when the generation
     * differs from the one verified last (a first open, or another {@code index} run committed since).
     */
    private synchronized DirectoryReader reader() throws IOException {
        DirectoryReader r = openChecked(path, directory);
        try {
            long generation = r.getIndexCommit().getGeneration();
            if (generation != verifiedGeneration) {
                verify(path, r);
                verifiedGeneration = generation;
            }
            return r;
        } catch (IOException | RuntimeException e) {
            r.close();
            throw e;
        }
    }

    /**
     * Opens the latest commit of {@code d}; a damaged commit (a header, footer or segments file that fails Lucene's
     * checks, or a segment file missing or cut short) is an {@link IOException} of one line naming {@code dir}'s file.
     */
    static DirectoryReader openChecked(Path dir, Directory d) throws IOException {
        try {
            return DirectoryReader.open(d);
        } catch (org.apache.lucene.index.CorruptIndexException | org.apache.lucene.index.IndexFormatTooOldException
                | org.apache.lucene.index.IndexFormatTooNewException | java.io.EOFException
                | java.nio.file.NoSuchFileException e) {
            throw corrupt(dir, e);
        }
    }

    /**
     * Verifies every file of the reader's segments against the CRC32 checksum Lucene wrote in its footer
     * ({@code LeafReader.checkIntegrity}: reads each file once, sequentially). Lucene checks only headers and footers
     * when it opens a segment, so a flipped byte inside a file would otherwise be read back silently (e.g. as a
     * different stored path). Throws an {@link IOException} of one line naming the damaged file.
     */
    public static void verify(Path dir, DirectoryReader reader) throws IOException {
        for (org.apache.lucene.index.LeafReaderContext leaf : reader.leaves()) {
            try {
                leaf.reader().checkIntegrity();
            } catch (org.apache.lucene.index.CorruptIndexException | java.io.EOFException e) {
                throw corrupt(dir, e);
            }
        }
    }

    /** What opening an index costs: the latest commit opened without verification, then {@link #verify}, in ms. */
    public record OpenCost(double openMs, double verifyMs) {}

    /**
     * Times opening the latest commit of {@code dir} ({@code DirectoryReader.open}, which checks headers and footers
     * only) and verifying it ({@link #verify}: every byte through CRC32); the files are read from the page cache when
     * they were just written or read.
     */
    public static OpenCost openCost(Path dir) throws IOException {
        try (Directory d = FSDirectory.open(dir)) {
            long t0 = System.nanoTime();
            try (DirectoryReader r = openChecked(dir, d)) {
                long t1 = System.nanoTime();
                verify(dir, r);
                long t2 = System.nanoTime();
                return new OpenCost((t1 - t0) / 1e6, (t2 - t1) / 1e6);
            }
        }
    }

    /** The one-line error for a damaged index: the file (from Lucene's resource description) and what is wrong. */
    private static IOException corrupt(Path dir, IOException e) {
        String what = e instanceof org.apache.lucene.index.CorruptIndexException c ? c.getOriginalMessage() : e.getMessage();
        String where = e instanceof org.apache.lucene.index.CorruptIndexException c ? c.getResourceDescription() : e.getMessage();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("path=\"([^\"]+)\"").matcher(String.valueOf(where));
        String file = m.find() ? Path.of(m.group(1)).getFileName().toString() : null;
        if (file == null && e instanceof java.nio.file.NoSuchFileException n && n.getFile() != null) {
            file = Path.of(n.getFile()).getFileName().toString();
            what = "the file is missing";
        }
        String head = "corrupt index " + dir + (file == null ? "" : ": " + file);
        return new IOException(head + ": " + (what == null ? e.toString() : what).replaceAll("\\s+", " ").trim()
                + " (the index cannot be trusted: rebuild it with mm4j index into a new --out)", e);
    }

    /** The images of a folder (recursively: .jpg, .jpeg, .png, .gif, .bmp) or of a manifest (.jsonl/.csv, with captions). */
    public static List<Source> sources(Path imagesOrManifest) throws IOException {
        if (Files.isRegularFile(imagesOrManifest)) {
            List<Source> out = new ArrayList<>();
            for (CaptionPairs.Pair p : CaptionPairs.manifest(imagesOrManifest)) {
                out.add(new Source(Path.of(p.imageKey()), p.text()));
            }
            return out;
        }
        if (!Files.isDirectory(imagesOrManifest)) {
            throw new IOException("--images " + imagesOrManifest + ": no such folder or manifest");
        }
        try (Stream<Path> files = Files.walk(imagesOrManifest)) {
            List<Source> out = files.filter(Files::isRegularFile).filter(ImageIndex::isImage).sorted()
                    .map(p -> new Source(p.toAbsolutePath().normalize(), null)).toList();
            if (out.isEmpty()) {
                throw new IOException(imagesOrManifest + " holds no image (.jpg, .jpeg, .png, .gif, .bmp)");
            }
            return out;
        }
    }

    private static boolean isImage(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".jpg") || n.endsWith(".jpeg") || n.endsWith(".png") || n.endsWith(".gif") || n.endsWith(".bmp");
    }

    /**
     * Adds {@code sources} to the index in {@code dir} (created if absent) with the default settings (or those the
     * index records), committing every {@value #DEFAULT_COMMIT_EVERY} images: see
     * {@link #build(Path, Embedder, List, String, String, Requested, int)}.
     */
    public static Stats build(Path dir, Embedder embedder, List<Source> sources, String model, String config)
            throws IOException {
        return build(dir, embedder, sources, model, config, Requested.NONE, DEFAULT_COMMIT_EVERY);
    }

    /**
     * Adds {@code sources} to the index in {@code dir} (created if absent): an image whose bytes are already indexed
     * is skipped; a path whose bytes changed is replaced; a file that cannot be read or decoded (empty, truncated, not
     * an image, a decompression bomb) is skipped with a warning naming it, and counted in {@link Stats#skipped()}.
     * {@code model}/{@code config} and the {@link Settings} are recorded for search and later runs ({@code requested}:
     * what the caller asks for, checked against what an existing index records). An existing index is verified
     * ({@link #verify}) first. The work is committed every {@code commitEvery} added images and at the end, so an
     * interrupted run (even {@code kill -9}) keeps what it committed and the next run embeds only the rest.
     */
    public static Stats build(Path dir, Embedder embedder, List<Source> sources, String model, String config,
            Requested requested, int commitEvery) throws IOException {
        if (commitEvery < 1) {
            throw new IllegalArgumentException("commit every must be at least 1 image, got " + commitEvery);
        }
        Files.createDirectories(dir);
        try (Directory d = FSDirectory.open(dir);
                DirectoryReader existing = DirectoryReader.indexExists(d) ? openChecked(dir, d) : null) {
            Map<String, String> recorded = existing == null ? Map.of() : existing.getIndexCommit().getUserData();
            if (existing != null) {
                verify(dir, existing);
            }
            String dimension = recorded.get(DIMENSION);
            if (dimension != null && Integer.parseInt(dimension) != embedder.dimension()) {
                throw new IllegalArgumentException(dir + " holds vectors of " + dimension + " dimensions, the model gives "
                        + embedder.dimension() + ": index into another --out");
            }
            Settings settings = requested.resolve(dir, existing == null ? null : Settings.recorded(recorded));
            IndexWriterConfig wc = new IndexWriterConfig().setOpenMode(IndexWriterConfig.OpenMode.CREATE_OR_APPEND)
                    .setCodec(settings.codec()).setCommitOnClose(false); // commits are explicit: a failure keeps the last
            try (IndexWriter w = new IndexWriter(d, wc)) {
                Map<String, String> data = new java.util.LinkedHashMap<>(Map.of(MODEL, model, CONFIG, config == null ? "" : config,
                        DIMENSION, Integer.toString(embedder.dimension())));
                data.putAll(settings.userData());
                w.setLiveCommitData(data.entrySet());
                return new Builder(dir, w, embedder, existing == null ? null : new IndexSearcher(existing), commitEvery, settings)
                        .run(sources);
            }
        }
    }

    /** The largest image file {@code index} reads (1 GiB); a bigger one is skipped unread. */
    static final long MAX_FILE_BYTES = 1L << 30;

    /** Images added between commits by default ({@code index --commit-every}): what a {@code kill -9} can lose at most. */
    public static final int DEFAULT_COMMIT_EVERY = 256;

    /** One indexing run: reads, checks, embeds and commits in chunks. */
    private static final class Builder {
        private final Path dir;
        private final IndexWriter w;
        private final Embedder embedder;
        private final IndexSearcher existing;
        private final int commitEvery;
        private final Settings settings;
        private final List<Source> pending = new ArrayList<>();
        private final List<float[]> pixels = new ArrayList<>();
        private final List<String> hashes = new ArrayList<>();
        private final List<Skipped> skipped = new ArrayList<>();
        private final java.util.Set<String> seen = new java.util.HashSet<>();
        private int added;
        private int unchanged;
        private int replaced;
        private int uncommitted;
        private int commits;

        Builder(Path dir, IndexWriter w, Embedder embedder, IndexSearcher existing, int commitEvery, Settings settings) {
            this.dir = dir;
            this.w = w;
            this.embedder = embedder;
            this.existing = existing;
            this.commitEvery = commitEvery;
            this.settings = settings;
        }

        Stats run(List<Source> sources) throws IOException {
            for (Source s : sources) {
                String name = s.image().toString();
                byte[] b;
                try {
                    long size = Files.size(s.image());
                    if (size > MAX_FILE_BYTES) {
                        skip(name, "image unreadable", name + ": a file of " + size + " bytes, over the " + MAX_FILE_BYTES
                                + " an image may have");
                        continue;
                    }
                    b = Files.readAllBytes(s.image());
                } catch (java.nio.file.NoSuchFileException e) {
                    skip(name, "image file missing", name + ": no such file");
                    continue;
                } catch (IOException | RuntimeException e) {
                    skip(name, "image unreadable", name + ": cannot read it: " + e);
                    continue;
                }
                String hash = sha256(b);
                if (!seen.add(hash) || existing != null && existing.count(new TermQuery(new Term(SHA256, hash))) > 0) {
                    unchanged++;
                    continue;
                }
                float[] chw;
                try {
                    chw = embedder.transform().apply(b, name);
                } catch (dev.mm4j.data.ImageTransform.ImageTooLargeException e) {
                    seen.remove(hash);
                    skip(name, "image too large", e.getMessage());
                    continue;
                } catch (IOException | RuntimeException e) {
                    seen.remove(hash);
                    skip(name, "image undecodable", b.length == 0 ? name + ": an empty file (0 bytes)" : e.getMessage());
                    continue;
                }
                if (existing != null && existing.count(new TermQuery(new Term(PATH, name))) > 0) {
                    replaced++;
                }
                pending.add(s);
                pixels.add(chw);
                hashes.add(hash);
                if (pending.size() >= Math.min(BATCH, commitEvery - uncommitted)) {
                    flush();
                }
            }
            flush();
            if (w.getDocStats().maxDoc == 0 && !skipped.isEmpty()) {
                w.rollback();
                throw new IOException("none of the " + skipped.size() + " images could be indexed into " + dir
                        + " (skipped: " + reasons() + "); first: " + skipped.get(0).message());
            }
            commit();
            return new Stats(added - replaced, unchanged, replaced, w.getDocStats().numDocs, List.copyOf(skipped), settings,
                    commits);
        }

        private void skip(String path, String reason, String message) {
            String m = message != null && message.startsWith(path) ? message : path + ": " + message;
            LOG.warn("skipping {}", m);
            skipped.add(new Skipped(path, reason, m));
        }

        private String reasons() {
            return Stats.countByReason(skipped).toString();
        }

        /** Embeds and adds the pending images; commits when {@code commitEvery} images were added since the last one. */
        private void flush() throws IOException {
            if (!pending.isEmpty()) {
                float[][] vectors = embedder.pixels(pixels);
                for (int i = 0; i < pending.size(); i++) {
                    Source s = pending.get(i);
                    // a changed file replaces its old vector
                    w.updateDocument(new Term(PATH, s.image().toString()),
                            document(new Entry(s.image().toString(), hashes.get(i), s.text(), vectors[i])));
                }
                added += pending.size();
                uncommitted += pending.size();
                pending.clear();
                pixels.clear();
                hashes.clear();
            }
            if (uncommitted >= commitEvery) {
                commit();
            }
        }

        private void commit() throws IOException {
            w.commit();
            commits++;
            LOG.info("{}: committed {} images ({} added in this run)", dir, w.getDocStats().numDocs, added);
            uncommitted = 0;
        }
    }

    /** One document: an embedding with what the index stores next to it (text may be null). */
    public record Entry(String path, String sha256, String text, float[] vector) {}

    private static Document document(Entry e) {
        Document doc = new Document();
        doc.add(new KnnFloatVectorField(VECTOR, e.vector(), VectorSimilarityFunction.COSINE));
        doc.add(new StringField(PATH, e.path(), Field.Store.YES));
        doc.add(new StringField(SHA256, e.sha256(), Field.Store.YES));
        if (e.text() != null) {
            doc.add(new StoredField(TEXT, e.text()));
        }
        return doc;
    }

    /**
     * Writes embeddings computed elsewhere (in bulk, or {@code bench-search}'s synthetic vectors) into a new index in
     * {@code dir} as one segment: all documents are buffered in memory and written by one commit, so the HNSW graph is
     * built once (no merges).
     */
    public static void create(Path dir, List<Entry> entries, String model) throws IOException {
        create(dir, entries, model, Settings.DEFAULT);
    }

    /** As {@link #create(Path, List, String)}, with the graph and vector {@code settings} (recorded in the commit). */
    public static void create(Path dir, List<Entry> entries, String model, Settings settings) throws IOException {
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("no vectors to index into " + dir);
        }
        int dimension = entries.get(0).vector().length;
        Files.createDirectories(dir);
        IndexWriterConfig config = new IndexWriterConfig().setOpenMode(IndexWriterConfig.OpenMode.CREATE)
                .setRAMBufferSizeMB(1024) // flush by commit only (up to ~1 GB of heap: 1M vectors of 64 floats)
                .setCodec(settings.codec());
        try (Directory d = FSDirectory.open(dir); IndexWriter w = new IndexWriter(d, config)) {
            for (Entry e : entries) {
                if (e.vector().length != dimension) {
                    throw new IllegalArgumentException(e.path() + ": a vector of " + e.vector().length + " dimensions among "
                            + dimension);
                }
                w.addDocument(document(e));
            }
            Map<String, String> data = new java.util.LinkedHashMap<>(Map.of(MODEL, model, CONFIG, "", DIMENSION, Integer.toString(dimension)));
            data.putAll(settings.userData());
            w.setLiveCommitData(data.entrySet());
            w.commit();
        }
    }

    /** The key of an image in the index: the SHA-256 of its bytes, lower-case hex. */
    public static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The commit's user data: the model ({@value #MODEL}), its config ({@value #CONFIG}), {@value #DIMENSION}. */
    public Map<String, String> userData() throws IOException {
        try (Searcher s = shared()) {
            return s.reader.getIndexCommit().getUserData();
        }
    }

    /**
     * Candidates the HNSW search collects before it keeps the best k (Lucene's {@code KnnFloatVectorQuery} k, the
     * breadth of the graph search; OpenSearch's {@code ef_search} default): more is closer to exact and slower.
     */
    public static final int DEFAULT_CANDIDATES = 100;

    /**
     * The most hits ({@code k}) and candidates one search collects: Lucene sizes its queues for them up front, so a
     * billion would be an OutOfMemoryError.
     */
    public static final int MAX_K = 10_000;

    /** Refuses a {@code k} or {@code candidates} outside 1..{@link #MAX_K} with a one-line message. */
    public static void checkK(int k, int candidates) {
        if (k < 1 || k > MAX_K) {
            throw new IllegalArgumentException("k must be from 1 to " + MAX_K + ", got " + k);
        }
        if (candidates < 1 || candidates > MAX_K) {
            throw new IllegalArgumentException("candidates must be from 1 to " + MAX_K + ", got " + candidates);
        }
    }

    /** The {@code k} nearest images to an L2-normalised query vector (HNSW, {@link #DEFAULT_CANDIDATES}), best first. */
    public List<Hit> search(float[] query, int k) throws IOException {
        try (Searcher s = shared()) {
            return s.search(query, k);
        }
    }

    /**
     * The {@code k} nearest images to an L2-normalised query vector, best first: by the HNSW graph collecting
     * {@code candidates} ({@link Searcher#search(float[], int, int)}), or {@code exact}ly over every vector
     * ({@link Searcher#exact}; {@code candidates} is then unused), from the shared reader ({@link #shared()}). What
     * {@code /v1/search}'s {@code candidates} and {@code exact} map to; a value out of range ({@link #checkK}) is an
     * {@link IllegalArgumentException} naming it.
     */
    public List<Hit> search(float[] query, int k, int candidates, boolean exact) throws IOException {
        checkK(k, candidates);
        try (Searcher s = shared()) {
            return exact ? s.exact(query, k) : s.search(query, k, candidates);
        }
    }

    /** A point-in-time view of the index for many queries (one reader, opened now). */
    public Searcher searcher() throws IOException {
        return new Searcher(reader());
    }

    /** Queries against one open reader: HNSW ({@link #search}) or exact brute force over every vector ({@link #exact}). */
    public static final class Searcher implements AutoCloseable {
        final DirectoryReader reader;
        private final IndexSearcher searcher;
        private final SearcherManager from;

        private Searcher(DirectoryReader reader) {
            this.reader = reader;
            this.searcher = new IndexSearcher(reader);
            this.from = null;
        }

        private Searcher(IndexSearcher acquired, SearcherManager from) {
            this.reader = (DirectoryReader) acquired.getIndexReader();
            this.searcher = acquired;
            this.from = from;
        }

        /** The {@code k} nearest images by Lucene's HNSW graph (approximate, {@link #DEFAULT_CANDIDATES}), best first. */
        public List<Hit> search(float[] query, int k) throws IOException {
            return search(query, k, DEFAULT_CANDIDATES);
        }

        /**
         * The best {@code k} of the {@code max(k, candidates)} nearest images that the HNSW graph search finds, best
         * first. The candidates are ranked by their exact cosine from the stored float32 vectors ({@link #rescored}):
         * the same ranking as the graph's for a float32 index; for an int8 one, whose graph scores are approximate,
         * more candidates then find more of the exact top k.
         */
        public List<Hit> search(float[] query, int k, int candidates) throws IOException {
            checkK(k, candidates);
            int n = Math.max(k, candidates);
            return hits(rescored(query, searcher.search(new KnnFloatVectorQuery(VECTOR, query, n), n).scoreDocs, k));
        }

        /** The best {@code k} of {@code docs} by the cosine of their stored float32 vectors to {@code query}. */
        private ScoreDoc[] rescored(float[] query, ScoreDoc[] docs, int k) throws IOException {
            ScoreDoc[] byDoc = docs.clone();
            java.util.Arrays.sort(byDoc, java.util.Comparator.comparingInt(d -> d.doc));
            List<org.apache.lucene.index.LeafReaderContext> leaves = reader.leaves();
            org.apache.lucene.index.FloatVectorValues values = null;
            int leaf = -1;
            List<ScoreDoc> out = new ArrayList<>(byDoc.length);
            for (ScoreDoc sd : byDoc) {
                int l = org.apache.lucene.index.ReaderUtil.subIndex(sd.doc, leaves);
                if (l != leaf) {
                    leaf = l;
                    values = leaves.get(l).reader().getFloatVectorValues(VECTOR);
                }
                int target = sd.doc - leaves.get(l).docBase;
                int at = values.docID() < target ? values.advance(target) : values.docID();
                if (at != target) {
                    throw new IllegalStateException("document " + sd.doc + " has no " + VECTOR);
                }
                out.add(new ScoreDoc(sd.doc, VectorSimilarityFunction.COSINE.compare(query, values.vectorValue())));
            }
            out.sort((a, b) -> a.score != b.score ? Float.compare(b.score, a.score) : Integer.compare(a.doc, b.doc));
            return out.subList(0, Math.min(k, out.size())).toArray(new ScoreDoc[0]);
        }

        /** The {@code k} nearest images by cosine over every stored vector (exact, linear in the index size), best first. */
        public List<Hit> exact(float[] query, int k) throws IOException {
            checkK(k, 1);
            java.util.PriorityQueue<ScoreDoc> top = new java.util.PriorityQueue<>(
                    (a, b) -> a.score != b.score ? Float.compare(a.score, b.score) : Integer.compare(b.doc, a.doc));
            for (org.apache.lucene.index.LeafReaderContext leaf : reader.leaves()) {
                org.apache.lucene.index.FloatVectorValues values = leaf.reader().getFloatVectorValues(VECTOR);
                if (values == null) {
                    continue;
                }
                org.apache.lucene.util.Bits live = leaf.reader().getLiveDocs();
                for (int doc = values.nextDoc(); doc != org.apache.lucene.search.DocIdSetIterator.NO_MORE_DOCS;
                        doc = values.nextDoc()) {
                    if (live != null && !live.get(doc)) {
                        continue;
                    }
                    float score = VectorSimilarityFunction.COSINE.compare(query, values.vectorValue());
                    ScoreDoc sd = new ScoreDoc(leaf.docBase + doc, score);
                    if (top.size() < k) {
                        top.add(sd);
                    } else if (top.comparator().compare(sd, top.peek()) > 0) {
                        top.poll();
                        top.add(sd);
                    }
                }
            }
            ScoreDoc[] best = top.toArray(new ScoreDoc[0]);
            java.util.Arrays.sort(best, top.comparator().reversed());
            return hits(best);
        }

        private List<Hit> hits(ScoreDoc[] docs) throws IOException {
            List<Hit> out = new ArrayList<>();
            org.apache.lucene.index.StoredFields stored = searcher.storedFields();
            for (ScoreDoc sd : docs) {
                Document doc = stored.document(sd.doc);
                // Lucene's cosine score is (1 + cos) / 2
                out.add(new Hit(doc.get(PATH), 2 * sd.score - 1, doc.get(TEXT), doc.get(SHA256)));
            }
            return out;
        }

        /** Number of images this view holds. */
        public int size() {
            return reader.numDocs();
        }

        @Override
        public void close() throws IOException {
            if (from != null) {
                from.release(searcher);
            } else {
                reader.close();
            }
        }
    }

    /** The indexed image whose bytes had this SHA-256 (lower-case hex), if any. */
    public Optional<Stored> find(String sha256) throws IOException {
        try (Searcher shared = shared()) {
            IndexSearcher s = shared.searcher;
            TopDocs top = s.search(new TermQuery(new Term(SHA256, sha256)), 1);
            if (top.scoreDocs.length == 0) {
                return Optional.empty();
            }
            Document doc = s.storedFields().document(top.scoreDocs[0].doc);
            return Optional.of(new Stored(doc.get(PATH), doc.get(SHA256), doc.get(TEXT)));
        }
    }

    /** Opens the model the index was built with ({@value #MODEL}, {@value #CONFIG}), to embed queries as its images were. */
    public Embedder embedder(Device device) throws IOException {
        Map<String, String> info = userData();
        String model = info.get(MODEL);
        if (model == null || model.isEmpty()) {
            throw new IOException("the index records no model (" + MODEL + "): not built by mm4j index");
        }
        String config = info.getOrDefault(CONFIG, "");
        return Embedder.open(Path.of(model), config.isEmpty() ? null : FlavaConfig.load(Path.of(config)), device);
    }

    /** Number of images in the index. */
    public int size() throws IOException {
        try (Searcher s = shared()) {
            return s.size();
        }
    }

    // ---- reading side for long-running readers (the server): one shared reader, refreshed when the index changes ----

    /** The index folder went (or holds no index now): answered until it is back. */
    public static final class UnavailableException extends IOException {
        public UnavailableException(String message) {
            super(message);
        }
    }

    /** How often at most {@link #shared()} looks at the folder for a change (or for its return). */
    static final long REFRESH_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);

    private final Object sharedLock = new Object();
    private SearcherManager searchers;
    private long lastLook = System.nanoTime() - REFRESH_NANOS;
    private String unavailable;

    /**
     * A view of the index from the one reader this index holds open (Lucene's {@link SearcherManager}) rather than a
     * reader of its own: cheap, for every query of a server. At most once a second it looks at the folder: a changed
     * index (re-run {@code mm4j index}) is seen from then on; a folder gone or no longer an index is an
     * {@link UnavailableException} until it is back. Close the view (it releases the reader).
     */
    public Searcher shared() throws IOException {
        SearcherManager m = sharedSearchers();
        IndexSearcher s = m.acquire();
        return new Searcher(s, m);
    }

    /** Whether {@link #shared()} serves now (looks at the folder at most once a second). */
    public boolean available() {
        try {
            sharedSearchers();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private SearcherManager sharedSearchers() throws IOException {
        synchronized (sharedLock) {
            long now = System.nanoTime();
            if (now - lastLook < REFRESH_NANOS) {
                if (unavailable != null) {
                    throw new UnavailableException(unavailable);
                }
                if (searchers != null) {
                    return searchers;
                }
            }
            lastLook = now;
            Path dir = directory instanceof FSDirectory fs ? fs.getDirectory() : null;
            try {
                if (!DirectoryReader.indexExists(directory)) {
                    throw new java.nio.file.NoSuchFileException(dir + " (no index there now)");
                }
                if (searchers == null) {
                    searchers = new SearcherManager(directory, null);
                } else if (unavailable == null) {
                    searchers.maybeRefresh();
                } else { // back after it went: maybe another index, so a new reader
                    SearcherManager old = searchers;
                    searchers = new SearcherManager(directory, null);
                    old.close();
                }
                verifyCurrent(searchers);
                unavailable = null;
                return searchers;
            } catch (IOException | RuntimeException e) {
                unavailable = "index unavailable: " + dir + " cannot be read (" + e.getClass().getSimpleName() + ": "
                        + e.getMessage() + ")";
                throw new UnavailableException(unavailable);
            }
        }
    }

    /** Verifies the shared reader's commit against Lucene's checksums, once per commit generation (as {@link #reader()}). */
    private void verifyCurrent(SearcherManager m) throws IOException {
        IndexSearcher s = m.acquire();
        try {
            DirectoryReader r = (DirectoryReader) s.getIndexReader();
            long generation = r.getIndexCommit().getGeneration();
            synchronized (this) {
                if (generation != verifiedGeneration) {
                    verify(path, r);
                    verifiedGeneration = generation;
                }
            }
        } finally {
            m.release(s);
        }
    }

    @Override
    public void close() throws IOException {
        synchronized (sharedLock) {
            if (searchers != null) {
                searchers.close();
                searchers = null;
            }
        }
        directory.close();
    }
}
