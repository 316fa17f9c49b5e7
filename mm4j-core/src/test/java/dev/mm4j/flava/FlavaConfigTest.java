package dev.mm4j.flava;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class FlavaConfigTest {
    /**
     * The keyword arguments TorchMultimodal's {@code flava_model_for_classification} accepts (its own, then those
     * of {@code flava_model} it passes on), from the signatures in {@code torchmultimodal/models/flava/model.py}.
     */
    static final Set<String> TORCHMULTIMODAL_KWARGS = Set.of(
            "num_classes", "classifier_in_dim", "classifier_hidden_sizes", "classifier_dropout", "classifier_activation",
            "classifier_normalization", "loss_fn", "pretrained",
            "image_hidden_size", "image_num_attention_heads", "image_num_hidden_layers", "image_dropout",
            "image_intermediate_size", "image_intermediate_activation", "image_layer_norm_eps", "use_image_masking",
            "image_size", "patch_size", "num_channels",
            "text_hidden_size", "text_num_attention_heads", "text_num_hidden_layers", "text_dropout",
            "text_intermediate_size", "text_intermediate_activation", "text_layer_norm_eps", "vocab_size", "pad_token_id",
            "type_vocab_size", "max_position_embeddings",
            "multimodal_hidden_size", "multimodal_num_attention_heads", "multimodal_num_hidden_layers",
            "multimodal_dropout", "multimodal_intermediate_size", "multimodal_intermediate_activation",
            "multimodal_layer_norm_eps", "text_and_image_proj_size");

    static FlavaConfig tiny() throws Exception {
        try (InputStream in = FlavaConfigTest.class.getResourceAsStream("/fixtures/flava-tiny/expected.json")) {
            return FlavaConfig.fromJson(new ObjectMapper().readTree(in).get("config").toString());
        }
    }

    @Test
    void kwargsFormIsWhatTorchMultimodalAcceptsAndReadsBack() throws Exception {
        for (FlavaConfig c : List.of(tiny(), FlavaConfig.fullSize(3997))) {
            JsonNode kw = new ObjectMapper().readTree(c.toKwargsJson());
            List<String> foreign = new ArrayList<>();
            kw.fieldNames().forEachRemaining(k -> {
                if (!TORCHMULTIMODAL_KWARGS.contains(k)) foreign.add(k);
            });
            assertEquals(List.of(), foreign, "keys flava_model_for_classification(**config) would not take");
            kw.fields().forEachRemaining(f -> assertFalse(f.getValue().isNull(), f.getKey() + " is null"));
            assertEquals(c.multimodalHiddenSize, kw.get("classifier_in_dim").asInt(),
                    "classifier_in_dim written out: Python's default is 768 whatever the multimodal width");
            FlavaConfig back = FlavaConfig.fromJson(c.toKwargsJson());
            assertEquals(c.classifierInputDim(), back.classifierInputDim());
            back.classifierInDim = c.classifierInDim;
            assertEquals(c.toJson(), back.toJson(), "the kwargs form reads back to the same config");
        }
        // the full form (what older bundles hold) still reads
        String full = tiny().toJson();
        assertTrue(full.contains("\"classifier_in_dim\" : null") && full.contains("initializer_range"), full);
        assertEquals(tiny().toJson(), FlavaConfig.fromJson(full).toJson());
    }

    /** A pretraining model's kwargs: every key but the classification head's (and initializer_range) reads back. */
    @Test
    void pretrainingKwargsCarryTheCodebookAndLossKeysAndReadBack() throws Exception {
        FlavaConfig c = FlavaConfig.withKwargs(tiny(), Map.of("codebook_image_size", 24, "image_vocab_size", 40,
                "codebook_group_count", 3, "codebook_n_hid", 12, "codebook_n_blk_per_group", 1, "mlm_weight", 0.5,
                "mim_weight", 2.0, "pretraining_layer_norm_eps", 1e-6));
        JsonNode kw = new ObjectMapper().readTree(c.toPretrainingKwargsJson());
        for (String k : FlavaConfig.PRETRAINING_KEYS) {
            assertTrue(kw.has(k), k + " missing from " + kw);
        }
        assertEquals(12, kw.get("codebook_n_hid").asInt());
        assertEquals(24, kw.get("codebook_image_size").asInt());
        for (String k : FlavaConfig.CLASSIFIER_KEYS) {
            assertFalse(kw.has(k), k + " in a pretraining model's kwargs");
        }
        assertFalse(kw.has("initializer_range"));
        FlavaConfig back = FlavaConfig.fromJson(c.toPretrainingKwargsJson());
        back.numClasses = c.numClasses;
        back.classifierHiddenSizes = c.classifierHiddenSizes;
        back.classifierDropout = c.classifierDropout;
        back.classifierInDim = c.classifierInDim;
        back.initializerRange = c.initializerRange;
        assertEquals(c.toJson(), back.toJson(), "the pretraining form reads back to the same model");
    }

    @Test
    void withKwargsOverlaysAndNamesUnknownKeys() throws Exception {
        FlavaConfig base = tiny();
        FlavaConfig c = FlavaConfig.withKwargs(base, Map.of("num_classes", 11, "classifier_hidden_sizes", List.of(8, 4)));
        assertEquals(11, c.numClasses);
        assertEquals(List.of(8, 4), c.classifierHiddenSizes);
        assertEquals(base.imageHiddenSize, c.imageHiddenSize);
        assertEquals(7, base.numClasses, "the base is not changed");
        Exception e = assertThrows(Exception.class, () -> FlavaConfig.withKwargs(base, Map.of("hidden_sizes", 3)));
        assertTrue(e.getMessage().contains("hidden_sizes"), e.getMessage());
    }
}
