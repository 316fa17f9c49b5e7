package dev.mm4j.nn;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Two bf16 runs whose weight copies share one buffer ({@link SharedBf16Copies}): the second run overwrites the first
 * one's copy, and {@link SharedBf16Copies#refill} before each run's backward pass gives the gradients of weights
 * cast at every call, bit for bit. Without the refill the first run's input gradient is computed on the second run's
 * weights: the buffer is shared.
 */
class SharedBf16CopiesTest {

    @Test
    void refilledSharedCopiesGiveTheGradientsOfCopiesOfTheirOwn() {
        try (NDManager m = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(11);
            NDArray[] w = {m.randomNormal(new Shape(16, 16)), m.randomNormal(new Shape(16, 16))};
            NDArray[] b = {m.randomNormal(new Shape(16)), m.randomNormal(new Shape(16))};
            NDArray[] x = {m.randomNormal(new Shape(3, 16)), m.randomNormal(new Shape(3, 16))};
            List<float[]> own = gradients(m, w, b, x, null, true);
            List<float[]> shared = gradients(m, w, b, x, new SharedBf16Copies.Pool(), true);
            for (int i = 0; i < own.size(); i++) {
                assertArrayEquals(own.get(i), shared.get(i), "gradient " + i);
            }
            List<float[]> unrefilled = gradients(m, w, b, x, new SharedBf16Copies.Pool(), false);
            assertArrayEquals(own.get(3), unrefilled.get(3), "the second run's input gradient (its weights were last)");
            assertFalse(java.util.Arrays.equals(own.get(2), unrefilled.get(2)),
                    "without the refill the first run's input gradient reads the second run's weights");
        }
    }

    /**
     * Two bf16 linear runs (weights {@code w[i]}, bias {@code b[i]}, input {@code x[i]}), their copies in buffers of
     * {@code pool} (null: copies of their own), back-propagated in reverse, each refilled first when {@code refill}:
     * the gradients of w[0], w[1], x[0], x[1].
     */
    private static List<float[]> gradients(NDManager m, NDArray[] w, NDArray[] b, NDArray[] x, SharedBf16Copies.Pool pool,
            boolean refill) {
        List<float[]> out = new ArrayList<>();
        try (NDManager step = m.newSubManager(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            // fresh leaves (no gradient yet), closed with the step
            NDArray[] ws = {w[0].duplicate(), w[1].duplicate()};
            NDArray[] xs = {x[0].duplicate(), x[1].duplicate()};
            for (NDArray a : new NDArray[] {ws[0], ws[1], xs[0], xs[1]}) {
                a.attach(step);
            }
            for (NDArray a : new NDArray[] {ws[0], ws[1], xs[0], xs[1]}) {
                a.setRequiresGradient(true);
            }
            SharedBf16Copies[] runs = new SharedBf16Copies[2];
            NDArray[] losses = new NDArray[2];
            for (int i = 0; i < 2; i++) {
                int r = i;
                TorchOps ops = TorchOps.on(xs[r]);
                if (pool == null) {
                    losses[r] = ops.linear(Precision.BF16, xs[r], ws[r], b[r]).square().sum();
                } else {
                    runs[r] = new SharedBf16Copies(pool);
                    losses[r] = runs[r].during(() -> ops.linear(Precision.BF16, xs[r], ws[r], b[r])).square().sum();
                }
            }
            for (int i = 1; i >= 0; i--) {
                if (runs[i] != null && refill) {
                    runs[i].refill();
                }
                gc.backward(losses[i]);
            }
            for (NDArray a : new NDArray[] {ws[0], ws[1], xs[0], xs[1]}) {
                NDArray g = JniUtils.getGradient((PtNDArray) a);
                out.add(g.toFloatArray());
                g.close();
            }
        }
        return out;
    }
}
