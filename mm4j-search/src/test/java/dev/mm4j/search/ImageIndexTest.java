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
            assertEquals(new ImageIndex.Stats(5, 0, 0, 5), ImageIndex.build(index, e, sources, model.toString(), null));
            assertEquals(new ImageIndex.Stats(0, 5, 0, 5), ImageIndex.build(index, e, sources, model.toString(), null),
                    "unchanged images are skipped");
            Files.write(images.resolve("img0.png"), EmbedderTest.png(Color.MAGENTA)); // changed bytes, same path
            Files.write(images.resolve("img5.png"), EmbedderTest.png(COLOURS[5]));
            assertEquals(new ImageIndex.Stats(1, 4, 1, 6),
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
    }
}
