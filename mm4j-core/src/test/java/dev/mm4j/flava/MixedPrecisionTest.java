package dev.mm4j.flava;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import dev.mm4j.checkpoint.StateDictLoader;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Precision;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * bf16 (bfloat16 products, float32 master weights) against the float32 reference of the fixture
 * (fixtures/flava-tiny/expected.json): close, not equal. bfloat16 keeps 8 significant bits.
 */
class MixedPrecisionTest {
    NDManager manager;
    NDArray image;
    NDArray text;
    NDArray labels;

    @BeforeAll
    static void readFixture() throws Exception {
        FlavaParityTest.readFixture();
    }

    @BeforeEach
    void inputs() {
        manager = NDManager.newBaseManager();
        JsonNode in = FlavaParityTest.expected.get("inputs");
        image = FlavaParityTest.floats(manager, in.get("image"));
        text = FlavaParityTest.longs(manager, in.get("text"));
        labels = FlavaParityTest.longs(manager, in.get("labels"));
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private FlavaForClassification bf16Model() throws Exception {
        return model(Precision.BF16);
    }

    private FlavaForClassification model(Precision precision) throws Exception {
        FlavaConfig c = FlavaParityTest.config.copy();
        c.precision = precision;
        FlavaForClassification model = FlavaForClassification.create(c, manager);
        StateDictLoader.load(model, FlavaParityTest.fixture("flava_classification.pt"), true);
        model.setTraining(false);
        assertEquals(precision, model.precision());
        return model;
    }

    /** max |a - e| / max |e|. */
    private static double relDiff(JsonNode exp, NDArray actual) {
        assertEquals(FlavaParityTest.shape(exp), actual.getShape());
        float[] a = actual.toFloatArray();
        JsonNode d = exp.get("data");
        double scale = 0;
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            scale = Math.max(scale, Math.abs(d.get(i).asDouble()));
            max = Math.max(max, Math.abs(a[i] - d.get(i).asDouble()));
        }
        return max / scale;
    }

    /**
     * int8 inference (dynamic quantization of every linear layer, oneDNN's int8 products) against the float32 reference, next to bf16's
     * error: close, not equal, and its loss within the same bound.
     */
    @Test
    void int8LogitsAreCloseToTheFloat32ReferenceNextToBf16() throws Exception {
        JsonNode ev = FlavaParityTest.expected.get("eval");
        double[] rel = new double[2];
        Precision[] ps = {Precision.BF16, Precision.INT8};
        for (int k = 0; k < 2; k++) {
            FlavaForClassification model = model(ps[k]);
            try (NDScope scope = new NDScope()) {
                var out = model.forward(image, text, labels, RequiredEmbedding.MM);
                rel[k] = relDiff(ev.get("logits_mm"), out.logits());
                if (ps[k] == Precision.INT8) {
                    assertEquals(ev.get("loss_mm").asDouble(), out.loss().getFloat(), INT8_REL * Math.abs(ev.get("loss_mm").asDouble()));
                }
            }
        }
        System.out.printf("logits_mm against float32, max difference x largest magnitude: bf16 %.3g, int8 %.3g%n", rel[0], rel[1]);
        assertTrue(rel[1] <= INT8_REL, "int8 logits differ by " + rel[1] + " of the largest");
        assertTrue(rel[1] > 1e-6, "int8 logits equal float32's: the products did not run in int8");
    }

    /** int8's bound on the fixture, relative to the largest logit (inputs quantized per tensor: ~1/255 of a range). */
    static final double INT8_REL = 5e-2;

    @Test
    void bf16LogitsAreWithinTwoPercentOfTheFloat32Reference() throws Exception {
        FlavaForClassification model = bf16Model();
        JsonNode ev = FlavaParityTest.expected.get("eval");
        try (NDScope scope = new NDScope()) {
            var out = model.forward(image, text, labels, RequiredEmbedding.MM);
            double rel = relDiff(ev.get("logits_mm"), out.logits());
            System.out.printf("bf16 logits_mm: max difference %.3g x largest magnitude%n", rel);
            assertTrue(rel <= 2e-2, "bf16 logits differ by " + rel + " of the largest");
            assertTrue(rel > 1e-6, "bf16 logits equal float32's: the products did not run in bfloat16");
            assertEquals(ev.get("loss_mm").asDouble(), out.loss().getFloat(), 2e-2 * Math.abs(ev.get("loss_mm").asDouble()));
        }
    }

    @Test
    void bf16GradientsAreCloseToTheFloat32Reference() throws Exception {
        FlavaForClassification model = bf16Model();
        JsonNode train = FlavaParityTest.expected.get("train");
        Map<String, Parameter> params = model.namedParameters();
        try (NDScope scope = new NDScope()) {
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray loss = model.forward(image, text, labels).loss();
                model.backward(gc, loss); // the fixture's few tokens: bf16 recomputes its layers (ActivationCheckpointing)
            }
            double[] worst = {0};
            FlavaParityTest.forEach(train.get("grads_step0"), (name, exp) -> {
                double rel = relDiff(exp, params.get(name).array().getGradient());
                worst[0] = Math.max(worst[0], rel);
                assertTrue(rel <= 5e-2, "bf16 gradient " + name + " differs by " + rel + " of its largest");
            });
            System.out.printf("bf16 gradients: worst max difference %.3g x largest magnitude%n", worst[0]);
        }
    }
}
