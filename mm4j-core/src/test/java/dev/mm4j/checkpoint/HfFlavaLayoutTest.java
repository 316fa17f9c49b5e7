package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mm4j.checkpoint.HfFlavaCheckpoints.Form;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hugging Face transformers' FLAVA checkpoints: the tiny fixture's weights under HF's names (as .bin written by
 * our torch.save writer, as .safetensors, and as 2-shard indexes of each) load into our model and give the
 * fixture's logits_mm; names, ignored tensors, config.json and the load report.
 */
class HfFlavaLayoutTest {
    static final double ABS = 1e-5;
    static JsonNode expected;
    static FlavaConfig config;

    @TempDir Path tmp;

    @BeforeAll
    static void readFixture() throws Exception {
        try (InputStream in = HfFlavaLayoutTest.class.getResourceAsStream("/fixtures/flava-tiny/expected.json")) {
            expected = new ObjectMapper().readTree(in);
        }
        config = FlavaConfig.fromJson(expected.get("config").toString());
    }

    @Test
    void namesMapAsModelingFlavaDefinesThem() {
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("flava.image_model.encoder.layer.3.attention.attention.query.weight", "model.image_encoder.encoder.layer.3.attention.query.weight");
        cases.put("flava.text_model.encoder.layer.0.attention.attention.value.bias", "model.text_encoder.encoder.layer.0.attention.value.bias");
        cases.put("flava.multimodal_model.encoder.layer.5.attention.output.dense.weight", "model.mm_encoder.encoder.layer.5.attention.output.weight");
        cases.put("flava.image_model.encoder.layer.11.layernorm_before.bias", "model.image_encoder.encoder.layer.11.attention_layernorm.bias");
        cases.put("flava.image_model.encoder.layer.11.layernorm_after.weight", "model.image_encoder.encoder.layer.11.feedforward_layernorm.weight");
        cases.put("flava.text_model.encoder.layer.2.intermediate.dense.weight", "model.text_encoder.encoder.layer.2.feedforward.model.0.weight");
        cases.put("flava.text_model.encoder.layer.2.output.dense.bias", "model.text_encoder.encoder.layer.2.feedforward.model.2.bias");
        cases.put("flava.text_model.embeddings.LayerNorm.weight", "model.text_encoder.embeddings.layer_norm.weight");
        cases.put("flava.text_model.embeddings.word_embeddings.weight", "model.text_encoder.embeddings.word_embeddings.weight");
        cases.put("flava.image_model.embeddings.patch_embeddings.projection.weight", "model.image_encoder.embeddings.patch_embeddings.projection.weight");
        cases.put("flava.image_model.embeddings.cls_token", "model.image_encoder.embeddings.cls_token");
        cases.put("flava.image_model.embeddings.mask_token", "model.image_encoder.embeddings.mask_token");
        cases.put("flava.image_model.layernorm.bias", "model.image_encoder.layernorm.bias");
        cases.put("flava.multimodal_model.pooler.dense.weight", "model.mm_encoder.pooler.dense.weight");
        cases.put("flava.multimodal_model.cls_token", "model.mm_encoder.cls_token");
        cases.put("flava.image_to_mm_projection.weight", "model.image_to_mm_projection.weight");
        cases.put("flava.text_to_mm_projection.bias", "model.text_to_mm_projection.bias");
        cases.put("flava.image_projection.weight", "model.image_projection.weight");
        cases.put("flava.text_projection.bias", "model.text_projection.bias");
        // a bare FlavaModel (no "flava." prefix)
        cases.put("text_model.encoder.layer.0.layernorm_before.weight", "model.text_encoder.encoder.layer.0.attention_layernorm.weight");
        cases.forEach((hf, tm) -> assertEquals(tm, HfFlavaLayout.toTorchMultimodal(hf), hf));

        for (String n : List.of("mim_head.decoder.weight", "mlm_head.bias", "itm_head.seq_relationship.weight",
                "mmm_image_head.transform.dense.weight", "mmm_text_head.decoder.bias")) {
            assertEquals("pretraining heads", HfFlavaLayout.ignoredReason(n), n);
        }
        // the contrastive temperature goes where FLAVAForPreTraining (and our retrieval model) keeps it
        assertEquals("loss.contrastive_loss.logit_scale", HfFlavaLayout.toTorchMultimodal("flava.logit_scale"));
        assertEquals("loss.contrastive_loss.logit_scale", HfFlavaLayout.toTorchMultimodal("logit_scale"));
        assertNull(HfFlavaLayout.ignoredReason("flava.logit_scale"));
        assertTrue(HfFlavaLayout.ignoredReason("image_codebook.blocks.group_1.block_1.res_path.path.conv_1.weight").startsWith("image_codebook"));
        assertTrue(HfFlavaLayout.ignoredReason("flava.text_model.embeddings.position_ids").contains("buffers"));
        assertNull(HfFlavaLayout.toTorchMultimodal("flava.text_model.embeddings.position_ids"));
        assertNull(HfFlavaLayout.toTorchMultimodal("something.else"));
        assertTrue(HfFlavaLayout.matches(List.of("flava.image_model.layernorm.bias")));
        assertFalse(HfFlavaLayout.matches(List.of("model.image_encoder.layernorm.bias", "loss.x")));
    }

    /** Every parameter of our model has an HF name that maps back to it (the two tables are inverses). */
    @Test
    void everyModelParameterRoundTrips() {
        FlavaForClassification model = new FlavaForClassification(FlavaConfig.fullSize(3997));
        int n = 0;
        for (String name : model.namedParameters().keySet()) {
            String hf = HfFlavaCheckpoints.toHf(name);
            if (hf == null) {
                assertTrue(name.startsWith("classifier."), name);
                continue;
            }
            assertEquals(name, HfFlavaLayout.toTorchMultimodal(hf), hf);
            n++;
        }
        assertEquals(model.namedParameters().size() - 4, n);
    }

    @Test
    void configJsonGivesTheSizes() throws Exception {
        Path dir = tmp.resolve("cfg");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), HfFlavaCheckpoints.hfConfig(expected.get("config")).toString());
        assertEquals(config.toJson(), PretrainedCheckpoint.config(dir, classificationBase()).toJson());
        assertNull(PretrainedCheckpoint.tokenizerFile(dir));
        Files.writeString(dir.resolve("vocab.txt"), "[PAD]\n");
        assertEquals(dir.resolve("vocab.txt"), PretrainedCheckpoint.tokenizerFile(dir));
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        assertEquals(dir.resolve("tokenizer.json"), PretrainedCheckpoint.tokenizerFile(dir));

        ObjectNode relu = HfFlavaCheckpoints.hfConfig(expected.get("config"));
        ((ObjectNode) relu.get("text_config")).put("hidden_act", "relu");
        Files.writeString(dir.resolve("config.json"), relu.toString());
        Exception e = assertThrows(CheckpointException.class, () -> PretrainedCheckpoint.config(dir, classificationBase()));
        assertTrue(e.getMessage().contains("config.json: text_config.hidden_act is \"relu\"; only gelu is supported"), e.getMessage());
    }

    /** The fixture config's classification head (num_classes, classifier_*) over the full-size defaults. */
    static FlavaConfig classificationBase() throws Exception {
        JsonNode c = expected.get("config");
        Map<String, Object> head = new LinkedHashMap<>();
        head.put("num_classes", c.get("num_classes").asInt());
        head.put("classifier_hidden_sizes", c.get("classifier_hidden_sizes").asInt());
        head.put("classifier_dropout", c.get("classifier_dropout").asDouble());
        return FlavaConfig.withKwargs(new FlavaConfig(), head);
    }

    @Test
    void hfCheckpointsInEveryFormGiveTheFixtureLogits() throws Exception {
        Path fixture = Path.of(getClass().getResource("/fixtures/flava-tiny/flava_classification.pt").toURI());
        try (StateDict tm = TorchCheckpoints.read(fixture)) {
            Map<String, HostTensor> hf = HfFlavaCheckpoints.hfTensors(tm);
            JsonNode hfConfig = HfFlavaCheckpoints.hfConfig(expected.get("config"));
            Map<Form, String> formats = Map.of(Form.BIN, "TORCH_ZIP", Form.SAFETENSORS, "SAFETENSORS",
                    Form.BIN_2_SHARDS, "2 TORCH_ZIP shards", Form.SAFETENSORS_2_SHARDS, "2 SAFETENSORS shards");
            for (Form form : Form.values()) {
                Path dir = HfFlavaCheckpoints.writeFolder(tmp.resolve(form.name()), form, hf, hfConfig);
                // the folder, and the file inside it (the index for the sharded forms)
                Path file = Checkpoints.weightsFile(dir);
                for (Path source : List.of(dir, file)) {
                    FlavaConfig c = PretrainedCheckpoint.config(source, classificationBase());
                    assertEquals(config.toJson(), c.toJson(), "config.json of " + form);
                    try (NDManager manager = NDManager.newBaseManager();
                            PretrainedCheckpoint ck = PretrainedCheckpoint.open(source)) {
                        assertEquals(PretrainedCheckpoint.Layout.HF_TRANSFORMERS, ck.layout());
                        assertEquals(formats.get(form), ck.format());
                        FlavaForClassification model = FlavaForClassification.create(c, manager);
                        PretrainedCheckpoint.LoadReport r = ck.load(model, false);
                        assertEquals(128, r.mapped(), form + ": " + r);
                        assertEquals(127, r.load().loaded(), form + ": " + r);
                        assertEquals(List.of("classifier.model.0.bias", "classifier.model.0.weight",
                                "classifier.model.3.bias", "classifier.model.3.weight"), r.load().missing());
                        // a classification model has no temperature: unexpected, as in a TorchMultimodal checkpoint
                        assertEquals(List.of("loss.contrastive_loss.logit_scale"), r.load().unexpected());
                        assertEquals(9, r.ignoredCount());
                        assertEquals(7, r.ignored().get("pretraining heads").size(), r.toString());
                        // the classifier is not in an HF checkpoint: take the fixture's, then compare the logits
                        loadClassifier(model, tm);
                        model.setTraining(false);
                        assertLogits(model, manager, form + " " + source.getFileName());
                    }
                }
            }
        }
    }

    static void loadClassifier(FlavaForClassification model, StateDict tm) throws Exception {
        LinkedHashMap<String, HostTensor> head = new LinkedHashMap<>();
        tm.asMap().forEach((n, t) -> {
            if (n.startsWith("classifier.")) head.put(n, t);
        });
        StateDictLoader.load(model, new StateDict(head, Map.of(), null), false, "fixture classifier");
    }

    static void assertLogits(FlavaForClassification model, NDManager m, String what) {
        JsonNode in = expected.get("inputs");
        try (NDScope scope = new NDScope()) {
            NDArray logits = model.forward(floats(m, in.get("image")), longs(m, in.get("text")), null).logits();
            JsonNode exp = expected.get("eval").get("logits_mm");
            assertEquals(new Shape(2, 7), logits.getShape());
            float[] a = logits.toFloatArray();
            double max = 0;
            for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - exp.get("data").get(i).asDouble()));
            System.out.printf("HF layout %-40s logits_mm max abs difference %.3g%n", what, max);
            assertTrue(max <= ABS, what + ": max abs difference " + max);
        }
    }

    @Test
    void unknownNamesAreUnexpectedAndShardProblemsAreClear() throws Exception {
        Path fixture = Path.of(getClass().getResource("/fixtures/flava-tiny/flava_classification.pt").toURI());
        try (StateDict tm = TorchCheckpoints.read(fixture)) {
            Map<String, HostTensor> hf = new LinkedHashMap<>(HfFlavaCheckpoints.hfTensors(tm));
            hf.put("flava.new_module.weight", HostTensor.ofFloats(new float[] {1f}, 1));
            Path dir = HfFlavaCheckpoints.writeFolder(tmp.resolve("odd"), Form.SAFETENSORS_2_SHARDS, hf,
                    HfFlavaCheckpoints.hfConfig(expected.get("config")));
            try (PretrainedCheckpoint ck = PretrainedCheckpoint.open(dir)) {
                var r = ck.check(new FlavaForClassification(config));
                assertEquals(List.of("flava.new_module.weight", "loss.contrastive_loss.logit_scale"), r.load().unexpected());
                assertEquals(127, r.load().loaded());
            }
            // the index names a tensor in the wrong shard; then a shard is missing
            Path index = dir.resolve("model.safetensors.index.json");
            String text = Files.readString(index);
            Files.writeString(index, text.replaceFirst("\"flava.image_model.embeddings.cls_token\" : \"model-00001-of-00002",
                    "\"flava.image_model.embeddings.cls_token\" : \"model-00002-of-00002"));
            Exception e = assertThrows(CheckpointException.class, () -> Checkpoints.read(dir));
            assertTrue(e.getMessage().contains("weight_map puts 'flava.image_model.embeddings.cls_token' in "
                    + "model-00002-of-00002.safetensors, but it is in model-00001-of-00002.safetensors"), e.getMessage());
            Files.writeString(index, text);
            Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
            e = assertThrows(CheckpointException.class, () -> Checkpoints.read(index));
            assertTrue(e.getMessage().contains("shard model-00002-of-00002.safetensors is missing"), e.getMessage());
            Files.writeString(index, "{\"weight_map\": {\"a\": \"../outside.bin\"}}");
            e = assertThrows(CheckpointException.class, () -> Checkpoints.read(index));
            assertTrue(e.getMessage().contains("is outside the index's folder"), e.getMessage());
        }
    }

    @Test
    void torchMultimodalCheckpointsAreLoadedAsTheyAre() throws Exception {
        Path fixture = Path.of(getClass().getResource("/fixtures/flava-tiny/flava_pretraining_layout.pt").toURI());
        try (PretrainedCheckpoint ck = PretrainedCheckpoint.open(fixture)) {
            assertEquals(PretrainedCheckpoint.Layout.TORCHMULTIMODAL, ck.layout());
            var r = ck.check(new FlavaForClassification(config));
            assertEquals(new TreeSet<>(strings(expected.get("variants").get("pretraining_layout").get("unexpected"))),
                    new TreeSet<>(r.load().unexpected()));
            assertFalse(r.toString().contains("ignored on purpose"), r.toString());
        }
        assertEquals(config.toJson(), PretrainedCheckpoint.config(fixture, config).toJson(), "no config.json: the base");
    }

    static List<String> strings(JsonNode arr) {
        List<String> out = new java.util.ArrayList<>();
        arr.forEach(n -> out.add(n.asText()));
        return out;
    }

    static NDArray floats(NDManager m, JsonNode t) {
        JsonNode d = t.get("data");
        float[] v = new float[d.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) d.get(i).asDouble();
        return m.create(v, shape(t)).duplicate();
    }

    static NDArray longs(NDManager m, JsonNode t) {
        JsonNode d = t.get("data");
        long[] v = new long[d.size()];
        for (int i = 0; i < v.length; i++) v[i] = d.get(i).asLong();
        return m.create(v, shape(t)).duplicate();
    }

    static Shape shape(JsonNode t) {
        long[] s = new long[t.get("shape").size()];
        for (int i = 0; i < s.length; i++) s[i] = t.get("shape").get(i).asLong();
        return new Shape(s);
    }
}
