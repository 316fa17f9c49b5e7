package dev.mm4j.flava;

import static dev.mm4j.flava.FlavaParityTest.fixture;
import static dev.mm4j.flava.FlavaParityTest.floats;
import static dev.mm4j.flava.FlavaParityTest.longs;
import static dev.mm4j.flava.FlavaParityTest.shape;
import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.StateDictLoader;
import dev.mm4j.nn.Parameter;
import dev.mm4j.train.AdamW;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * FLAVA pretraining against TorchMultimodal's {@code FLAVAForPreTraining} (fixtures/flava-tiny/pretraining.pt +
 * pretraining.json, see the fixtures README): the state dict loads strictly; the codebook's tokens are equal; every
 * loss of the three cases (image-text pairs, image only, text only) within 1e-5 relative; the first step's gradients
 * and the parameters after three AdamW steps on the sum of all cases' losses within 1e-5 relative to each tensor's
 * largest magnitude (5e-5 for the patch embedding after three steps, as the README allows). Config, inputs and
 * every expected number come from the JSON, so another configuration's fixture runs unchanged.
 */
public class FlavaPretrainingParityTest {
    static final double REL = 1e-5;
    static final String PATCH_EMBEDDING = "model.image_encoder.embeddings.patch_embeddings.projection.weight";
    static final double PATCH_EMBEDDING_AFTER_STEPS = 5e-5;

    static JsonNode fixture;
    static FlavaConfig config;

    NDManager manager;
    FlavaForPreTraining model;
    Map<String, FlavaForPreTraining.Inputs> cases;

    /** The fixture's configuration: the model kwargs plus the codebook's and the image vocabulary, by their kwarg names. */
    public static FlavaConfig config(JsonNode f) throws Exception {
        JsonNode cb = f.get("codebook");
        assertEquals(f.get("image_vocab_size").asInt(), cb.get("vocab_size").asInt(), "the codebook's vocabulary is the MIM heads'");
        return FlavaConfig.withKwargs(FlavaConfig.fromJson(f.get("config").toString()), Map.of(
                "image_vocab_size", f.get("image_vocab_size").asInt(),
                "codebook_image_size", cb.get("image_size").asInt(),
                "codebook_group_count", cb.get("group_count").asInt(),
                "codebook_n_hid", cb.get("n_hid").asInt(),
                "codebook_n_blk_per_group", cb.get("n_blk_per_group").asInt()));
    }

    @BeforeAll
    static void readFixture() throws Exception {
        try (InputStream in = FlavaPretrainingParityTest.class.getResourceAsStream("/fixtures/flava-tiny/pretraining.json")) {
            fixture = new ObjectMapper().readTree(in);
        }
        config = config(fixture);
        assertEquals(FlavaPretrainingLoss.IGNORE_INDEX, fixture.get("ignore_index").asInt());
    }

    @BeforeEach
    void setUp() throws Exception {
        manager = NDManager.newBaseManager();
        model = FlavaForPreTraining.create(config, manager);
        StateDictLoader.Report r = StateDictLoader.load(model, fixture("pretraining.pt"), true);
        System.out.println("pretraining.pt strict load: " + r);
        model.setTraining(false); // eval mode, as the reference
        JsonNode in = fixture.get("inputs");
        NDArray image = floats(manager, in.get("image"));
        NDArray forCodebook = floats(manager, in.get("image_for_codebook"));
        NDArray text = longs(manager, in.get("text"));
        NDArray textMasked = longs(manager, in.get("text_masked"));
        NDArray mlmLabels = longs(manager, in.get("mlm_labels"));
        NDArray patchesMask = longs(manager, in.get("image_patches_mask"));
        NDArray itmLabels = longs(manager, in.get("itm_labels"));
        cases = new LinkedHashMap<>();
        cases.put("pairs", new FlavaForPreTraining.Inputs(image, forCodebook, text, textMasked, mlmLabels, patchesMask,
                itmLabels));
        cases.put("image", new FlavaForPreTraining.Inputs(image, forCodebook, null, null, null, patchesMask, null));
        cases.put("text", new FlavaForPreTraining.Inputs(null, null, null, textMasked, mlmLabels, null, null));
    }

    @AfterEach
    void close() {
        manager.close();
    }

    @Test
    void fixtureLoadsStrictlyWithNothingMissingOrUnexpected() throws Exception {
        FlavaForPreTraining fresh = FlavaForPreTraining.create(config, manager);
        StateDictLoader.Report r = StateDictLoader.load(fresh, fixture("pretraining.pt"), true);
        assertEquals(List.of(), r.missing());
        assertEquals(List.of(), r.unexpected());
        assertEquals(fresh.stateDictParameters().size(), r.loaded(), "every state-dict key loaded");
        // the heads' decoder bias is tied to the head's bias: one parameter under two names
        Map<String, Parameter> sd = fresh.stateDictParameters();
        assertSame(sd.get("loss.mlm_loss.cls.bias"), sd.get("loss.mlm_loss.cls.decoder.bias"));
        assertFalse(fresh.namedParameters().containsKey("loss.mlm_loss.cls.decoder.bias"), "trained once");
        assertTrue(fresh.trainableParameters().keySet().stream().noneMatch(n -> n.startsWith("image_codebook.")));
    }

    @Test
    void codebookTokensEqualTheReference() {
        try (NDScope scope = new NDScope()) {
            NDArray tokens = model.imageCodebook().forward(cases.get("pairs").imageForCodebook());
            JsonNode exp = fixture.get("codebook_labels");
            NDArray flat = tokens.reshape(tokens.getShape().get(0), -1);
            assertEquals(shape(exp), flat.getShape());
            long[] got = flat.toLongArray();
            int differ = 0;
            for (int i = 0; i < got.length; i++) {
                differ += got[i] == exp.get("data").get(i).asLong() ? 0 : 1;
            }
            assertEquals(0, differ, "codebook tokens differing from the reference");
            // the MIM targets: tokens at masked patches, ignore index elsewhere
            NDArray labels = model.forward(cases.get("image")).mimLabels();
            long[] l = labels.toLongArray();
            JsonNode mask = fixture.get("inputs").get("image_patches_mask").get("data");
            for (int i = 0; i < l.length; i++) {
                assertEquals(mask.get(i).asLong() == 1 ? got[i] : FlavaPretrainingLoss.IGNORE_INDEX, l[i]);
            }
        }
    }

    @Test
    void everyLossOfEveryCaseMatchesTheReference() {
        JsonNode eval = fixture.get("eval");
        try (NDScope scope = new NDScope()) {
            for (var c : cases.entrySet()) {
                FlavaForPreTraining.Output out = model.forward(c.getValue());
                assertLosses(c.getKey(), eval.get(c.getKey()), out.losses(), REL);
                double sum = 0;
                for (NDArray l : out.losses().named().values()) {
                    sum += l.getFloat();
                }
                assertEquals(sum, out.total().getFloat(), 1e-5 * Math.abs(sum), "total of " + c.getKey());
            }
        }
    }

    @Test
    void gradientsAndThreeAdamWStepsOnTheSumMatchTheReference() throws Exception {
        threeStepsMatchTheReference();
    }

    /** The same with every transformer layer recomputed in the backward pass (the image and text encoders run twice). */
    @Test
    void withActivationCheckpointingTheStepsAreTheSame() throws Exception {
        FlavaConfig c = config.copy();
        c.activationCheckpointing = true;
        model = FlavaForPreTraining.create(c, manager);
        StateDictLoader.load(model, fixture("pretraining.pt"), true);
        model.setTraining(false);
        threeStepsMatchTheReference();
    }

    /**
     * With activation checkpointing, a layer's parameters are reported done once, after the backward pass has gone
     * through every run of the layer (the image encoder runs on the image and on the masked image): their gradients
     * are then final.
     */
    @Test
    void checkpointedLayersAreReportedOnceWithTheirFinalGradients() throws Exception {
        FlavaConfig c = config.copy();
        c.activationCheckpointing = true;
        model = FlavaForPreTraining.create(c, manager);
        StateDictLoader.load(model, fixture("pretraining.pt"), true);
        model.setTraining(false);
        Map<Parameter, float[]> atDone = new java.util.IdentityHashMap<>();
        List<Parameter> order = new ArrayList<>();
        try (NDScope scope = new NDScope()) {
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                FlavaForPreTraining.Output out = model.forward(cases.get("pairs"));
                model.backward(gc, out.total(), params -> {
                    for (Parameter p : params) {
                        assertNull(atDone.put(p, p.array().getGradient().toFloatArray()), "reported twice");
                        order.add(p);
                    }
                });
            }
            int layers = config.imageNumHiddenLayers + config.textNumHiddenLayers + config.multimodalNumHiddenLayers;
            Parameter query0 = model.stateDictParameters().get("model.image_encoder.encoder.layer.0.attention.query.weight");
            assertTrue(atDone.containsKey(query0), "the image encoder's first layer is reported");
            assertEquals(layers * 16, order.size(), "every layer's 16 tensors once");
            for (Parameter p : order) {
                assertArrayEquals(p.array().getGradient().toFloatArray(), atDone.get(p), "gradient final when reported");
            }
        }
    }

    /** FLAVAGlobalContrastiveLoss clamps its log-temperature into [0, 4.6052] in place before each use. */
    @Test
    void logitScaleIsClampedIntoTheReferencesRange() {
        Parameter p = model.stateDictParameters().get("loss.contrastive_loss.logit_scale");
        assertEquals(fixture.get("logit_scale_init").asDouble(), p.array().getFloat(), 1e-6);
        p.copyFrom(manager.full(new ai.djl.ndarray.types.Shape(), 7f));
        try (NDScope scope = new NDScope()) {
            model.forward(cases.get("pairs"));
        }
        assertEquals(4.6052f, p.array().getFloat(), 0f);
        p.copyFrom(manager.full(new ai.djl.ndarray.types.Shape(), -3f));
        assertEquals(0f, model.loss().contrastiveLoss().logitScale(), 0f);
        assertEquals(0f, p.array().getFloat(), 0f);
    }

    /** Configurations FLAVA pretraining cannot run are refused when the model is built, naming the keys. */
    @Test
    void configsThatCannotPretrainAreRefused() {
        FlavaConfig narrowText = config.copy();
        narrowText.textHiddenSize = config.multimodalHiddenSize * 2;
        Exception e = assertThrows(IllegalArgumentException.class, () -> new FlavaForPreTraining(narrowText));
        assertTrue(e.getMessage().contains("text_hidden_size (" + narrowText.textHiddenSize + ")"), e.getMessage());
        FlavaConfig grid = config.copy();
        grid.codebookImageSize = config.codebookImageSize * 2;
        e = assertThrows(IllegalArgumentException.class, () -> new FlavaForPreTraining(grid));
        assertTrue(e.getMessage().contains("codebook_image_size / 8"), e.getMessage());
    }

    /** The codebook's logit-Laplace pixel map: (1 - 2 eps) x + eps with eps 0.1, [0, 1] onto [0.1, 0.9]. */
    @Test
    void codebookPixelMapIsTheLogitLaplaceMap() {
        try (NDScope scope = new NDScope()) {
            float[] y = DalleVaeEncoder.mapPixels(manager.create(new float[] {0f, 0.5f, 1f})).toFloatArray();
            assertArrayEquals(new float[] {0.1f, 0.5f, 0.9f}, y, 1e-7f);
        }
    }

    /** bfloat16 matrix products: the same losses to bfloat16's precision, and a backward pass. */
    @Test
    void bf16GivesTheLossesToBfloat16Precision() throws Exception {
        FlavaConfig c = config.copy();
        c.precision = dev.mm4j.nn.Precision.BF16;
        model = FlavaForPreTraining.create(c, manager);
        StateDictLoader.load(model, fixture("pretraining.pt"), true);
        model.setTraining(false);
        JsonNode eval = fixture.get("eval");
        try (NDScope scope = new NDScope()) {
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                for (var e : cases.entrySet()) {
                    FlavaForPreTraining.Output out = model.forward(e.getValue());
                    assertLosses("bf16 " + e.getKey(), eval.get(e.getKey()), out.losses(), 2e-2);
                    model.backward(gc, out.total());
                }
            }
            NDArray g = model.stateDictParameters().get("loss.mmm_loss.mim.cls.decoder.weight").array().getGradient();
            assertTrue(g.abs().sum().getFloat() > 0, "gradients reach the heads");
        }
    }

    /**
     * bf16 on one image-text pair: the image encoder (the masked and the unmasked image, 34 tokens) keeps its
     * activations while the text and multimodal encoders recompute theirs (their weight copies outweigh what bf16
     * saves on them), and the global contrastive loss reads the image encoder directly: the loss's backward pass goes
     * through the image encoder, and the multimodal encoder's gradients reach it again afterwards. The gradients equal
     * those with every layer recomputed, both bf16.
     */
    @Test
    void bf16WithSomeEncodersRecomputedGivesTheGradientsOfEveryLayerRecomputed() throws Exception {
        FlavaForPreTraining.Inputs all = cases.get("pairs");
        FlavaForPreTraining.Inputs one = new FlavaForPreTraining.Inputs(all.image().get("0:1"),
                all.imageForCodebook().get("0:1"), all.text().get("0:1"), all.textMasked().get("0:1"),
                all.mlmLabels().get("0:1"), all.imagePatchesMask().get("0:1"), all.itmLabels().get("0:1"));
        long imageTokens = 1 + (long) (config.imageSize / config.patchSize) * (config.imageSize / config.patchSize);
        long textTokens = one.text().getShape().get(1);
        assertFalse(dev.mm4j.nn.ActivationCheckpointing.bf16KeepsMore(2, imageTokens, imageTokens,
                config.imageHiddenSize, config.imageNumAttentionHeads, config.imageIntermediateSize), "image kept");
        assertTrue(dev.mm4j.nn.ActivationCheckpointing.bf16KeepsMore(2, textTokens, textTokens,
                config.textHiddenSize, config.textNumAttentionHeads, config.textIntermediateSize), "text recomputed");
        Map<String, float[]>[] grads = new Map[2];
        for (int k = 0; k < 2; k++) {
            FlavaConfig c = config.copy();
            c.precision = dev.mm4j.nn.Precision.BF16;
            c.activationCheckpointing = k == 1;
            FlavaForPreTraining m = FlavaForPreTraining.create(c, manager);
            StateDictLoader.load(m, fixture("pretraining.pt"), true);
            m.setTraining(false);
            grads[k] = new LinkedHashMap<>();
            try (NDScope scope = new NDScope()) {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    m.backward(gc, m.forward(one).total());
                }
                for (var e : m.trainableParameters().entrySet()) {
                    NDArray g = e.getValue().array().getGradient();
                    grads[k].put(e.getKey(), g.toFloatArray());
                }
            }
        }
        assertTrue(grads[0].get("model.image_encoder.encoder.layer.0.attention.query.weight").length > 0);
        for (var e : grads[0].entrySet()) {
            float[] a = e.getValue();
            float[] b = grads[1].get(e.getKey());
            double scale = 0;
            double diff = 0;
            for (int i = 0; i < a.length; i++) {
                scale = Math.max(scale, Math.abs(b[i]));
                diff = Math.max(diff, Math.abs(a[i] - b[i]));
            }
            assertTrue(diff <= 1e-6 * Math.max(scale, 1e-3), e.getKey() + ": gradients differ by " + diff + " (largest "
                    + scale + ")");
        }
    }

    void threeStepsMatchTheReference() throws Exception {
        JsonNode train = fixture.get("train");
        JsonNode opt = train.get("optimizer");
        AdamW.Settings s = new AdamW.Settings(opt.get("lr").asDouble(), opt.get("betas").get(0).asDouble(),
                opt.get("betas").get(1).asDouble(), opt.get("eps").asDouble(), opt.get("weight_decay").asDouble());
        Map<String, Parameter> params = model.stateDictParameters();
        try (AdamW adamw = new AdamW(model.trainableParameters(), s, manager)) {
            for (int step = 0; step < 3; step++) {
                try (NDScope scope = new NDScope()) {
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        for (var c : cases.entrySet()) {
                            FlavaForPreTraining.Output out = model.forward(c.getValue());
                            // before the first step forward outputs; after updates they depend on parameters held to
                            // 1e-5 relative (see ContrastiveParityTest), so 1e-5 relative again
                            assertLosses("step " + step + " " + c.getKey(),
                                    train.get("losses_per_step").get(step).get(c.getKey()), out.losses(), REL);
                            model.backward(gc, out.total()); // gradients add up over the cases
                        }
                    }
                    if (step == 0) {
                        FlavaParityTest.forEach(train.get("grads_step0"), (name, exp) ->
                                assertRelClose("grad " + name, exp, params.get(name).array().getGradient(), REL));
                        for (var e : params.entrySet()) {
                            if (e.getKey().startsWith("image_codebook.")) {
                                assertNull(ai.djl.pytorch.jni.JniUtils.getGradient(
                                        (ai.djl.pytorch.engine.PtNDArray) e.getValue().array()),
                                        "the frozen codebook gets no gradient: " + e.getKey());
                            }
                        }
                    }
                    adamw.step(s.lr(), 1.0);
                    adamw.zeroGrad();
                }
            }
        }
        FlavaParityTest.forEach(train.get("params_after_3_steps"), (name, exp) ->
                assertRelClose("param " + name, exp, params.get(name).array(),
                        name.equals(PATCH_EMBEDDING) ? PATCH_EMBEDDING_AFTER_STEPS : REL));
    }

    /** Exactly the expected losses were computed, each within {@code rel} of its value. */
    static void assertLosses(String what, JsonNode expected, FlavaPretrainingLoss.Losses losses, double rel) {
        Map<String, NDArray> got = losses.named();
        List<String> names = new ArrayList<>();
        expected.fieldNames().forEachRemaining(names::add);
        assertEquals(names.stream().sorted().toList(), got.keySet().stream().sorted().toList(), what + ": losses computed");
        for (String n : names) {
            double e = expected.get(n).asDouble();
            double a = got.get(n).getFloat();
            System.out.printf("parity %-36s %-24s %.8f vs %.8f (difference %.3g)%n", what, n, a, e, Math.abs(a - e));
            assertEquals(e, a, rel * Math.max(1.0, Math.abs(e)), what + " " + n);
        }
    }

    static void assertRelClose(String key, JsonNode exp, NDArray actual, double rel) {
        assertEquals(shape(exp), actual.getShape(), key + " shape");
        float[] a = actual.toFloatArray();
        JsonNode d = exp.get("data");
        double scale = 0;
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            scale = Math.max(scale, Math.abs(d.get(i).asDouble()));
            max = Math.max(max, Math.abs(a[i] - d.get(i).asDouble()));
        }
        System.out.printf("parity %-72s max difference %.3g = %.3g x largest magnitude%n", key, max, max / scale);
        assertTrue(max <= rel * scale, key + ": max difference " + max + " > " + rel + " x " + scale);
    }
}
