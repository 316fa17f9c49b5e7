package dev.mm4j.search;

import static org.junit.jupiter.api.Assertions.*;

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
                    assertEquals(new ImageIndex.Entry(h.path(), h.sha256(), h.text()), idx.find(h.sha256()).orElseThrow());
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
}
