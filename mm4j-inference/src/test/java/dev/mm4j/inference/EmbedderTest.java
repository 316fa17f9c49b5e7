package dev.mm4j.inference;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Precision;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Embeddings from a TorchMultimodal checkpoint and from bundles, and zero-shot classification on them. */
public class EmbedderTest {
    @TempDir Path tmp;

    static JsonNode fixture(String name) throws Exception {
        try (InputStream in = EmbedderTest.class.getResourceAsStream("/fixtures/flava-tiny/" + name)) {
            return new ObjectMapper().readTree(in);
        }
    }

    @Test
    void checkpointEmbeddingsAreTheReferenceProjectionsNormalised() throws Exception {
        JsonNode expected = fixture("expected.json");
        JsonNode ref = fixture("contrastive.json").get("eval").get("image_embeddings");
        FlavaConfig config = FlavaConfig.fromJson(expected.get("config").toString());
        Path pt = Path.of(EmbedderTest.class.getResource("/fixtures/flava-tiny/flava_classification.pt").toURI());
        JsonNode img = expected.get("inputs").get("image").get("data");
        int per = img.size() / 2;
        List<float[]> pixels = new ArrayList<>();
        for (int b = 0; b < 2; b++) {
            float[] chw = new float[per];
            for (int i = 0; i < per; i++) {
                chw[i] = (float) img.get(b * per + i).asDouble();
            }
            pixels.add(chw);
        }
        try (Embedder e = Embedder.open(pt, config, Device.cpu())) {
            assertEquals(24, e.dimension());
            assertEquals(1 / 0.07, e.temperatureScale(), 1e-4, "no temperature in a classification checkpoint");
            float[][] v = e.pixels(pixels);
            for (int b = 0; b < 2; b++) {
                double norm = 0;
                for (int i = 0; i < 24; i++) {
                    norm += Math.pow(ref.get("data").get(b * 24 + i).asDouble(), 2);
                }
                for (int i = 0; i < 24; i++) {
                    assertEquals(ref.get("data").get(b * 24 + i).asDouble() / Math.sqrt(norm), v[b][i], 1e-6, "row " + b + " [" + i + "]");
                }
            }
        }
    }

    /** A classification bundle of a tiny FLAVA with BERT's vocabulary and random weights. */
    public static Path tinyBundle(Path dir) throws Exception {
        FlavaConfig c = FlavaConfig.fromJson("{\"image_size\":32,\"patch_size\":8,\"image_hidden_size\":32,\"image_num_attention_heads\":4,"
                + "\"image_num_hidden_layers\":1,\"image_intermediate_size\":64,\"text_hidden_size\":32,\"text_num_attention_heads\":4,"
                + "\"text_num_hidden_layers\":1,\"text_intermediate_size\":64,\"vocab_size\":30522,\"max_position_embeddings\":24,"
                + "\"multimodal_hidden_size\":32,\"multimodal_num_attention_heads\":4,\"multimodal_num_hidden_layers\":1,"
                + "\"multimodal_intermediate_size\":64,\"text_and_image_proj_size\":16,\"num_classes\":2,\"classifier_hidden_sizes\":32}");
        Engine.getInstance().setRandomSeed(5);
        ModelBundle.Info info = new ModelBundle.Info();
        info.maxLength = 24;
        try (NDManager m = NDManager.newBaseManager()) {
            ModelBundle.write(dir, FlavaForClassification.create(c, m), AnswerVocab.fromText("yes\nno\n", "tiny"), info, null);
        }
        return dir;
    }

    public static byte[] png(Color colour) throws Exception {
        BufferedImage img = new BufferedImage(40, 30, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(colour);
        g.fillRect(0, 0, 40, 30);
        g.setColor(Color.WHITE);
        g.fillRect(10, 10, 20, 10);
        g.dispose();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        return out.toByteArray();
    }

    /** int8 embeddings (Embedder.withPrecision) point where fp32's do: cosine above 0.99, not identical. */
    @Test
    void int8EmbeddingsAreCloseToFp32s() throws Exception {
        Path bundle = tinyBundle(tmp.resolve("m8"));
        List<String> texts = List.of("stop", "a much longer caption about a red sign that says stop");
        try (Embedder fp = Embedder.open(bundle, null, Device.cpu());
                Embedder q = Embedder.open(bundle, null, Device.cpu()).withPrecision(Precision.INT8)) {
            assertEquals(Precision.INT8, q.precision());
            float[][] a = fp.texts(texts);
            float[][] b = q.texts(texts);
            float[] ia = fp.images(List.of(png(Color.RED)), List.of("red.png"))[0];
            float[] ib = q.images(List.of(png(Color.RED)), List.of("red.png"))[0];
            for (double c : new double[] {Embedder.cosine(a[0], b[0]), Embedder.cosine(a[1], b[1]), Embedder.cosine(ia, ib)}) {
                System.out.printf("int8 vs fp32 embedding cosine %.5f%n", c);
                assertTrue(c > 0.99 && c < 1 - 1e-7, "cosine " + c);
            }
        }
    }

    @Test
    void aTextHasTheSameEmbeddingAloneAndPaddedInABatch() throws Exception {
        try (Embedder e = Embedder.open(tinyBundle(tmp.resolve("m")), null, Device.cpu())) {
            float[] alone = e.texts(List.of("stop"))[0];
            float[][] batch = e.texts(List.of("stop", "a much longer caption about a red sign that says stop"));
            assertArrayEquals(alone, batch[0], 1e-6f);
            assertNotEquals(alone[0], batch[1][0]);
            double n = 0;
            for (float x : batch[1]) {
                n += x * x;
            }
            assertEquals(1.0, n, 1e-5, "normalised");
        }
    }

    @Test
    void zeroShotProbabilitiesAreTheSoftmaxOfScaledCosines() throws Exception {
        try (Embedder e = Embedder.open(tinyBundle(tmp.resolve("m")), null, Device.cpu())) {
            List<String> labels = List.of("stop", "open", "closed");
            ZeroShotClassifier c = new ZeroShotClassifier(e, labels, "a sign that says {}");
            byte[] image = png(Color.RED);
            List<ZeroShotClassifier.Score> scores = c.classify(image, "red.png");
            float[] v = e.images(List.of(image), List.of("red.png"))[0];
            float[][] t = e.texts(List.of("a sign that says stop", "a sign that says open", "a sign that says closed"));
            double[] p = new double[3];
            double sum = 0;
            for (int i = 0; i < 3; i++) {
                p[i] = Math.exp((1 / 0.07) * Embedder.cosine(v, t[i]));
                sum += p[i];
            }
            assertEquals(3, scores.size());
            for (ZeroShotClassifier.Score s : scores) {
                assertEquals(p[labels.indexOf(s.label())] / sum, s.probability(), 1e-5, s.label());
            }
            assertTrue(scores.get(0).probability() >= scores.get(1).probability());
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    () -> new ZeroShotClassifier(e, labels, "a sign"));
            assertTrue(bad.getMessage().contains("has no {}"), bad.getMessage());
        }
    }
}
