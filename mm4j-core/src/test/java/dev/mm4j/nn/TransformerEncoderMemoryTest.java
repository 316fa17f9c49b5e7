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
import java.util.ArrayList;
import java.util.List;
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

    /**
     * bf16 layers that keep their activations, recorded layer by layer, keep no weight copies of their own
     * ({@link SharedBf16Copies}): on few tokens, where the copies are most of what a layer keeps, the forward holds
     * less than one layer's copies more than the buffers, where the same layers recorded as one graph hold every
     * layer's copies; and the backward pass gives the same gradients, bit for bit.
     */
    @Test
    void bf16LayersRecordedLayerByLayerKeepNoWeightCopiesOfTheirOwn() {
        assumeTrue(NativeHeap.stats().inUse() >= 0, "glibc's mallinfo2 is not available");
        int d = 256;
        long copies = 2L * (4L * d * d + 2L * d * 4 * d); // one layer's bfloat16 weight copies: 1.5 MiB
        try (NDManager m = NDManager.newBaseManager()) {
            long[] held = new long[2];
            List<List<float[]>> grads = new ArrayList<>();
            for (int layerByLayer = 0; layerByLayer < 2; layerByLayer++) {
                ActivationCheckpointing ac = new ActivationCheckpointing(false, false); // keep every layer
                ac.layerByLayer(layerByLayer == 1);
                TransformerEncoder enc = new TransformerEncoder(LAYERS, d, HEADS, 4L * d, Activation.GELU, 1e-12, 0.02, ac);
                enc.allocate(m);
                enc.setPrecision(Precision.BF16);
                if (layerByLayer == 1) { // the same weights as the first encoder
                    var from = encoders.get(0).namedParameters();
                    enc.namedParameters().forEach((n, p) -> p.copyFrom(from.get(n).array()));
                }
                encoders.add(enc);
                held[layerByLayer] = Long.MAX_VALUE;
                for (int pass = 0; pass < 3; pass++) { // the first warms up (the buffers are made then); the least of the others
                    try (NDManager step = m.newSubManager(); NDScope scope = new NDScope();
                            GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray x = step.create(inputs(d), new Shape(1, 8, d));
                        long before = NativeHeap.stats().inUse();
                        NDArray loss = enc.forward(x, null).square().mean();
                        if (pass > 0) {
                            held[layerByLayer] = Math.min(held[layerByLayer], NativeHeap.stats().inUse() - before);
                        }
                        ac.backward(loss, params -> {});
                        if (pass == 2) { // the gradients of the three passes (accumulated alike in both)
                            List<float[]> g = new ArrayList<>();
                            for (Parameter p : enc.namedParameters().values()) {
                                NDArray gp = JniUtils.getGradient((PtNDArray) p.array());
                                g.add(gp.toFloatArray());
                                gp.close();
                            }
                            grads.add(g);
                        }
                    }
                }
            }
            // (more than five layers' copies: the allocator's reading moves by some 10 kB from run to run, and a
            // full-suite run read 9.39 MB against the six layers' 9.44 MB of copies once)
            assertTrue(held[0] > (LAYERS - 1) * copies, "one graph kept " + held[0] + " bytes, its copies alone "
                    + LAYERS * copies);
            assertTrue(held[1] < held[0] - (LAYERS - 1) * copies, "layer by layer kept " + held[1] + " bytes, one graph "
                    + held[0]);
            for (int i = 0; i < grads.get(0).size(); i++) {
                assertArrayEquals(grads.get(0).get(i), grads.get(1).get(i), "gradient " + i);
            }
        }
    }

    private final List<TransformerEncoder> encoders = new ArrayList<>();

    /** The same input on every pass: 1 sample of 8 tokens. */
    private static float[] inputs(int d) {
        float[] v = new float[8 * d];
        java.util.Random r = new java.util.Random(3);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }
}
