package dev.mm4j.flava;

import static dev.mm4j.flava.FlavaParityTest.assertClose;
import static dev.mm4j.flava.FlavaParityTest.assertRelClose;
import static dev.mm4j.flava.FlavaParityTest.floats;
import static dev.mm4j.flava.FlavaParityTest.forEach;
import static dev.mm4j.flava.FlavaParityTest.longs;
import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * Training through the unimodal heads (TorchMultimodal's {@code required_embedding} "image" and "text") against
 * fixtures/flava-tiny/unimodal_training.json, which tools/flava_unimodal_training_reference.py computes with
 * TorchMultimodal: the loss before each of three AdamW steps, the first step's gradients and the parameters after the
 * three steps (within 1e-5 of each tensor's largest magnitude), and the encoder the head does not read left untouched.
 * Also the text encoder on a {@code [CLS] a [SEP] b [SEP]} pair, with the token types the reference gives it (all 0).
 */
class UnimodalTrainingParityTest {
    static JsonNode reference;

    NDManager manager;
    NDArray image;
    NDArray text;
    NDArray labels;

    @BeforeAll
    static void read() throws Exception {
        try (InputStream in = UnimodalTrainingParityTest.class
                .getResourceAsStream("/fixtures/flava-tiny/unimodal_training.json")) {
            reference = new ObjectMapper().readTree(in);
        }
        FlavaParityTest.readFixture();
    }

    @BeforeEach
    void inputs() {
        manager = NDManager.newBaseManager();
        JsonNode in = FlavaParityTest.expected.get("inputs");
        image = floats(manager, in.get("image"));
        text = longs(manager, in.get("text"));
        labels = longs(manager, in.get("labels"));
    }

    @AfterEach
    void close() {
        manager.close();
    }

    FlavaForClassification load() throws Exception {
        FlavaForClassification model = FlavaForClassification.create(FlavaParityTest.config, manager);
        StateDictLoader.load(model, FlavaParityTest.fixture("flava_classification.pt"), true);
        model.setTraining(false);
        return model;
    }

    @ParameterizedTest
    @EnumSource(value = RequiredEmbedding.class, names = {"IMAGE", "TEXT"})
    void threeAdamWStepsThroughTheUnimodalHeadMatchTheReference(RequiredEmbedding head) throws Exception {
        JsonNode ref = reference.get("heads").get(head.name().toLowerCase());
        FlavaForClassification model = load();
        JsonNode opt = reference.get("optimizer");
        AdamW.Settings s = new AdamW.Settings(opt.get("lr").asDouble(), opt.get("betas").get(0).asDouble(),
                opt.get("betas").get(1).asDouble(), opt.get("eps").asDouble(), opt.get("weight_decay").asDouble());
        Map<String, Parameter> params = model.namedParameters();
        float[] untouchedBefore = params.get(ref.get("untouched").asText()).array().toFloatArray();
        assertFalse(ref.get("untouched_has_grad").asBoolean());
        try (AdamW adamw = new AdamW(params, s, manager)) {
            for (int step = 0; step < 3; step++) {
                try (NDScope scope = new NDScope()) {
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray loss = model.forward(image, text, labels, head).loss();
                        assertEquals(ref.get("losses").get(step).asDouble(), loss.getFloat(), FlavaParityTest.ABS,
                                head + " loss before step " + step);
                        model.backward(gc, loss);
                    }
                    if (step == 0) {
                        forEach(ref.get("grads_step0"), (name, exp) ->
                                assertRelClose(head + " grad " + name, exp, params.get(name).array().getGradient()));
                    }
                    adamw.step(s.lr(), 1.0);
                    adamw.zeroGrad();
                }
            }
        }
        forEach(ref.get("params_after_3_steps"), (name, exp) ->
                assertRelClose(head + " param " + name, exp, params.get(name).array()));
        assertArrayEquals(untouchedBefore, params.get(ref.get("untouched").asText()).array().toFloatArray(),
                "the encoder the " + head + " head does not read is not updated");
    }

    @Test
    void textPairThroughTheTextEncoderMatchesTheReference() throws Exception {
        FlavaForClassification model = load();
        JsonNode pair = reference.get("pair");
        // the reference's data modules drop the tokenizer's token type ids: the pair runs with type 0 everywhere, and
        // giving BERT's 0/1 types would change the output (so the fixture can tell them apart)
        assertTrue(pair.get("bert_token_type_ids_differ_by").asDouble() > 1e-3);
        try (NDScope scope = new NDScope()) {
            NDArray ids = floats(manager, pair.get("input_ids")).toType(DataType.INT64, false);
            FlavaOutput out = model.flava().forward(null, ids, RequiredEmbedding.TEXT);
            assertClose("text_last_hidden_state", pair, out.text().lastHiddenState());
        }
    }
}
