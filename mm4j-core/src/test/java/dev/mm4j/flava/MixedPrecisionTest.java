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
        FlavaConfig c = FlavaParityTest.config.copy();
        c.precision = Precision.BF16;
        FlavaForClassification model = FlavaForClassification.create(c, manager);
        StateDictLoader.load(model, FlavaParityTest.fixture("flava_classification.pt"), true);
        model.setTraining(false);
        assertEquals(Precision.BF16, model.precision());
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
