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

/**
 * A plain Lucene index of image embeddings (HNSW, cosine), one document per image:
 * <ul>
 *   <li>{@value #VECTOR}: {@code KnnFloatVectorField}, the L2-normalised image embedding, cosine similarity;
 *   <li>{@value #PATH}: {@code StringField} (stored, indexed as one term), the image file's absolute path;
 *   <li>{@value #SHA256}: {@code StringField} (stored), the SHA-256 of the file's bytes: the key of incremental indexing;
 *   <li>{@value #TEXT}: {@code StoredField}, the caption when the images came from a manifest.
 * </ul>
 * The commit's user data holds {@value #MODEL} (the embedding model's path), {@value #CONFIG} (its config file for a
 * checkpoint, if any) and {@value #DIMENSION}, so that {@code search} embeds queries with the same model. Luke or any
 * Lucene 9 tool opens the folder.
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

    /** One image to index: its file and an optional caption. */
    public record Source(Path image, String text) {}

    /** What an indexing run did. */
    public record Stats(int added, int unchanged, int replaced, int total) {}

    /** A search hit: the image, its cosine similarity to the query, its caption (or null), the SHA-256 of its bytes. */
    public record Hit(String path, double score, String text, String sha256) {}

    /** An indexed image's stored fields: its path, the SHA-256 of its bytes when indexed, its caption (or null). */
    public record Stored(String path, String sha256, String text) {}

    private final Directory directory;

    private ImageIndex(Directory directory) {
        this.directory = directory;
    }

    /** Opens (not creates) the index in {@code dir}. */
    public static ImageIndex open(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException("no index at " + dir + " (build one with: mm4j index --model DIR --images DIR --out " + dir + ")");
        }
        Directory d = FSDirectory.open(dir);
        if (!DirectoryReader.indexExists(d)) {
            d.close();
            throw new IOException(dir + " is not a Lucene index (build one with mm4j index)");
        }
        return new ImageIndex(d);
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
     * Adds {@code sources} to the index in {@code dir} (created if absent): an image whose bytes are already indexed
     * is skipped; a path whose bytes changed is replaced. {@code model}/{@code config} are recorded for search.
     * The index is committed once at the end: an interrupted run leaves the previous commit as it was.
     */
    public static Stats build(Path dir, Embedder embedder, List<Source> sources, String model, String config)
            throws IOException {
        Files.createDirectories(dir);
        try (Directory d = FSDirectory.open(dir);
                IndexWriter w = new IndexWriter(d, new IndexWriterConfig().setOpenMode(IndexWriterConfig.OpenMode.CREATE_OR_APPEND))) {
            String recorded = w.getLiveCommitData() == null ? null : liveData(w).get(DIMENSION);
            if (recorded != null && Integer.parseInt(recorded) != embedder.dimension()) {
                throw new IllegalArgumentException(dir + " holds vectors of " + recorded + " dimensions, the model gives "
                        + embedder.dimension() + ": index into another --out");
            }
            int added = 0;
            int unchanged = 0;
            int replaced = 0;
            List<Source> pending = new ArrayList<>();
            List<byte[]> bytes = new ArrayList<>();
            List<String> hashes = new ArrayList<>();
            try (DirectoryReader existing = DirectoryReader.indexExists(d) ? DirectoryReader.open(w) : null) {
                IndexSearcher searcher = existing == null ? null : new IndexSearcher(existing);
                java.util.Set<String> seen = new java.util.HashSet<>();
                for (Source s : sources) {
                    byte[] b = Files.readAllBytes(s.image());
                    String hash = sha256(b);
                    if (!seen.add(hash) || searcher != null && searcher.count(new TermQuery(new Term(SHA256, hash))) > 0) {
                        unchanged++;
                        continue;
                    }
                    if (searcher != null && searcher.count(new TermQuery(new Term(PATH, s.image().toString()))) > 0) {
                        replaced++;
                    }
                    pending.add(s);
                    bytes.add(b);
                    hashes.add(hash);
                    if (pending.size() == BATCH) {
                        added += flush(w, embedder, pending, bytes, hashes);
                    }
                }
            }
            added += flush(w, embedder, pending, bytes, hashes);
            w.setLiveCommitData(Map.of(MODEL, model, CONFIG, config == null ? "" : config,
                    DIMENSION, Integer.toString(embedder.dimension())).entrySet());
            w.commit();
            return new Stats(added - replaced, unchanged, replaced, w.getDocStats().numDocs);
        }
    }

    private static Map<String, String> liveData(IndexWriter w) {
        Map<String, String> m = new java.util.HashMap<>();
        w.getLiveCommitData().forEach(e -> m.put(e.getKey(), e.getValue()));
        return m;
    }

    private static int flush(IndexWriter w, Embedder embedder, List<Source> pending, List<byte[]> bytes, List<String> hashes)
            throws IOException {
        if (pending.isEmpty()) {
            return 0;
        }
        float[][] vectors = embedder.images(bytes, pending.stream().map(s -> s.image().toString()).toList());
        for (int i = 0; i < pending.size(); i++) {
            Source s = pending.get(i);
            // a changed file replaces its old vector
            w.updateDocument(new Term(PATH, s.image().toString()),
                    document(new Entry(s.image().toString(), hashes.get(i), s.text(), vectors[i])));
        }
        int n = pending.size();
        pending.clear();
        bytes.clear();
        hashes.clear();
        return n;
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
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("no vectors to index into " + dir);
        }
        int dimension = entries.get(0).vector().length;
        Files.createDirectories(dir);
        IndexWriterConfig config = new IndexWriterConfig().setOpenMode(IndexWriterConfig.OpenMode.CREATE)
                .setRAMBufferSizeMB(1024); // flush by commit only (up to ~1 GB of heap: 1M vectors of 64 floats)
        try (Directory d = FSDirectory.open(dir); IndexWriter w = new IndexWriter(d, config)) {
            for (Entry e : entries) {
                if (e.vector().length != dimension) {
                    throw new IllegalArgumentException(e.path() + ": a vector of " + e.vector().length + " dimensions among "
                            + dimension);
                }
                w.addDocument(document(e));
            }
            w.setLiveCommitData(Map.of(MODEL, model, CONFIG, "", DIMENSION, Integer.toString(dimension)).entrySet());
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

    /** A point-in-time view of the index for many queries (one reader, opened now). */
    public Searcher searcher() throws IOException {
        return new Searcher(DirectoryReader.open(directory));
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

        /** The best {@code k} of the {@code max(k, candidates)} nearest images that the HNSW graph search finds, best first. */
        public List<Hit> search(float[] query, int k, int candidates) throws IOException {
            checkK(k, candidates);
            return hits(searcher.search(new KnnFloatVectorQuery(VECTOR, query, Math.max(k, candidates)), k).scoreDocs);
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
                unavailable = null;
                return searchers;
            } catch (IOException | RuntimeException e) {
                unavailable = "index unavailable: " + dir + " cannot be read (" + e.getClass().getSimpleName() + ": "
                        + e.getMessage() + ")";
                throw new UnavailableException(unavailable);
            }
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
