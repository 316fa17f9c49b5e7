package dev.mm4j.search;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import dev.mm4j.data.SyntheticLabelled;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.inference.Embedder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CocoRetrievalTest {
    @TempDir
    Path dir;

    static float[] unit(double angle) {
        return new float[] {(float) Math.cos(angle), (float) Math.sin(angle)};
    }

    @Test
    void everyCaptionOfAnImageCountsForIt() {
        // images at angles 0, 1, 2; captions: two of image 0 (at 0.9 and 0.05), one of image 1 (at 1.1), one of image 2
        // (at 1.05: nearer image 1)
        float[][] images = {unit(0), unit(1), unit(2)};
        float[][] texts = {unit(0.9), unit(0.05), unit(1.1), unit(1.05)};
        int[] owner = {0, 0, 1, 2};
        CocoRetrieval.Result r = CocoRetrieval.recall(images, texts, owner);
        // image -> text: image 0's best caption (0.05) ranks 1st; image 1's (1.1) comes after 1.05; image 2's (1.05)
        // after 1.1
        assertEquals(1.0 / 3, r.imageToText1(), 1e-12);
        assertEquals(1.0, r.imageToText5(), 1e-12);
        // text -> image: captions 0.9 -> image 1 (miss at 1), 0.05 -> image 0 (hit), 1.1 -> image 1 (hit), 1.05 -> image 1 (miss)
        assertEquals(0.5, r.textToImage1(), 1e-12);
        assertEquals(1.0, r.textToImage5(), 1e-12);
        assertEquals(3, r.images());
        assertEquals(4, r.captions());
    }

    @Test
    void readsACocoCaptionsFileAndFindsTheSplitsImageFolder() throws Exception {
        Path ann = dir.resolve("annotations");
        Files.createDirectories(ann);
        Files.writeString(ann.resolve("captions_val2017.json"), CocoRetrieval.cocoJson(List.of("a.jpg", "b.jpg"),
                List.of(List.of("one", "two"), List.of("three"))));
        CocoRetrieval.Captions c = CocoRetrieval.read(ann.resolve("captions_val2017.json"), null, 0);
        assertEquals(List.of(dir.resolve("val2017/a.jpg").toAbsolutePath(), dir.resolve("val2017/b.jpg").toAbsolutePath()),
                c.images());
        assertEquals(List.of("one", "two", "three"), c.captions());
        assertArrayEquals(new int[] {0, 0, 1}, c.captionImage());
        assertEquals(1, CocoRetrieval.read(ann.resolve("captions_val2017.json"), dir, 1).images().size());
        Files.writeString(ann.resolve("bad.json"), "{\"images\": []}");
        Exception e = assertThrows(java.io.IOException.class, () -> CocoRetrieval.read(ann.resolve("bad.json"), dir, 0));
        assertTrue(e.getMessage().contains("needs 'images' and 'annotations' arrays"), e.getMessage());
    }

    @Test
    void zeroShotOnAnImageFolderCountsTopOneAndTopFive() throws Exception {
        Path data = dir.resolve("rendered");
        SyntheticLabelled.renderedSentences(data, new SyntheticLabelled.Sizes(2, 6, 0), 32, 1);
        FlavaConfig config = FlavaConfig.fromJson("{\"image_size\": 32, \"patch_size\": 8, \"image_hidden_size\": 32, "
                + "\"image_num_attention_heads\": 2, \"image_num_hidden_layers\": 1, \"image_intermediate_size\": 64, "
                + "\"text_hidden_size\": 32, \"text_num_attention_heads\": 2, \"text_num_hidden_layers\": 1, "
                + "\"text_intermediate_size\": 64, \"max_position_embeddings\": 40, \"multimodal_hidden_size\": 32, "
                + "\"multimodal_num_attention_heads\": 2, \"multimodal_num_hidden_layers\": 1, "
                + "\"multimodal_intermediate_size\": 64, \"text_and_image_proj_size\": 16}");
        try (Embedder e = Embedder.untrained(config, Device.cpu())) {
            ZeroShotEvaluation.Result r = ZeroShotEvaluation.evaluate(e, data, "val", null, List.of("a {} phrase", "{}"), 0);
            assertEquals(6, r.images());
            assertEquals(2, r.classes());
            assertEquals(1.0, r.top5(), 1e-12); // two classes: always within the top 5
            assertEquals(0, r.top1() * 6 % 1, 1e-9);
        }
        Files.writeString(dir.resolve("t.txt"), "# mine\na photo of {}\nno slot\n");
        Exception ex = assertThrows(java.io.IOException.class, () -> ZeroShotEvaluation.templates(dir.resolve("t.txt")));
        assertTrue(ex.getMessage().endsWith("t.txt:3: template 'no slot' has no {} where the class name goes"), ex.getMessage());
    }
}
