package dev.mm4j.flava;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.StateDictLoader;
import dev.mm4j.nn.Parameter;
import dev.mm4j.train.AdamW;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every number of the reference fixture (fixtures/flava-tiny/expected.json, computed by TorchMultimodal
 * on PyTorch 1.13.1; see its README): forward outputs within 1e-5 absolute, three AdamW steps within
 * 1e-5 relative to each tensor's largest magnitude, and the checkpoint variants.
 */
class FlavaParityTest {
    static final double ABS = 1e-5;
    static final double REL = 1e-5;
    static JsonNode expected;
    static FlavaConfig config;

    NDManager manager;
    NDArray image;
    NDArray text;
    NDArray labels;

    @BeforeAll
    static void readFixture() throws Exception {
        try (InputStream in = FlavaParityTest.class.getResourceAsStream("/fixtures/flava-tiny/expected.json")) {
            expected = new ObjectMapper().readTree(in);
        }
        config = FlavaConfig.fromJson(expected.get("config").toString());
    }

    @BeforeEach
    void inputs() {
        manager = NDManager.newBaseManager();
        JsonNode in = expected.get("inputs");
        image = floats(manager, in.get("image"));
        text = longs(manager, in.get("text"));
        labels = longs(manager, in.get("labels"));
    }

    @AfterEach
    void close() {
        manager.close();
    }

    static Path fixture(String name) throws Exception {
        return Path.of(FlavaParityTest.class.getResource("/fixtures/flava-tiny/" + name).toURI());
    }

    FlavaForClassification load(String file, boolean strict) throws Exception {
        FlavaForClassification model = FlavaForClassification.create(config, manager);
        StateDictLoader.load(model, fixture(file), strict);
        model.setTraining(false);
        return model;
    }

    @Test
    void evalOutputsMatchTheReference() throws Exception {
        FlavaForClassification model = load("flava_classification.pt", true);
        JsonNode ev = expected.get("eval");
        try (NDScope scope = new NDScope()) {
            var out = model.forward(image, text, labels, RequiredEmbedding.MM);
            assertClose("image_last_hidden_state", ev, out.flava().image().lastHiddenState());
            assertClose("text_last_hidden_state", ev, out.flava().text().lastHiddenState());
            // the classifier reads the multimodal CLS token only, and only that token is computed by the last layer;
            // the model without the head gives every token
            NDArray mm = model.flava().forward(image, text, RequiredEmbedding.MM).multimodal().lastHiddenState();
            assertClose("multimodal_last_hidden_state", ev, mm);
            assertEquals(new Shape(2, 1, 32), out.flava().multimodal().lastHiddenState().getShape());
            assertTrue(mm.get(":, :1, :").sub(out.flava().multimodal().lastHiddenState()).abs().max().getFloat() <= 1e-6f,
                    "the head's multimodal CLS token is the full run's");
            assertClose("projected_image_embeddings", ev, out.flava().projectedImageEmbeddings());
            assertClose("projected_text_embeddings", ev, out.flava().projectedTextEmbeddings());
            assertClose("logits_mm", ev, out.logits());
            assertEquals(ev.get("loss_mm").asDouble(), out.loss().getFloat(), ABS, "loss_mm");
        }
    }

    @Test
    void unimodalHeadsMatchTheReference() throws Exception {
        FlavaForClassification model = load("flava_classification.pt", true);
        JsonNode ev = expected.get("eval");
        try (NDScope scope = new NDScope()) {
            var img = model.forward(image, text, labels, RequiredEmbedding.IMAGE);
            assertNull(img.flava().text(), "the text encoder does not run for the image head");
            assertClose("logits_image", ev, img.logits());
            assertEquals(ev.get("loss_image").asDouble(), img.loss().getFloat(), ABS, "loss_image");
            var txt = model.forward(image, text, labels, RequiredEmbedding.TEXT);
            assertClose("logits_text", ev, txt.logits());
            assertEquals(ev.get("loss_text").asDouble(), txt.loss().getFloat(), ABS, "loss_text");
        }
    }

    @Test
    void threeAdamWStepsMatchTheReference() throws Exception {
        FlavaForClassification model = load("flava_classification.pt", true); // eval mode: dropout off
        JsonNode train = expected.get("train");
        JsonNode opt = train.get("optimizer");
        AdamW.Settings s = new AdamW.Settings(opt.get("lr").asDouble(), opt.get("betas").get(0).asDouble(),
                opt.get("betas").get(1).asDouble(), opt.get("eps").asDouble(), opt.get("weight_decay").asDouble());
        assertEquals(AdamW.Settings.torchDefaults(), s, "the fixture uses torch.optim.AdamW's defaults");
        Map<String, Parameter> params = model.namedParameters();
        try (AdamW adamw = new AdamW(params, s, manager)) {
            for (int step = 0; step < 3; step++) {
                try (NDScope scope = new NDScope()) {
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray loss = model.forward(image, text, labels).loss();
                        assertEquals(train.get("losses").get(step).asDouble(), loss.getFloat(), ABS, "loss before step " + step);
                        gc.backward(loss);
                    }
                    if (step == 0) {
                        forEach(train.get("grads_step0"), (name, exp) ->
                                assertRelClose("grad " + name, exp, params.get(name).array().getGradient()));
                    }
                    adamw.step(s.lr(), 1.0);
                    adamw.zeroGrad();
                }
            }
        }
        forEach(train.get("params_after_3_steps"), (name, exp) ->
                assertRelClose("param " + name, exp, params.get(name).array()));
    }

    @Test
    void fp16CheckpointLoadsAsFloat32() throws Exception {
        FlavaForClassification model = load("flava_classification_fp16.pt", true);
        try (NDScope scope = new NDScope()) {
            assertClose("logits_mm", expected.get("variants").get("fp16"), model.forward(image, text, null).logits());
        }
    }

    @Test
    void viewsAndStridesCheckpointGivesTheSameLogits() throws Exception {
        FlavaForClassification model = load("flava_classification_views.pt", true);
        try (NDScope scope = new NDScope()) {
            assertClose("logits_mm", expected.get("variants").get("views"), model.forward(image, text, null).logits());
        }
    }

    @Test
    void legacyTorchSaveOfTheViewsCheckpointGivesTheSameLogits() throws Exception {
        // the views fixture loaded and saved again by PyTorch 2.14 in the legacy (pre-1.6) format:
        // tools/torch_dtypes_reference.py
        Path legacy = Path.of(FlavaParityTest.class.getResource("/reference/torch-dtypes/flava_classification_views-legacy.pt").toURI());
        FlavaForClassification model = FlavaForClassification.create(config, manager);
        StateDictLoader.load(model, legacy, true);
        model.setTraining(false);
        try (NDScope scope = new NDScope()) {
            assertClose("logits_mm", expected.get("variants").get("views"), model.forward(image, text, null).logits());
        }
    }

    @Test
    void aModelSavedWhileWrappedByDdpAndTorchCompileLoadsStrictly(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        // model.state_dict() of DistributedDataParallel(torch.compile(model)): every name under "module._orig_mod."
        Path wrapped = tmp.resolve("wrapped.pt");
        try (dev.mm4j.checkpoint.StateDict sd = dev.mm4j.checkpoint.Checkpoints.read(fixture("flava_classification.pt"))) {
            java.util.LinkedHashMap<String, dev.mm4j.checkpoint.HostTensor> prefixed = new java.util.LinkedHashMap<>();
            sd.asMap().forEach((name, t) -> prefixed.put("module._orig_mod." + name, t));
            dev.mm4j.checkpoint.TorchCheckpoints.write(wrapped, prefixed);
        }
        FlavaForClassification model = FlavaForClassification.create(config, manager);
        var report = StateDictLoader.load(model, wrapped, true);
        assertTrue(report.missing().isEmpty() && report.unexpected().isEmpty(), report.toString());
        model.setTraining(false);
        try (NDScope scope = new NDScope()) {
            assertClose("logits_mm", expected.get("eval"), model.forward(image, text, null).logits());
        }
    }

    @Test
    void pretrainingLayoutLoadsNonStrictlyWithTheReferenceReport() throws Exception {
        JsonNode v = expected.get("variants").get("pretraining_layout");
        FlavaForClassification model = FlavaForClassification.create(config, manager);
        var report = StateDictLoader.load(model, fixture("flava_pretraining_layout.pt"), false);
        assertEquals(strings(v.get("missing")), report.missing());
        assertEquals(strings(v.get("unexpected")), report.unexpected());
        model.setTraining(false);
        try (NDScope scope = new NDScope()) {
            var out = model.flava().forward(image, text, null);
            assertClose("multimodal_last_hidden_state", v, out.multimodal().lastHiddenState());
        }
        // strict loading of the same file names every missing and unexpected key
        FlavaForClassification strict = FlavaForClassification.create(config, manager);
        Exception e = assertThrows(Exception.class, () -> StateDictLoader.load(strict, fixture("flava_pretraining_layout.pt"), true));
        assertTrue(e.getMessage().contains("classifier.model.3.weight") && e.getMessage().contains("loss.itm_loss.pooler.dense.weight"),
                e.getMessage());
    }

    @Test
    void shapeMismatchIsAnErrorEvenNonStrict() throws Exception {
        FlavaConfig other = config.copy();
        other.numClasses = 9;
        FlavaForClassification model = FlavaForClassification.create(other, manager);
        Exception e = assertThrows(Exception.class, () -> StateDictLoader.load(model, fixture("flava_classification.pt"), false));
        assertTrue(e.getMessage().contains("classifier.model.3.weight: checkpoint [7, 32], model [9, 32]"), e.getMessage());
    }

    // ---- helpers

    static void assertClose(String key, JsonNode parent, NDArray actual) {
        JsonNode exp = parent.get(key);
        assertEquals(shape(exp), actual.getShape(), key + " shape");
        float[] a = actual.toFloatArray();
        JsonNode d = exp.get("data");
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - d.get(i).asDouble()));
        }
        System.out.printf("parity %-30s max abs difference %.3g%n", key, max);
        assertTrue(max <= ABS, key + ": max abs difference " + max + " > " + ABS);
    }

    static void assertRelClose(String key, JsonNode exp, NDArray actual) {
        assertEquals(shape(exp), actual.getShape(), key + " shape");
        float[] a = actual.toFloatArray();
        JsonNode d = exp.get("data");
        double scale = 0;
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            scale = Math.max(scale, Math.abs(d.get(i).asDouble()));
            max = Math.max(max, Math.abs(a[i] - d.get(i).asDouble()));
        }
        System.out.printf("parity %-60s max difference %.3g = %.3g x largest magnitude%n", key, max, max / scale);
        assertTrue(max <= REL * scale, key + ": max difference " + max + " > 1e-5 x " + scale);
    }

    static Shape shape(JsonNode t) {
        long[] s = new long[t.get("shape").size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = t.get("shape").get(i).asLong();
        }
        return new Shape(s);
    }

    static NDArray floats(NDManager m, JsonNode t) {
        JsonNode d = t.get("data");
        float[] v = new float[d.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) d.get(i).asDouble();
        }
        return m.create(v, shape(t));
    }

    static NDArray longs(NDManager m, JsonNode t) {
        JsonNode d = t.get("data");
        long[] v = new long[d.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = d.get(i).asLong();
        }
        return m.create(v, shape(t));
    }

    static List<String> strings(JsonNode arr) {
        List<String> out = new ArrayList<>();
        arr.forEach(n -> out.add(n.asText()));
        return out;
    }

    interface Check {
        void accept(String name, JsonNode exp) throws Exception;
    }

    static void forEach(JsonNode obj, Check c) throws Exception {
        for (Iterator<Map.Entry<String, JsonNode>> it = obj.fields(); it.hasNext(); ) {
            var e = it.next();
            c.accept(e.getKey(), e.getValue());
        }
    }
}
