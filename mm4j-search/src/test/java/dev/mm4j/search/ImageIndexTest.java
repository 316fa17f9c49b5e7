package dev.mm4j.search;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.Embedder;
import dev.mm4j.inference.EmbedderTest;
import ai.djl.Device;
import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.FieldInfos;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.store.FSDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Lucene image index: documented fields, incremental by content hash, nearest images by cosine. */
class ImageIndexTest {
    @TempDir Path tmp;

    static final Color[] COLOURS = {Color.RED, Color.GREEN, Color.BLUE, Color.YELLOW, Color.BLACK, Color.ORANGE};

    @Test
    void indexesIncrementallyAndFindsTheNearestImages() throws Exception {
        Path model = EmbedderTest.tinyBundle(tmp.resolve("m"));
        Path images = Files.createDirectories(tmp.resolve("images/sub"));
        for (int i = 0; i < 5; i++) {
            Files.write(images.resolve("img" + i + ".png"), EmbedderTest.png(COLOURS[i]));
        }
        Files.writeString(images.resolve("notes.txt"), "not an image");
        Path index = tmp.resolve("index");
        try (Embedder e = Embedder.open(model, null, Device.cpu())) {
            List<ImageIndex.Source> sources = ImageIndex.sources(tmp.resolve("images"));
            assertEquals(5, sources.size());
            assertEquals(stats(5, 0, 0, 5), ImageIndex.build(index, e, sources, model.toString(), null));
            assertEquals(stats(0, 5, 0, 5), ImageIndex.build(index, e, sources, model.toString(), null),
                    "unchanged images are skipped");
            Files.write(images.resolve("img0.png"), EmbedderTest.png(Color.MAGENTA)); // changed bytes, same path
            Files.write(images.resolve("img5.png"), EmbedderTest.png(COLOURS[5]));
            assertEquals(stats(1, 4, 1, 6),
                    ImageIndex.build(index, e, ImageIndex.sources(tmp.resolve("images")), model.toString(), null));

            try (ImageIndex idx = ImageIndex.open(index)) {
                assertEquals(6, idx.size());
                Map<String, String> data = idx.userData();
                assertEquals(model.toString(), data.get(ImageIndex.MODEL));
                assertEquals("16", data.get(ImageIndex.DIMENSION));
                // image -> image: each image finds itself first, with cosine 1, and the ranking is the exact one
                byte[] query = Files.readAllBytes(images.resolve("img3.png"));
                float[] q = e.images(List.of(query), List.of("q"))[0];
                List<ImageIndex.Hit> hits = idx.search(q, 6);
                assertEquals(images.resolve("img3.png").toAbsolutePath().normalize().toString(), hits.get(0).path());
                assertEquals(1.0, hits.get(0).score(), 1e-5);
                for (ImageIndex.Hit h : hits) {
                    byte[] b = Files.readAllBytes(Path.of(h.path()));
                    float[] v = e.images(List.of(b), List.of(h.path()))[0];
                    assertEquals(Embedder.cosine(q, v), h.score(), 1e-5, h.path());
                    assertEquals(ImageIndex.sha256(b), h.sha256(), h.path());
                    assertEquals(new ImageIndex.Stored(h.path(), h.sha256(), h.text()), idx.find(h.sha256()).orElseThrow());
                }
                assertTrue(idx.find(ImageIndex.sha256(EmbedderTest.png(Color.MAGENTA.darker()))).isEmpty());
                assertTrue(idx.find("../../etc/passwd").isEmpty());
                try (Embedder recorded = idx.embedder(Device.cpu())) { // the index's model embeds queries the same
                    assertArrayEquals(q, recorded.images(List.of(query), List.of("q"))[0], 1e-6f);
                }
                for (int i = 1; i < hits.size(); i++) {
                    assertTrue(hits.get(i - 1).score() >= hits.get(i).score());
                }
            }
        }
        // a plain Lucene index with the documented fields
        try (var dir = FSDirectory.open(index); DirectoryReader r = DirectoryReader.open(dir)) {
            FieldInfos infos = FieldInfos.getMergedFieldInfos(r);
            FieldInfo vector = infos.fieldInfo(ImageIndex.VECTOR);
            assertEquals(16, vector.getVectorDimension());
            assertEquals(VectorSimilarityFunction.COSINE, vector.getVectorSimilarityFunction());
            assertNotNull(infos.fieldInfo(ImageIndex.PATH));
            assertNotNull(infos.fieldInfo(ImageIndex.SHA256));
        }
    }

    /** A run that skipped nothing, with the default settings, one commit at the end. */
    private static ImageIndex.Stats stats(int added, int unchanged, int replaced, int total) {
        return new ImageIndex.Stats(added, unchanged, replaced, total, List.of(), ImageIndex.Settings.DEFAULT, 1);
    }

    /** A PNG whose header says {@code w x h} (8-bit RGB), then a few bytes of image data: a decompression bomb. */
    static byte[] pngBomb(int w, int h) throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        chunk(out, "IHDR", java.nio.ByteBuffer.allocate(13).putInt(w).putInt(h).put((byte) 8).put((byte) 2).array());
        chunk(out, "IDAT", new byte[] {0x78, (byte) 0x9c, 0x63, 0x60});
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(java.io.ByteArrayOutputStream out, String type, byte[] data) throws Exception {
        java.io.DataOutputStream d = new java.io.DataOutputStream(out);
        d.writeInt(data.length);
        byte[] t = type.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        d.write(t);
        d.write(data);
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(t);
        crc.update(data);
        d.writeInt((int) crc.getValue());
    }

    /** The paths an index holds. */
    static java.util.Set<String> paths(Path index) throws Exception {
        java.util.Set<String> out = new java.util.TreeSet<>();
        try (var dir = FSDirectory.open(index); DirectoryReader r = DirectoryReader.open(dir)) {
            for (int i = 0; i < r.maxDoc(); i++) {
                out.add(r.storedFields().document(i).get(ImageIndex.PATH));
            }
        }
        return out;
    }

    @Test
    void filesThatCannotBeUsedAreSkippedNamedAndCountedAndTheRestIndexed() throws Exception {
        Path model = EmbedderTest.tinyBundle(tmp.resolve("m"));
        Path images = Files.createDirectories(tmp.resolve("images"));
        java.util.Set<String> good = new java.util.TreeSet<>();
        for (int i = 0; i < 4; i++) {
            Path p = images.resolve("good" + i + ".png");
            Files.write(p, EmbedderTest.png(COLOURS[i]));
            good.add(p.toAbsolutePath().normalize().toString());
        }
        byte[] png = EmbedderTest.png(COLOURS[5]);
        Files.write(images.resolve("a-empty.png"), new byte[0]);
        Files.write(images.resolve("b-truncated.png"), java.util.Arrays.copyOf(png, png.length / 2));
        Files.writeString(images.resolve("c-text.jpg"), "not an image at all");
        Files.write(images.resolve("d-bomb.png"), pngBomb(20_000, 20_000));
        Path index = tmp.resolve("index");
        try (Embedder e = Embedder.open(model, null, Device.cpu())) {
            List<ImageIndex.Source> sources = ImageIndex.sources(images);
            assertEquals(8, sources.size());
            // before: the first bad file (a-empty.png) ended the run with an exception, nothing indexed
            ImageIndex.Stats s = ImageIndex.build(index, e, sources, model.toString(), null);
            assertEquals(4, s.added());
            assertEquals(4, s.total());
            assertEquals(Map.of("image undecodable", 3, "image too large", 1), s.skippedByReason());
            List<String> names = s.skipped().stream().map(k -> Path.of(k.path()).getFileName().toString()).toList();
            assertEquals(List.of("a-empty.png", "b-truncated.png", "c-text.jpg", "d-bomb.png"), names);
            assertTrue(s.skipped().get(0).message().contains("empty file (0 bytes)"), s.skipped().get(0).message());
            assertTrue(s.skipped().get(1).message().contains("truncated"), s.skipped().get(1).message());
            assertTrue(s.skipped().get(3).message().contains("decompression bomb"), s.skipped().get(3).message());
            for (ImageIndex.Skipped k : s.skipped()) {
                assertTrue(k.message().startsWith(k.path() + ": "), k.toString());
            }
            assertEquals(good, paths(index));
            // a second run skips the same files again (and re-tries them: one may have been fixed), adds nothing
            ImageIndex.Stats again = ImageIndex.build(index, e, sources, model.toString(), null);
            assertEquals(0, again.added());
            assertEquals(4, again.unchanged());
            assertEquals(4, again.skipped().size());

            // nothing usable at all: a clear error, and no index
            Path bad = Files.createDirectories(tmp.resolve("bad"));
            Files.write(bad.resolve("x.png"), new byte[0]);
            Files.write(bad.resolve("y.png"), pngBomb(30_000, 30_000));
            Exception ex = assertThrows(java.io.IOException.class,
                    () -> ImageIndex.build(tmp.resolve("none"), e, ImageIndex.sources(bad), model.toString(), null));
            assertTrue(ex.getMessage().startsWith("none of the 2 images could be indexed into " + tmp.resolve("none")
                    + " (skipped: {image too large=1, image undecodable=1}); first: "), ex.getMessage());
            assertFalse(DirectoryReader.indexExists(FSDirectory.open(tmp.resolve("none"))));
        }
    }

    @Test
    void commitsEveryNImagesAndAtTheEnd() throws Exception {
        Path model = EmbedderTest.tinyBundle(tmp.resolve("m"));
        Path images = Files.createDirectories(tmp.resolve("images"));
        for (int i = 0; i < 5; i++) {
            Files.write(images.resolve("img" + i + ".png"), EmbedderTest.png(COLOURS[i]));
        }
        Path index = tmp.resolve("index");
        try (Embedder e = Embedder.open(model, null, Device.cpu())) {
            ImageIndex.Stats s = ImageIndex.build(index, e, ImageIndex.sources(images), model.toString(), null,
                    ImageIndex.Requested.NONE, 2);
            assertEquals(5, s.added());
            assertEquals(3, s.commits(), "after 2, after 4, and at the end");
            try (var dir = FSDirectory.open(index); DirectoryReader r = DirectoryReader.open(dir)) {
                assertEquals(3, r.getIndexCommit().getGeneration(), "three commits");
                assertEquals(model.toString(), r.getIndexCommit().getUserData().get(ImageIndex.MODEL));
            }
            assertThrows(IllegalArgumentException.class, () -> ImageIndex.build(index, e, ImageIndex.sources(images),
                    model.toString(), null, ImageIndex.Requested.NONE, 0));
        }
    }

    /** Flips one byte of {@code file} at {@code offset}. */
    static void flip(Path file, long offset) throws Exception {
        try (java.nio.channels.FileChannel c = java.nio.channels.FileChannel.open(file,
                java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1);
            c.read(b, offset);
            b.put(0, (byte) (b.get(0) ^ 0x01));
            b.rewind();
            c.write(b, offset);
        }
    }

    @Test
    void aFlippedByteInASegmentIsRefusedNamingTheFile() throws Exception {
        int n = 400;
        float[][] vectors = unitVectors(n, 16, 7);
        List<ImageIndex.Entry> entries = new java.util.ArrayList<>();
        for (int i = 0; i < n; i++) {
            entries.add(new ImageIndex.Entry("/images/img" + i + ".png", "h" + i, null, vectors[i]));
        }
        Path dir = tmp.resolve("idx");
        ImageIndex.create(dir, entries, "vectors");
        Path cfs = dir.resolve("_0.cfs");
        assertTrue(Files.size(cfs) > 6400, "size " + Files.size(cfs));
        try (ImageIndex idx = ImageIndex.open(dir)) {
            assertEquals(n, idx.size());
        }
        // offset 6300, as in the issue (there: a stored path changed)
        flip(cfs, 6300);
        // before: opened, and a search returned a changed path without a word
        Exception e = assertThrows(java.io.IOException.class, () -> ImageIndex.open(dir));
        assertTrue(e.getMessage().startsWith("corrupt index " + dir + ": _0.cfs: checksum failed"), e.getMessage());
        assertTrue(e.getMessage().endsWith("(the index cannot be trusted: rebuild it with mm4j index into a new --out)"),
                e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        flip(cfs, 6300); // restored: verified again, and found intact
        try (ImageIndex idx = ImageIndex.open(dir)) {
            assertEquals(n, idx.size());
            // another commit (e.g. another index run) while the index is open: its segment is verified when first read
            try (var d = FSDirectory.open(dir);
                    org.apache.lucene.index.IndexWriter w = new org.apache.lucene.index.IndexWriter(d,
                            new org.apache.lucene.index.IndexWriterConfig())) {
                w.addDocument(List.of(new org.apache.lucene.document.StringField(ImageIndex.PATH, "x".repeat(5000),
                        org.apache.lucene.document.Field.Store.YES)));
                w.commit();
            }
            Path second = dir.resolve("_1.cfs");
            flip(second, Files.size(second) / 2);
            e = assertThrows(java.io.IOException.class, idx::searcher);
            assertTrue(e.getMessage().startsWith("corrupt index " + dir + ": _1.cfs: "), e.getMessage());
        }
    }

    @Test
    void hnswSettingsAndInt8AreRecordedKeptOnLaterRunsAndAMismatchIsRefused() throws Exception {
        Path model = EmbedderTest.tinyBundle(tmp.resolve("m"));
        Path images = Files.createDirectories(tmp.resolve("images"));
        for (int i = 0; i < 4; i++) {
            Files.write(images.resolve("img" + i + ".png"), EmbedderTest.png(COLOURS[i]));
        }
        Path index = tmp.resolve("index");
        try (Embedder e = Embedder.open(model, null, Device.cpu())) {
            ImageIndex.Requested int8 = new ImageIndex.Requested(32, 200, ImageIndex.Quantization.INT8);
            ImageIndex.Stats s = ImageIndex.build(index, e, ImageIndex.sources(images), model.toString(), null, int8, 100);
            assertEquals(new ImageIndex.Settings(32, 200, ImageIndex.Quantization.INT8), s.settings());
            // a later run without options keeps them; its new segment is quantized too
            Files.write(images.resolve("img4.png"), EmbedderTest.png(COLOURS[4]));
            s = ImageIndex.build(index, e, ImageIndex.sources(images), model.toString(), null, ImageIndex.Requested.NONE, 100);
            assertEquals(1, s.added());
            assertEquals(new ImageIndex.Settings(32, 200, ImageIndex.Quantization.INT8), s.settings());
            try (var dir = FSDirectory.open(index); DirectoryReader r = DirectoryReader.open(dir)) {
                Map<String, String> data = r.getIndexCommit().getUserData();
                assertEquals("32", data.get(ImageIndex.HNSW_M));
                assertEquals("200", data.get(ImageIndex.BEAM_WIDTH));
                assertEquals("int8", data.get(ImageIndex.QUANTIZATION));
                assertEquals(2, r.leaves().size());
                for (var leaf : r.leaves()) {
                    FieldInfo f = leaf.reader().getFieldInfos().fieldInfo(ImageIndex.VECTOR);
                    assertEquals("Lucene99HnswScalarQuantizedVectorsFormat", f.getAttribute("PerFieldKnnVectorsFormat.format"));
                }
            }
            // a different setting is refused, naming it; nothing is written
            for (ImageIndex.Requested other : List.of(new ImageIndex.Requested(16, null, null),
                    new ImageIndex.Requested(null, 100, null), new ImageIndex.Requested(null, null, ImageIndex.Quantization.NONE))) {
                Files.write(images.resolve("img5.png"), EmbedderTest.png(COLOURS[5]));
                IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> ImageIndex.build(index, e,
                        ImageIndex.sources(images), model.toString(), null, other, 100));
                assertTrue(x.getMessage().startsWith(index + " was built with --"), x.getMessage());
                assertTrue(x.getMessage().endsWith(": leave the option out to keep the index's setting, or index into another --out"),
                        x.getMessage());
            }
            assertEquals(5, paths(index).size());
            // searching the quantized graph: each image finds itself first; exact search ranks the float32 vectors
            try (ImageIndex idx = ImageIndex.open(index); ImageIndex.Searcher searcher = idx.searcher()) {
                for (int i = 0; i < 5; i++) {
                    Path p = images.resolve("img" + i + ".png");
                    float[] q = e.images(List.of(Files.readAllBytes(p)), List.of("q"))[0];
                    ImageIndex.Hit hnsw = searcher.search(q, 1, 10).get(0);
                    assertEquals(p.toAbsolutePath().normalize().toString(), hnsw.path());
                    // the candidates are ranked by the float32 vectors: the exact cosine, not the int8 estimate
                    assertEquals(1.0, hnsw.score(), 1e-5);
                    ImageIndex.Hit exact = searcher.exact(q, 1).get(0);
                    assertEquals(p.toAbsolutePath().normalize().toString(), exact.path());
                    assertEquals(1.0, exact.score(), 1e-5);
                }
            }
            // a new index with the defaults records them; M out of Lucene's range is refused
            Path plain = tmp.resolve("plain");
            assertEquals(ImageIndex.Settings.DEFAULT, ImageIndex.build(plain, e, ImageIndex.sources(images), model.toString(),
                    null).settings());
            assertEquals(new ImageIndex.Settings(16, 100, ImageIndex.Quantization.NONE), ImageIndex.Settings.DEFAULT);
            assertThrows(IllegalArgumentException.class, () -> new ImageIndex.Settings(0, 100, ImageIndex.Quantization.NONE));
            assertThrows(IllegalArgumentException.class, () -> new ImageIndex.Settings(600, 100, ImageIndex.Quantization.NONE));
        }
    }

    @Test
    void aMissingIndexAndAnEmptyFolderAreClearErrors() throws Exception {
        Exception e = assertThrows(Exception.class, () -> ImageIndex.open(tmp.resolve("none")));
        assertTrue(e.getMessage().startsWith("no index at "), e.getMessage());
        Files.createDirectories(tmp.resolve("empty"));
        e = assertThrows(Exception.class, () -> ImageIndex.open(tmp.resolve("empty")));
        assertTrue(e.getMessage().endsWith("is not a Lucene index (build one with mm4j index)"), e.getMessage());
        e = assertThrows(Exception.class, () -> ImageIndex.sources(tmp.resolve("empty")));
        assertTrue(e.getMessage().contains("holds no image"), e.getMessage());
    }

    /** Random unit vectors (Gaussian coordinates, normalised). */
    static float[][] unitVectors(int n, int d, long seed) {
        java.util.Random r = new java.util.Random(seed);
        float[][] v = new float[n][d];
        for (float[] row : v) {
            double norm = 0;
            for (int i = 0; i < d; i++) {
                row[i] = (float) r.nextGaussian();
                norm += row[i] * row[i];
            }
            for (int i = 0; i < d; i++) {
                row[i] /= (float) Math.sqrt(norm);
            }
        }
        return v;
    }

    @Test
    void bulkVectorsMakeOneSegmentAndExactSearchIsTheBruteForceRanking() throws Exception {
        int n = 3000;
        float[][] vectors = unitVectors(n, 16, 5);
        List<ImageIndex.Entry> entries = new java.util.ArrayList<>();
        for (int i = 0; i < n; i++) {
            entries.add(new ImageIndex.Entry("v" + i, "h" + i, i % 2 == 0 ? "even" : null, vectors[i]));
        }
        Path dir = tmp.resolve("bulk");
        ImageIndex.create(dir, entries, "vectors");
        try (DirectoryReader r = DirectoryReader.open(FSDirectory.open(dir))) {
            assertEquals(1, r.leaves().size(), "one commit, one segment: the HNSW graph is built once");
            assertEquals("16", r.getIndexCommit().getUserData().get(ImageIndex.DIMENSION));
        }
        float[][] queries = unitVectors(40, 16, 6);
        int k = 10;
        double found10 = 0;
        double found100 = 0;
        try (ImageIndex idx = ImageIndex.open(dir); ImageIndex.Searcher s = idx.searcher()) {
            assertEquals(n, s.size());
            for (float[] q : queries) {
                // the brute-force ranking, computed here
                Integer[] order = new Integer[n];
                double[] cos = new double[n];
                for (int i = 0; i < n; i++) {
                    order[i] = i;
                    cos[i] = Embedder.cosine(q, vectors[i]);
                }
                java.util.Arrays.sort(order, (a, b) -> Double.compare(cos[b], cos[a]));
                List<ImageIndex.Hit> exact = s.exact(q, k);
                assertEquals(k, exact.size());
                java.util.Set<String> truth = new java.util.HashSet<>();
                for (int i = 0; i < k; i++) {
                    assertEquals("v" + order[i], exact.get(i).path());
                    assertEquals(cos[order[i]], exact.get(i).score(), 1e-5);
                    assertEquals(order[i] % 2 == 0 ? "even" : null, exact.get(i).text());
                    truth.add("v" + order[i]);
                }
                List<ImageIndex.Hit> few = s.search(q, k, k);
                List<ImageIndex.Hit> many = s.search(q, k, 100);
                assertEquals(k, few.size());
                assertEquals(k, many.size());
                assertEquals(many, idx.search(q, k), "search(q, k) collects the default candidates");
                assertEquals(few, idx.search(q, k, k, false), "the server's entry point: HNSW");
                assertEquals(exact, idx.search(q, k, 1, true), "the server's entry point: exact");
                found10 += few.stream().filter(h -> truth.contains(h.path())).count() / (double) k;
                found100 += many.stream().filter(h -> truth.contains(h.path())).count() / (double) k;
            }
        }
        found10 /= queries.length;
        found100 /= queries.length;
        // HNSW is approximate: collecting more candidates finds more of the exact top 10
        assertTrue(found100 > 0.9, "recall@10 with 100 candidates " + found100);
        assertTrue(found100 > found10, found100 + " vs " + found10);
        assertThrows(IllegalArgumentException.class, () -> ImageIndex.create(tmp.resolve("none"), List.of(), "x"));
        try (ImageIndex idx = ImageIndex.open(dir)) {
            var e = assertThrows(IllegalArgumentException.class, () -> idx.search(queries[0], 5, 0, false));
            assertEquals("candidates must be from 1 to 10000, got 0", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> idx.search(queries[0], 5, 10_001, false));
            assertThrows(IllegalArgumentException.class, () -> idx.search(queries[0], 0, 100, true));
        }
    }
}
