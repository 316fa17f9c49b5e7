package dev.mm4j.flava;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import dev.mm4j.nn.Parameter;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Parameter names and counts, without allocating anything. */
class FlavaStructureTest {

    @Test
    void fullSizeModelHasTheReferenceParameterCount() {
        FlavaForClassification model = new FlavaForClassification(FlavaConfig.fullSize(3997));
        // TorchMultimodal's flava_model_for_classification(num_classes=3997): 245,020,573 parameters
        assertEquals(245_020_573L, model.parameterCount());
    }

    @Test
    void parameterNamesAreTheStateDictKeys() {
        Map<String, Parameter> p = new FlavaForClassification(FlavaConfig.fullSize(3997)).namedParameters();
        for (String key : List.of(
                "model.image_encoder.embeddings.cls_token",
                "model.image_encoder.embeddings.mask_token",
                "model.image_encoder.embeddings.patch_embeddings.projection.weight",
                "model.image_encoder.encoder.layer.0.attention.query.weight",
                "model.image_encoder.encoder.layer.11.feedforward.model.2.bias",
                "model.text_encoder.embeddings.word_embeddings.weight",
                "model.text_encoder.embeddings.layer_norm.weight",
                "model.text_encoder.pooler.dense.weight",
                "model.mm_encoder.cls_token",
                "model.mm_encoder.encoder.layer.5.feedforward_layernorm.bias",
                "model.image_to_mm_projection.weight",
                "classifier.model.0.weight",
                "classifier.model.3.weight")) {
            assertTrue(p.containsKey(key), key);
        }
        assertFalse(p.containsKey("model.mm_encoder.encoder.layer.6.attention.query.weight"), "6 multimodal layers");
        assertEquals(List.of(3997L, 768L), List.of(p.get("classifier.model.3.weight").shape().get(0),
                p.get("classifier.model.3.weight").shape().get(1)), "torch Linear weights are (out, in)");
        assertEquals(768 * 3 * 16 * 16, p.get("model.image_encoder.embeddings.patch_embeddings.projection.weight").size());
    }

    @Test
    void classifierLayoutFollowsHiddenSizesAndDropout() throws Exception {
        FlavaConfig c = FlavaConfig.fromJson("{\"num_classes\": 5, \"classifier_hidden_sizes\": [64, 32], \"classifier_dropout\": 0.0}");
        Map<String, Parameter> p = new FlavaForClassification(c).namedParameters();
        // Linear, ReLU, Linear, ReLU, Linear: no Dropout modules when dropout is 0
        assertTrue(p.containsKey("classifier.model.0.weight"));
        assertTrue(p.containsKey("classifier.model.2.weight"));
        assertTrue(p.containsKey("classifier.model.4.weight"));
        assertEquals(5, p.get("classifier.model.4.weight").shape().get(0));
    }

    @Test
    void configRejectsUnknownKeysAndBadCombinations() {
        Exception e = assertThrows(Exception.class, () -> FlavaConfig.fromJson("{\"image_hiden_size\": 32}"));
        assertTrue(e.getMessage().contains("image_hiden_size"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> FlavaConfig.fromJson("{\"image_hidden_size\": 30, \"image_num_attention_heads\": 4}"));
        assertTrue(e.getMessage().contains("image_hidden_size"), e.getMessage());
    }

    /** Keys end after the last token any row keeps: (B, 1, 1, K), 0 / -inf; all L when no row keeps a token. */
    @Test
    void additiveMaskEndsAfterTheLastKeptToken() {
        try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager()) {
            NDArray keep = m.create(new float[] {1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0}, new ai.djl.ndarray.types.Shape(2, 6));
            NDArray mask = TextEncoder.additiveMask(keep);
            assertEquals(new ai.djl.ndarray.types.Shape(2, 1, 1, 4), mask.getShape());
            float ninf = Float.NEGATIVE_INFINITY;
            assertArrayEquals(new float[] {0, 0, ninf, ninf, 0, ninf, ninf, 0}, mask.toFloatArray());
            NDArray none = TextEncoder.additiveMask(m.zeros(new ai.djl.ndarray.types.Shape(2, 3)));
            assertEquals(new ai.djl.ndarray.types.Shape(2, 1, 1, 3), none.getShape());
        }
    }
}
