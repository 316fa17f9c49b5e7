package dev.mm4j.nn;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A checkpointed encoder's input need not be a node of a recorded graph: a plain array (no gradient asked for) and a
 * leaf that asks for its gradient both work, and give the gradients an encoder without checkpointing gives (the leaf
 * its own gradient too). Asking libtorch for a leaf's gradient function would abort the JVM.
 */
class CheckpointedEncoderInputTest {

    @ParameterizedTest(name = "input asks for its gradient: {0}")
    @ValueSource(booleans = {false, true})
    void aLeafInputGetsTheGradientsOfAnEncoderWithoutCheckpointing(boolean inputGradient) {
        try (NDManager m = NDManager.newBaseManager()) {
            TransformerEncoder plain = new TransformerEncoder(2, 32, 4, 64, Activation.GELU, 1e-12, 0.02, null);
            plain.allocate(m);
            ActivationCheckpointing ac = new ActivationCheckpointing(true);
            TransformerEncoder checkpointed = new TransformerEncoder(2, 32, 4, 64, Activation.GELU, 1e-12, 0.02, ac);
            checkpointed.allocate(m);
            Map<String, Parameter> from = plain.namedParameters();
            checkpointed.namedParameters().forEach((n, p) -> p.copyFrom(from.get(n).array()));
            NDArray[] inputGrads = new NDArray[2];
            for (int i = 0; i < 2; i++) {
                Engine.getInstance().setRandomSeed(7); // the same input for both encoders
                NDArray x = m.randomNormal(new Shape(2, 5, 32));
                x.setRequiresGradient(inputGradient);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    if (i == 0) {
                        gc.backward(plain.forward(x, null).square().mean());
                    } else {
                        ac.backward(checkpointed.forward(x, null).square().mean(), params -> {});
                    }
                }
                inputGrads[i] = inputGradient ? JniUtils.getGradient((PtNDArray) x) : null;
            }
            if (inputGradient) {
                assertNotNull(inputGrads[1], "the leaf got its gradient through the checkpointed layers");
                assertTrue(inputGrads[0].abs().max().getFloat() > 0);
                assertTrue(inputGrads[0].allClose(inputGrads[1], 1e-5, 1e-7, false), "the input's gradient");
            }
            Map<String, Parameter> ps = checkpointed.namedParameters();
            from.forEach((n, p) -> {
                NDArray a = JniUtils.getGradient((PtNDArray) p.array());
                NDArray b = JniUtils.getGradient((PtNDArray) ps.get(n).array());
                assertTrue(a.allClose(b, 1e-5, 1e-7, false), n);
            });
        }
    }
}
