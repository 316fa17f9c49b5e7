package dev.mm4j.nn;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.mm4j.util.NativeHeap;
import org.junit.jupiter.api.Test;

/**
 * A transformer encoder holds one layer's intermediates at a time, not all of them until the step ends
 * ({@link Transients}): measured in glibc's bytes in use while the step is still open. The bound is one
 * layer's attention probabilities (B·H·L·L floats); holding every layer's intermediates, as before, is
 * more than six times that.
 */
class TransformerEncoderMemoryTest {
    static final int B = 8;
    static final int L = 256;
    static final int D = 64;
    static final int HEADS = 4;
    static final int LAYERS = 6;
    static final long PROBS = 4L * B * HEADS * L * L; // 8 MiB
    static final long MLP_HIDDEN = 4L * B * L * 4 * D; // one layer's MLP activations (B, L, 4D): 2 MiB

    static TransformerEncoder encoder(NDManager m) {
        TransformerEncoder e = new TransformerEncoder(LAYERS, D, HEADS, 4 * D, Activation.GELU, 1e-12, 0.02, null);
        e.allocate(m);
        return e;
    }

    static void trainStep(TransformerEncoder enc, NDManager m) {
        try (NDManager step = m.newSubManager(); NDScope scope = new NDScope();
                GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            gc.backward(enc.forward(step.randomNormal(new Shape(B, L, D)), null).square().mean());
        }
    }

    @Test
    void inferenceHoldsOnlyTheOutputWhenTheForwardReturns() {
        assumeTrue(NativeHeap.stats().inUse() >= 0, "glibc's mallinfo2 is not available");
        try (NDManager m = NDManager.newBaseManager()) {
            TransformerEncoder enc = encoder(m);
            boolean grad = JniUtils.isGradMode();
            JniUtils.setGradMode(false);
            for (int pass = 0; pass < 2; pass++) { // the first one warms up: the JIT compiler's memory is not counted
                try (NDManager step = m.newSubManager(); NDScope scope = new NDScope()) {
                    enc.forward(step.randomNormal(new Shape(B, L, D)), null);
                }
            }
            try {
                // the least of three readings: a one-off allocation of libtorch's or another thread's (one full-suite
                // run read 9.8 MB once) is not the forward's
                long held = Long.MAX_VALUE;
                for (int pass = 0; pass < 3; pass++) {
                    try (NDManager step = m.newSubManager(); NDScope scope = new NDScope()) {
                        NDArray x = step.randomNormal(new Shape(B, L, D));
                        long before = NativeHeap.stats().inUse();
                        NDArray out = enc.forward(x, null);
                        held = Math.min(held, NativeHeap.stats().inUse() - before);
                        assertEquals(new Shape(B, L, D), out.getShape());
                        assertTrue(Float.isFinite(out.sum().getFloat()));
                    }
                }
                assertTrue(held < PROBS, "held " + held + " bytes after the forward, bound " + PROBS);
            } finally {
                JniUtils.setGradMode(grad);
            }
        }
    }

    @Test
    void theBackwardPassFreesTheActivationsItUsed() {
        assumeTrue(NativeHeap.stats().inUse() >= 0, "glibc's mallinfo2 is not available");
        try (NDManager m = NDManager.newBaseManager()) {
            TransformerEncoder enc = encoder(m);
            long gradients = 4L * enc.parameterCount();
            trainStep(enc, m); // warm-up: the JIT compiler's own memory (glibc's too) is not counted below
            try (NDManager step = m.newSubManager(); NDScope scope = new NDScope()) {
                NDArray x = step.randomNormal(new Shape(B, L, D));
                long before = NativeHeap.stats().inUse();
                long afterForward;
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray loss = enc.forward(x, null).square().mean();
                    afterForward = NativeHeap.stats().inUse() - before;
                    gc.backward(loss);
                }
                long held = NativeHeap.stats().inUse() - before;
                // the forward keeps what the backward needs: at least every layer's MLP activations (fused attention
                // keeps no probabilities, only their log-sum-exp, so they are no lower bound)
                assertTrue(afterForward > LAYERS * MLP_HIDDEN, "kept " + afterForward + " bytes for the backward pass");
                // ... and the backward pass frees it: what is left is the gradients (and the loss)
                assertTrue(held < gradients + PROBS, "held " + held + " bytes after the backward pass, gradients "
                        + gradients);
                NDArray g = JniUtils.getGradient((PtNDArray) enc.namedParameters().values().iterator().next().array());
                assertNotNull(g, "a parameter has a gradient");
                g.close();
            }
        }
    }
}
