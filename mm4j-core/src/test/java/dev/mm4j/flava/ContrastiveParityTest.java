package dev.mm4j.flava;

import static dev.mm4j.flava.FlavaParityTest.assertClose;
import static dev.mm4j.flava.FlavaParityTest.assertRelClose;
import static dev.mm4j.flava.FlavaParityTest.fixture;
import static dev.mm4j.flava.FlavaParityTest.floats;
import static dev.mm4j.flava.FlavaParityTest.longs;
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
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * FLAVA's contrastive objective against TorchMultimodal (fixtures/flava-tiny/contrastive.json, see its README):
 * projected embeddings, cosine similarities and {@code ContrastiveLossWithTemperature} within 1e-5 absolute; the
 * first step's gradients and the parameters after three AdamW steps on that loss within 1e-5 relative.
 *
 * <p>The fixture's loss (1.5136) is the module applied to the raw projected embeddings: on the L2-normalised
 * ones (what its README describes) it would be 0.7072. The numbers are the specification, so the test calls the
 * loss as the fixture did; fine-tuning normalises, as FLAVA's pretraining loss does.
 */
class ContrastiveParityTest {
    static JsonNode expected;
    static JsonNode contrastive;
    static FlavaConfig config;

    NDManager manager;
    NDArray image;
    NDArray text;
    FlavaForRetrieval model;

    @BeforeAll
    static void readFixtures() throws Exception {
        ObjectMapper om = new ObjectMapper();
        try (InputStream in = ContrastiveParityTest.class.getResourceAsStream("/fixtures/flava-tiny/expected.json")) {
            expected = om.readTree(in);
        }
        try (InputStream in = ContrastiveParityTest.class.getResourceAsStream("/fixtures/flava-tiny/contrastive.json")) {
            contrastive = om.readTree(in);
        }
        config = FlavaConfig.fromJson(expected.get("config").toString());
    }

    @BeforeEach
    void setUp() throws Exception {
        manager = NDManager.newBaseManager();
        image = floats(manager, expected.get("inputs").get("image"));
        text = longs(manager, expected.get("inputs").get("text"));
        model = FlavaForRetrieval.create(config, manager);
        // the classification checkpoint: model.* loads, the classifier is not part of this model, the
        // temperature is not in the file and keeps its initial value
        StateDictLoader.Report r = StateDictLoader.load(model, fixture("flava_classification.pt"), false);
        assertEquals(java.util.List.of("loss.contrastive_loss.logit_scale"), r.missing());
        assertTrue(r.unexpected().stream().allMatch(n -> n.startsWith("classifier.")), r.unexpected().toString());
        model.setTraining(false);
    }

    @AfterEach
    void close() {
        manager.close();
    }

    @Test
    void embeddingsSimilarityAndLossMatchTheReference() {
        JsonNode ev = contrastive.get("eval");
        assertEquals(contrastive.get("logit_scale_init").asDouble(), model.contrastiveLoss().logitScale(), 1e-6);
        assertEquals(contrastive.get("logit_scale_min").asDouble(), ContrastiveLossWithTemperature.LOGIT_SCALE_MIN, 1e-12);
        assertEquals(contrastive.get("logit_scale_max").asDouble(), ContrastiveLossWithTemperature.LOGIT_SCALE_MAX, 1e-12);
        try (NDScope scope = new NDScope()) {
            assertClose("image_embeddings", ev, model.imageEmbeddings(image, false));
            assertClose("text_embeddings", ev, model.textEmbeddings(text, false));
            // the same numbers as the classification fixture's projected embeddings
            assertClose("projected_image_embeddings", expected.get("eval"), model.flava().imageEmbeddings(image));
            assertClose("projected_text_embeddings", expected.get("eval"), model.flava().textEmbeddings(text));
            // the fixture calls ContrastiveLossWithTemperature() on the projections as they are
            ContrastiveLossWithTemperature.Output out = model.forward(image, text, false);
            assertEquals(ev.get("loss").asDouble(), out.loss().getFloat(), FlavaParityTest.ABS, "loss");
            // normalised embeddings have unit length and their dot products are the similarities
            NDArray ni = model.imageEmbeddings(image, true);
            NDArray nt = model.textEmbeddings(text, true);
            float[] norms = ni.norm(new int[] {-1}).toFloatArray();
            assertEquals(1.0, norms[0], 1e-6);
            assertEquals(1.0, norms[1], 1e-6);
            assertClose("similarity", ev, ni.matMul(nt.transpose()));
        }
    }

    @Test
    void threeAdamWStepsOnTheContrastiveLossMatchTheReference() throws Exception {
        JsonNode train = contrastive.get("train");
        JsonNode opt = train.get("optimizer");
        AdamW.Settings s = new AdamW.Settings(opt.get("lr").asDouble(), opt.get("betas").get(0).asDouble(),
                opt.get("betas").get(1).asDouble(), opt.get("eps").asDouble(), opt.get("weight_decay").asDouble());
        Map<String, Parameter> params = model.namedParameters();
        try (AdamW adamw = new AdamW(params, s, manager)) {
            for (int step = 0; step < 3; step++) {
                try (NDScope scope = new NDScope()) {
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray loss = model.forward(image, text, false).loss();
                        // before the first step a forward output (1e-5 absolute); after updates the loss depends on
                        // parameters that are held to 1e-5 relative, so it is too (Adam's first steps move every
                        // weight by about lr whatever its gradient's size, which amplifies float noise)
                        double exp = train.get("losses").get(step).asDouble();
                        double tol = step == 0 ? FlavaParityTest.ABS : FlavaParityTest.REL * Math.abs(exp);
                        System.out.printf("parity loss before step %d: %.8f vs %.8f%n", step, loss.getFloat(), exp);
                        assertEquals(exp, loss.getFloat(), tol, "loss before step " + step);
                        model.backward(gc, loss);
                    }
                    if (step == 0) {
                        FlavaParityTest.forEach(train.get("grads_step0"), (name, exp) ->
                                assertRelClose("grad " + name, exp, params.get(ours(name)).array().getGradient()));
                    }
                    adamw.step(s.lr(), 1.0);
                    adamw.zeroGrad();
                }
            }
        }
        FlavaParityTest.forEach(train.get("params_after_3_steps"), (name, exp) ->
                assertRelClose("param " + name, exp, params.get(ours(name)).array()));
    }

    @Test
    void logitScaleIsClampedIntoItsRangeBeforeUse() throws Exception {
        Parameter p = model.namedParameters().get("loss.contrastive_loss.logit_scale");
        p.copyFrom(manager.full(new ai.djl.ndarray.types.Shape(), 7f));
        assertEquals(Math.log(100), model.contrastiveLoss().logitScale(), 1e-6);
        assertEquals(Math.log(100), p.array().getFloat(), 1e-6, "clamped in place, as the reference's clamp_");
        p.copyFrom(manager.full(new ai.djl.ndarray.types.Shape(), -3f));
        try (NDScope scope = new NDScope()) {
            model.forward(image, text, true);
        }
        assertEquals(0.0, p.array().getFloat(), 1e-7);
    }

    @Test
    void pretrainingLayoutCheckpointGivesTheSameEmbeddings() throws Exception {
        FlavaForRetrieval pre = FlavaForRetrieval.create(config, manager);
        StateDictLoader.Report r = StateDictLoader.load(pre, fixture("flava_pretraining_layout.pt"), false);
        assertTrue(r.missing().isEmpty() || r.missing().equals(java.util.List.of("loss.contrastive_loss.logit_scale")),
                "the projections are loaded: " + r.missing());
        pre.setTraining(false);
        try (NDScope scope = new NDScope()) {
            assertClose("image_embeddings", contrastive.get("eval"), pre.imageEmbeddings(image, false));
            assertClose("text_embeddings", contrastive.get("eval"), pre.textEmbeddings(text, false));
        }
    }

    /** The fixture names FLAVAModel's parameters and the loss's logit_scale; ours are FLAVAForPreTraining's. */
    static String ours(String name) {
        return name.equals("logit_scale") ? "loss.contrastive_loss.logit_scale" : "model." + name;
    }
}
