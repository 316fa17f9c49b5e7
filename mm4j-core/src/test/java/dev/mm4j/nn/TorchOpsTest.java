package dev.mm4j.nn;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The op library against DJL's unfused float32 math: values and gradients, in float32 and bfloat16. */
class TorchOpsTest {
    private static final long B = 2;
    private static final long L = 7;
    private static final long D = 16;
    private static final int H = 4;
    /** The key bias's index among the leaves (x, then the weights: wq, bq, wk, bk, ...). */
    private static final int KEY_BIAS = 4;

    /** Unfused attention with DJL ops: projections, q k^T / sqrt(dh) + mask, softmax, @ v, output projection. */
    private static NDArray unfusedAttention(NDArray x, NDArray mask, NDArray[] w) {
        long dh = D / H;
        long L = x.getShape().get(1);
        NDArray q = lin(x, w[0], w[1]).reshape(B, L, H, dh).transpose(0, 2, 1, 3);
        NDArray k = lin(x, w[2], w[3]).reshape(B, L, H, dh).transpose(0, 2, 1, 3);
        NDArray v = lin(x, w[4], w[5]).reshape(B, L, H, dh).transpose(0, 2, 1, 3);
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2)).div(x.getManager().full(new Shape(), (float) Math.sqrt(dh)));
        if (mask != null) {
            scores = scores.add(mask);
        }
        NDArray ctx = scores.softmax(-1).matMul(v).transpose(0, 2, 1, 3).reshape(B, L, D);
        return lin(ctx, w[6], w[7]);
    }

    private static NDArray lin(NDArray x, NDArray w, NDArray b) {
        return ai.djl.nn.core.Linear.linear(x, w, b).singletonOrThrow();
    }

    private static NDArray[] weights(NDManager m) {
        NDArray[] w = new NDArray[8];
        for (int i = 0; i < 4; i++) {
            w[2 * i] = m.randomNormal(0, 0.3f, new Shape(D, D), DataType.FLOAT32);
            w[2 * i + 1] = m.randomNormal(0, 0.1f, new Shape(D), DataType.FLOAT32);
        }
        return w;
    }

    /** Padding of the second sample's last 3 tokens, as an additive (B, 1, 1, L) mask of 0 / -inf. */
    private static NDArray mask(NDManager m, long L) {
        float[] v = new float[(int) (B * L)];
        for (int t = (int) L - 3; t < L; t++) {
            v[(int) L + t] = Float.NEGATIVE_INFINITY;
        }
        return m.create(v, new Shape(B, 1, 1, L));
    }

    private static float maxAbsDiff(NDArray a, NDArray b) {
        return a.sub(b).abs().max().getFloat();
    }

    private static float maxAbs(NDArray a) {
        return a.abs().max().getFloat();
    }

    /** Values and the gradients of x and all weights for a loss sum(out * r) on L tokens, the op library vs unfused DJL math. */
    private static void compareAttention(Precision p, long L, boolean masked, float valueTol, float gradTol) {
        try (NDManager m = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(7);
            NDArray x = m.randomNormal(new Shape(B, L, D));
            NDArray[] w = weights(m);
            NDArray mask = masked ? mask(m, L) : null;
            NDArray r = m.randomNormal(new Shape(B, L, D));
            List<NDArray> leaves = new ArrayList<>(List.of(w));
            leaves.add(0, x);
            NDArray[] gradsFused = new NDArray[leaves.size()];
            NDArray fused;
            NDArray reference;
            for (NDArray a : leaves) {
                a.setRequiresGradient(true);
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                fused = TorchOps.on(x).attention(p, x, mask, H, 0, w);
                gc.backward(fused.mul(r).sum());
            }
            List<NDArray> copies = new ArrayList<>();
            for (int i = 0; i < leaves.size(); i++) {
                gradsFused[i] = leaves.get(i).getGradient().duplicate();
                NDArray c = leaves.get(i).stopGradient().duplicate();
                c.setRequiresGradient(true);
                copies.add(c);
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                reference = unfusedAttention(copies.get(0), mask, copies.subList(1, copies.size()).toArray(new NDArray[0]));
                gc.backward(reference.mul(r).sum());
            }
            assertEquals(DataType.FLOAT32, fused.getDataType());
            assertEquals(reference.getShape(), fused.getShape());
            float scale = maxAbs(reference);
            assertTrue(maxAbsDiff(fused, reference) <= valueTol * scale,
                    p + " attention differs by " + maxAbsDiff(fused, reference) + " (max |y| " + scale + ")");
            float largest = 0;
            for (NDArray c : copies) {
                largest = Math.max(largest, maxAbs(c.getGradient()));
            }
            for (int i = 0; i < leaves.size(); i++) {
                NDArray g = copies.get(i).getGradient();
                float d = maxAbsDiff(gradsFused[i], g);
                // the key bias's true gradient is 0 (softmax ignores a shift shared by all keys): what rounding leaves
                // of it is measured against the largest gradient of the op
                float gradScale = i == KEY_BIAS ? largest : Math.max(1f, maxAbs(g));
                assertTrue(d <= gradTol * gradScale, p + " gradient " + i + " differs by " + d + " (max " + maxAbs(g) + ")");
            }
            if (masked) {
                // a masked key changes nothing: the padded tokens' values do not reach the real ones
                NDArray x2 = x.duplicate();
                x2.set(new ai.djl.ndarray.index.NDIndex("1, " + (L - 3) + ":, :"), 100f);
                NDArray again = TorchOps.on(x).attention(p, x2.stopGradient(), mask, H, 0, w);
                NDArray realRows = again.get("1, :" + (L - 3) + ", :");
                assertTrue(maxAbsDiff(realRows, fused.get("1, :" + (L - 3) + ", :")) <= valueTol * scale);
            }
        }
    }

    /** An input (3, 5, D) and an MLP's weights (D -> 4D -> D), random from {@code seed}. */
    record Mlp(NDArray x, NDArray w1, NDArray b1, NDArray w2, NDArray b2) {
        static Mlp random(NDManager m, int seed) {
            Engine.getInstance().setRandomSeed(seed);
            return new Mlp(m.randomNormal(new Shape(3, 5, D)),
                    m.randomNormal(0, 0.3f, new Shape(4 * D, D), DataType.FLOAT32),
                    m.randomNormal(0, 0.1f, new Shape(4 * D), DataType.FLOAT32),
                    m.randomNormal(0, 0.3f, new Shape(D, 4 * D), DataType.FLOAT32),
                    m.randomNormal(0, 0.1f, new Shape(D), DataType.FLOAT32));
        }
    }

    @Test
    void fp32AttentionEqualsUnfusedMath() {
        compareAttention(Precision.FP32, L, false, 1e-5f, 1e-5f);
        compareAttention(Precision.FP32, L, true, 1e-5f, 1e-5f);
    }

    /** Both of bf16's paths: explicit products on 7 tokens, the fused kernel on 800 (640,000 scores per head). */
    @Test
    void bf16AttentionIsCloseToFloat32() {
        long longer = 800;
        assertTrue(L * L <= TorchOps.BF16_EXPLICIT_ATTENTION_MAX_SCORES
                && longer * longer > TorchOps.BF16_EXPLICIT_ATTENTION_MAX_SCORES);
        // bfloat16 keeps 8 significant bits: about 0.4% per rounding, a few roundings deep
        for (long tokens : new long[] {L, longer}) {
            compareAttention(Precision.BF16, tokens, false, 3e-2f, 5e-2f);
            compareAttention(Precision.BF16, tokens, true, 3e-2f, 5e-2f);
        }
    }

    /**
     * A mask over the first K tokens only: the later tokens are no keys. Same values and gradients as the full-length
     * mask that masks them in every row, and the later tokens' values cannot reach any output.
     */
    @Test
    void maskOverAPrefixOfTheTokensEqualsMaskingTheRest() {
        for (Precision p : new Precision[] {Precision.FP32, Precision.BF16}) { // the precisions that train (int8 does not)
            try (NDManager m = NDManager.newBaseManager()) {
                Engine.getInstance().setRandomSeed(11);
                NDArray x = m.randomNormal(new Shape(B, L, D));
                NDArray[] w = weights(m);
                float[] full = new float[(int) (B * L)];
                float[] prefix = new float[(int) (B * (L - 3))];
                for (int b = 0; b < B; b++) {
                    for (int t = 0; t < L; t++) {
                        boolean masked = t >= L - 3 || (b == 1 && t == L - 4); // row 1 also pads one more token
                        full[(int) (b * L + t)] = masked ? Float.NEGATIVE_INFINITY : 0;
                        if (t < L - 3) {
                            prefix[(int) (b * (L - 3) + t)] = masked ? Float.NEGATIVE_INFINITY : 0;
                        }
                    }
                }
                NDArray fullMask = m.create(full, new Shape(B, 1, 1, L));
                NDArray prefixMask = m.create(prefix, new Shape(B, 1, 1, L - 3));
                NDArray[] grads = new NDArray[2];
                NDArray[] outs = new NDArray[2];
                NDArray[] masks = {fullMask, prefixMask};
                for (int k = 0; k < 2; k++) {
                    NDArray xi = x.duplicate();
                    xi.setRequiresGradient(true);
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        outs[k] = TorchOps.on(x).attention(p, xi, masks[k], H, 0, w);
                        gc.backward(outs[k].sum());
                    }
                    grads[k] = xi.getGradient().duplicate();
                }
                float tol = p == Precision.FP32 ? 1e-6f : 1e-2f;
                assertEquals(outs[0].getShape(), outs[1].getShape());
                assertTrue(maxAbsDiff(outs[0], outs[1]) <= tol * maxAbs(outs[0]), p + " values differ");
                assertTrue(maxAbsDiff(grads[0], grads[1]) <= tol * maxAbs(grads[0]), p + " gradients differ");
                // the tokens after the prefix are no keys: their inputs change no output row but their own
                NDArray x2 = x.duplicate();
                x2.set(new ai.djl.ndarray.index.NDIndex(":, " + (L - 3) + ":, :"), 100f);
                NDArray again = TorchOps.on(x).attention(p, x2, prefixMask, H, 0, w);
                assertEquals(0f, maxAbsDiff(again.get(":, :" + (L - 3) + ", :"), outs[1].get(":, :" + (L - 3) + ", :")),
                        p + ": a token after the mask's prefix reached another token");
            }
        }
    }

    /**
     * Queries for the first tokens only (what a classifier on token 0 needs of an encoder's last layer): the rows of
     * the full attention for those tokens, with every token still a key, and the same gradient of x.
     */
    @Test
    void queriesForTheFirstTokensOnlyGiveThoseRowsOfTheFullAttention() {
        for (Precision p : Precision.values()) {
            for (boolean masked : new boolean[] {false, true}) {
                try (NDManager m = NDManager.newBaseManager()) {
                    Engine.getInstance().setRandomSeed(5);
                    NDArray x = m.randomNormal(new Shape(B, L, D));
                    NDArray[] w = weights(m);
                    NDArray mask = masked ? mask(m, L) : null;
                    int queries = 2;
                    NDArray r = m.randomNormal(new Shape(B, queries, D));
                    NDArray[] outs = new NDArray[2];
                    NDArray[] grads = new NDArray[2];
                    for (int k = 0; k < 2; k++) {
                        int q = k == 0 ? 0 : queries;
                        NDArray xi = x.duplicate();
                        if (p == Precision.INT8) { // inference only
                            NDArray out = TorchOps.on(x).attention(p, xi, mask, H, q, w);
                            outs[k] = q == 0 ? out.get(":, :" + queries + ", :") : out;
                            continue;
                        }
                        xi.setRequiresGradient(true);
                        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                            NDArray out = TorchOps.on(x).attention(p, xi, mask, H, q, w);
                            outs[k] = q == 0 ? out.get(":, :" + queries + ", :") : out;
                            gc.backward(outs[k].mul(r).sum());
                        }
                        grads[k] = xi.getGradient().duplicate();
                    }
                    String what = p + (masked ? " masked" : "");
                    assertEquals(new Shape(B, queries, D), outs[1].getShape(), what);
                    // int8 quantizes the query projection's input apart (its own range): within int8's error, twice
                    // that with 7-bit inputs (a CPU without int8 dot products, TorchOps.Variant#reduceRange)
                    float int8Tol = TorchOps.Variant.of(Device.cpu()).reduceRange() ? 6e-2f : 3e-2f;
                    float tol = p == Precision.FP32 ? 1e-6f : p == Precision.BF16 ? 1e-2f : int8Tol;
                    float d = maxAbsDiff(outs[0], outs[1]);
                    assertTrue(d <= tol * maxAbs(outs[0]), what + " rows differ by " + d);
                    if (p != Precision.INT8) {
                        float g = maxAbsDiff(grads[0], grads[1]);
                        assertTrue(g <= tol * maxAbs(grads[0]), what + " gradients differ by " + g);
                        assertTrue(maxAbs(grads[1].get(":, " + queries + ":, :")) > 0,
                                what + ": the tokens after the queries are keys, they get a gradient");
                    }
                }
            }
        }
    }

    /**
     * Frozen weights: bf16 inference reads their bfloat16 forms, made once: on the CPU prepacked for oneDNN's linear
     * (the bias and GELU in its epilogue: within bfloat16's rounding of casting at every call, and the same numbers at
     * every call), as plain copies elsewhere (the same numbers as casting at every call); while gradients are recorded
     * the weights themselves are used (their gradients flow); thawed weights are read with the values they have now.
     */
    @Test
    void frozenWeightsGiveTheSameNumbersAndThawedOnesTheirNewValues() {
        try (NDManager m = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(9);
            NDArray x = m.randomNormal(new Shape(B, L, D));
            NDArray[] w = weights(m);
            NDArray w1 = m.randomNormal(0, 0.3f, new Shape(4 * D, D), DataType.FLOAT32);
            NDArray b1 = m.randomNormal(0, 0.1f, new Shape(4 * D), DataType.FLOAT32);
            NDArray w2 = m.randomNormal(0, 0.3f, new Shape(D, 4 * D), DataType.FLOAT32);
            NDArray b2 = m.randomNormal(0, 0.1f, new Shape(D), DataType.FLOAT32);
            TorchOps ops = TorchOps.on(x);
            TorchOps.Variant packedVariant = TorchOps.Variant.of(Device.cpu());
            assertTrue(packedVariant.packedBf16(), "the CPU asks for frozen bf16 weights prepacked");
            // ... which libtorch's oneDNN makes only on a CPU it runs bfloat16 on (AVX-512, AVX-NE-CONVERT); elsewhere
            // (an AVX2-only CPU) the library holds plain copies: the cast's numbers
            boolean packs = TorchOps.fastBf16(Device.cpu());
            assertTrue(packs || !dev.mm4j.util.Hardware.cpuHasBf16(), "a CPU with avx512_bf16 or AMX packs bf16 weights");
            TorchOps plain = TorchOps.load(Device.cpu(), new TorchOps.Variant(true, packedVariant.reduceRange(), true,
                    packedVariant.int8Bf16Attention(), false));
            NDArray att = ops.attention(Precision.BF16, x, mask(m, L), H, 0, w);
            NDArray mlp = ops.mlpGelu(Precision.BF16, x, w1, b1, w2, b2);
            NDArray lin = ops.linear(Precision.BF16, x, w1, b1);
            assertEquals(0f, maxAbsDiff(plain.attention(Precision.BF16, x, mask(m, L), H, 0, w), att), "same source");
            List<NDArray> all = new ArrayList<>(List.of(w));
            all.addAll(List.of(w1, b1, w2, b2));
            TorchOps.freeze(all);
            plain.freezeHere(all);
            NDArray[] first = null;
            for (int i = 0; i < 2; i++) { // the forms made, then reused
                assertEquals(0f, maxAbsDiff(plain.attention(Precision.BF16, x, mask(m, L), H, 0, w), att), "attention");
                assertEquals(0f, maxAbsDiff(plain.mlpGelu(Precision.BF16, x, w1, b1, w2, b2), mlp), "mlp");
                assertEquals(0f, maxAbsDiff(plain.linear(Precision.BF16, x, w1, b1), lin), "linear");
                NDArray[] packed = {ops.attention(Precision.BF16, x, mask(m, L), H, 0, w),
                    ops.mlpGelu(Precision.BF16, x, w1, b1, w2, b2), ops.linear(Precision.BF16, x, w1, b1)};
                NDArray[] cast = {att, mlp, lin};
                for (int k = 0; k < 3; k++) {
                    float d = maxAbsDiff(packed[k], cast[k]);
                    if (!packs) {
                        assertEquals(0f, d, "no bfloat16 in oneDNN here: op " + k + " on plain copies");
                        continue;
                    }
                    assertTrue(d <= 1e-2f * maxAbs(cast[k]), "packed op " + k + " differs by " + d);
                    // the GELU in the product's epilogue (before the bfloat16 rounding): the packed form is what ran
                    assertTrue(k != 1 || d > 0, "the packed mlp gave the cast mlp's numbers");
                    if (first != null) {
                        assertEquals(0f, maxAbsDiff(packed[k], first[k]), "packed op " + k + ", again");
                    }
                }
                first = packed;
            }
            assertEquals(new Shape(0, 4 * D), ops.linear(Precision.BF16, m.zeros(new Shape(0, D)), w1, b1).getShape(),
                    "packed: no rows in, no rows out");
            assertEquals(new Shape(2, 0, D), ops.mlpGelu(Precision.BF16, m.zeros(new Shape(2, 0, D)), w1, b1, w2, b2)
                    .getShape(), "packed: no rows in, no rows out");
            NDArray none = m.zeros(new Shape(0, L, D));
            assertEquals(none.getShape(), ops.attention(Precision.BF16, none, null, H, 0, w).getShape(),
                    "packed: no rows in, none out");
            w1.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                gc.backward(ops.linear(Precision.BF16, x, w1, b1).sum());
            }
            assertTrue(maxAbs(w1.getGradient()) > 0, "recording gradients, the weight itself is read");
            TorchOps.thaw(List.of(w1));
            w1.addi(1f);
            NDArray changed = ops.linear(Precision.BF16, x, w1, b1);
            assertTrue(maxAbsDiff(changed, lin) > 1f, "a thawed weight is read with its new value");
            NDArray expected = ops.linear(Precision.FP32, x, w1, b1);
            assertTrue(maxAbsDiff(changed, expected) <= 2e-2f * maxAbs(expected));
        }
    }

    @Test
    void linearAndMlpMatchDjlInFloat32AndAreCloseInBf16() {
        try (NDManager m = NDManager.newBaseManager()) {
            Mlp t = Mlp.random(m, 3);
            NDArray x = t.x(), w1 = t.w1(), b1 = t.b1(), w2 = t.w2(), b2 = t.b2();
            NDArray lin = lin(x, w1, b1);
            NDArray mlp = lin(ai.djl.nn.Activation.gelu(lin), w2, b2);
            TorchOps ops = TorchOps.on(x);
            assertEquals(0f, maxAbsDiff(ops.linear(Precision.FP32, x, w1, b1), lin), 1e-6f);
            assertEquals(0f, maxAbsDiff(ops.mlpGelu(Precision.FP32, x, w1, b1, w2, b2), mlp), 1e-5f);
            NDArray linBf16 = ops.linear(Precision.BF16, x, w1, b1);
            NDArray mlpBf16 = ops.mlpGelu(Precision.BF16, x, w1, b1, w2, b2);
            assertEquals(DataType.FLOAT32, linBf16.getDataType());
            float dl = maxAbsDiff(linBf16, lin);
            float dm = maxAbsDiff(mlpBf16, mlp);
            assertTrue(dl <= 2e-2f * maxAbs(lin) && dl > 0, "bf16 linear differs by " + dl);
            assertTrue(dm <= 3e-2f * maxAbs(mlp) && dm > 0, "bf16 mlp differs by " + dm);
            NDArray a = x.reshape(15, D);
            NDArray bs = m.randomNormal(0, 0.3f, new Shape(3, D, 4 * D), DataType.FLOAT32);
            NDArray product = a.matMul(bs.get(0)).add(a.matMul(bs.get(1))).add(a.matMul(bs.get(2)));
            assertEquals(0f, maxAbsDiff(ops.matmulSum(Precision.FP32, a, bs), product), 1e-5f);
            float dp = maxAbsDiff(ops.matmulSum(Precision.BF16, a, bs), product);
            assertTrue(dp <= 2e-2f * maxAbs(product) && dp > 0, "bf16 matmul differs by " + dp);
        }
    }

    /**
     * int8 (oneDNN, dynamic quantization) linear, MLP and attention are close to float32, the weight is quantized once
     * (a second call gives the same bytes), and int8 refuses to record autograd: it is for inference only.
     */
    @Test
    void int8IsCloseToFloat32AndInferenceOnly() {
        try (NDManager m = NDManager.newBaseManager()) {
            Mlp t = Mlp.random(m, 5);
            NDArray x = t.x(), w1 = t.w1(), b1 = t.b1(), w2 = t.w2(), b2 = t.b2();
            TorchOps ops = TorchOps.on(x);
            NDArray lin = ops.linear(Precision.FP32, x, w1, b1);
            NDArray mlp = ops.mlpGelu(Precision.FP32, x, w1, b1, w2, b2);
            NDArray lin8 = ops.linear(Precision.INT8, x, w1, b1);
            assertEquals(DataType.FLOAT32, lin8.getDataType());
            assertEquals(lin.getShape(), lin8.getShape());
            float dl = maxAbsDiff(lin8, lin);
            float dm = maxAbsDiff(ops.mlpGelu(Precision.INT8, x, w1, b1, w2, b2), mlp);
            System.out.printf("int8 against float32, max |diff| / max |float32|: linear %.3g, mlp %.3g%n",
                    dl / maxAbs(lin), dm / maxAbs(mlp));
            assertTrue(dl <= 3e-2f * maxAbs(lin) && dl > 0, "int8 linear differs by " + dl);
            assertTrue(dm <= 5e-2f * maxAbs(mlp) && dm > 0, "int8 mlp differs by " + dm);
            assertEquals(0f, maxAbsDiff(ops.linear(Precision.INT8, x, w1, b1), lin8), "quantized once, same result");
            assertEquals(new Shape(0, 4 * D), ops.linear(Precision.INT8, m.zeros(new Shape(0, D)), w1, b1).getShape(),
                    "no rows in, no rows out");
            assertEquals(new Shape(2, 0, D), ops.mlpGelu(Precision.INT8, m.zeros(new Shape(2, 0, D)), w1, b1, w2, b2)
                    .getShape(), "no rows in, no rows out");
            NDArray[] w = new NDArray[8];
            for (int i = 0; i < 8; i++) {
                w[i] = m.randomNormal(0, i % 2 == 0 ? 0.2f : 0.05f, i % 2 == 0 ? new Shape(D, D) : new Shape(D), DataType.FLOAT32);
            }
            NDArray att = ops.attention(Precision.FP32, x, null, 4, 0, w);
            float da = maxAbsDiff(ops.attention(Precision.INT8, x, null, 4, 0, w), att);
            System.out.printf("int8 attention: max |diff| / max |float32| %.3g%n", da / maxAbs(att));
            assertTrue(da <= 5e-2f * maxAbs(att) && da > 0, "int8 attention differs by " + da);
            float[] prefix = new float[3 * 4];
            prefix[11] = Float.NEGATIVE_INFINITY; // keys: the first 4 tokens, the last sample's 4th masked too
            NDArray mask = m.create(prefix, new Shape(3, 1, 1, 4));
            NDArray masked = ops.attention(Precision.FP32, x, mask, 4, 0, w);
            float dmask = maxAbsDiff(ops.attention(Precision.INT8, x, mask, 4, 0, w), masked);
            assertTrue(dmask <= 5e-2f * maxAbs(masked) && dmask > 0, "int8 masked attention differs by " + dmask);
            try (ai.djl.training.GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> ops.linear(Precision.INT8, x, w1, b1));
                assertTrue(e.getMessage().contains("inference only"), e.getMessage());
            }
        }
    }

    /**
     * On a CPU without int8 dot products (no VNNI or AMX) the inputs take 7 bits: that library's int8 linear and MLP
     * run, are close to float32 (within twice the 8-bit bound: half the levels) and differ from the 8-bit ones.
     */
    @Test
    void int8WithSevenBitInputsIsCloseToFloat32() {
        try (NDManager m = NDManager.newBaseManager()) {
            Mlp t = Mlp.random(m, 6);
            NDArray x = t.x(), w1 = t.w1(), b1 = t.b1(), w2 = t.w2(), b2 = t.b2();
            TorchOps eight = TorchOps.load(Device.cpu(), new TorchOps.Variant(true, false, true, false, true));
            TorchOps seven = TorchOps.load(Device.cpu(), new TorchOps.Variant(true, true, true, false, true));
            NDArray mlp = eight.mlpGelu(Precision.FP32, x, w1, b1, w2, b2);
            NDArray mlp8 = eight.mlpGelu(Precision.INT8, x, w1, b1, w2, b2);
            NDArray mlp7 = seven.mlpGelu(Precision.INT8, x, w1, b1, w2, b2);
            float d8 = maxAbsDiff(mlp8, mlp);
            float d7 = maxAbsDiff(mlp7, mlp);
            System.out.printf("int8 mlp against float32, max |diff| / max |float32|: 8-bit inputs %.3g, 7-bit %.3g%n",
                    d8 / maxAbs(mlp), d7 / maxAbs(mlp));
            assertTrue(d7 <= 2 * 5e-2f * maxAbs(mlp) && d7 > 0, "7-bit int8 mlp differs by " + d7);
            assertTrue(maxAbsDiff(mlp7, mlp8) > 0, "7-bit and 8-bit inputs gave the same numbers");
        }
    }

    /**
     * int8's attention in bfloat16 (a CPU with bfloat16 instructions: q, k and v out of their int8 products in
     * bfloat16, explicit products) is close to float32 and differs from float32 attention's numbers on short inputs;
     * inputs too long for explicit products keep float32's fused kernel: the same numbers either way.
     */
    @Test
    void int8AttentionInBf16OnShortInputsOnly() {
        // 7-bit inputs where the CPU has no int8 dot products (8-bit ones could saturate there)
        boolean reduceRange = TorchOps.Variant.of(Device.cpu()).reduceRange();
        TorchOps.Variant fp32Attention = new TorchOps.Variant(true, reduceRange, true, false, true);
        TorchOps.Variant bf16Attention = new TorchOps.Variant(true, reduceRange, true, true, true);
        assertFalse(TorchOps.source(fp32Attention).contains("qd = " + TorchOps.BFLOAT16));
        assertTrue(TorchOps.source(bf16Attention).contains("qd = " + TorchOps.BFLOAT16 + " if n * kn <= "));
        try (NDManager m = NDManager.newBaseManager()) {
            TorchOps f = TorchOps.load(Device.cpu(), fp32Attention);
            TorchOps b = TorchOps.load(Device.cpu(), bf16Attention);
            NDArray[] w = new NDArray[8];
            for (int i = 0; i < 8; i++) {
                w[i] = m.randomNormal(0, i % 2 == 0 ? 0.2f : 0.05f, i % 2 == 0 ? new Shape(D, D) : new Shape(D), DataType.FLOAT32);
            }
            int longest = (int) Math.sqrt(TorchOps.BF16_EXPLICIT_ATTENTION_MAX_SCORES);
            for (int tokens : new int[] {7, longest, longest + 1}) {
                NDArray x = m.randomNormal(0, 1, new Shape(2, tokens, D), DataType.FLOAT32);
                float[] keys = new float[2 * tokens];
                keys[2 * tokens - 1] = Float.NEGATIVE_INFINITY; // the second sample's last token is not a key
                NDArray mask = m.create(keys, new Shape(2, 1, 1, tokens));
                NDArray want = f.attention(Precision.FP32, x, mask, 4, 0, w);
                NDArray fp32 = f.attention(Precision.INT8, x, mask, 4, 0, w);
                NDArray bf16 = b.attention(Precision.INT8, x, mask, 4, 0, w);
                float d = maxAbsDiff(bf16, want);
                System.out.printf("int8 attention, %d tokens, against float32: float32 core %.3g, bf16 core %.3g%n", tokens,
                        maxAbsDiff(fp32, want) / maxAbs(want), d / maxAbs(want));
                assertTrue(d <= 5e-2f * maxAbs(want), tokens + " tokens: int8 attention with a bf16 core differs by " + d);
                if (tokens <= longest) {
                    assertTrue(maxAbsDiff(bf16, fp32) > 0, tokens + " tokens: the bf16 core gave float32's numbers");
                } else {
                    assertEquals(0f, maxAbsDiff(bf16, fp32), tokens + " tokens: float32's fused kernel either way");
                }
            }
            NDArray none = m.zeros(new Shape(0, 7, D));
            assertEquals(none.getShape(), b.attention(Precision.INT8, none, null, 4, 0, w).getShape(), "no rows in, none out");
            assertEquals(none.getShape(), f.attention(Precision.INT8, none, null, 4, 0, w).getShape(), "no rows in, none out");
        }
    }

    /**
     * A libtorch without oneDNN's int8 operators gets the library without its int8 methods (the source names no
     * onednn operator): fp32 runs, int8 is refused in one line.
     */
    @Test
    void withoutInt8OperatorsTheLibraryLoadsAndRefusesInt8() {
        TorchOps.Variant noInt8 = new TorchOps.Variant(true, false, true, true, true).withoutInt8();
        assertFalse(TorchOps.source(noInt8).contains("onednn"));
        assertFalse(TorchOps.source(noInt8).contains("_int8("));
        assertTrue(TorchOps.source(noInt8).contains("mkldnn._linear_pointwise"), "bf16 keeps its prepacked weights");
        TorchOps.Variant noOneDnn = noInt8.withoutOneDnn();
        assertFalse(TorchOps.source(noOneDnn).contains("mkldnn"), "nor oneDNN's linear");
        try (NDManager m = NDManager.newBaseManager()) {
            Mlp t = Mlp.random(m, 7);
            TorchOps without = TorchOps.loadExactly(Device.cpu(), noInt8);
            assertEquals(0f, maxAbsDiff(without.linear(Precision.FP32, t.x(), t.w1(), t.b1()), lin(t.x(), t.w1(), t.b1())),
                    1e-5f);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> without.linear(Precision.INT8, t.x(), t.w1(), t.b1()));
            assertTrue(e.getMessage().contains("does not have: use bf16 or fp32"), e.getMessage());
        }
    }

    @Test
    void archiveHoldsTheSourceStoredUnderOneFolder() throws Exception {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        TorchOps.writeArchive(bytes, TorchOps.Variant.of(Device.cpu()));
        List<String> names = new ArrayList<>();
        try (java.util.zip.ZipInputStream zip = new java.util.zip.ZipInputStream(
                new java.io.ByteArrayInputStream(bytes.toByteArray()))) {
            for (java.util.zip.ZipEntry e; (e = zip.getNextEntry()) != null; ) {
                names.add(e.getName());
                assertEquals(java.util.zip.ZipEntry.STORED, e.getMethod(), e.getName());
            }
        }
        assertEquals(List.of("mm4j_ops/version", "mm4j_ops/constants.pkl", "mm4j_ops/data.pkl",
                "mm4j_ops/code/__torch__.py"), names);
        assertTrue(TorchOps.source(true).contains("def attention_masked_bf16("));
        // explicit bf16 attention on short sequences on the CPU only; a GPU's source keeps the fused kernel
        assertTrue(TorchOps.source(true).contains("torch.softmax("));
        assertFalse(TorchOps.source(false).contains("torch.softmax("));
        assertTrue(TorchOps.source(false).contains("def attention_masked_bf16("));
        // libtorch compiles the GPU's source too (CI has no GPU: compiled here on the CPU)
        java.nio.file.Path file = java.nio.file.Files.createTempFile("mm4j-ops-gpu", ".pt");
        try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager()) {
            try (java.io.OutputStream out = java.nio.file.Files.newOutputStream(file)) {
                TorchOps.writeArchive(out, new TorchOps.Variant(false, false, true, false, false));
            }
            ai.djl.pytorch.engine.PtSymbolBlock block = ai.djl.pytorch.jni.JniUtils.loadModule(
                    (ai.djl.pytorch.engine.PtNDManager) m, file, true, new String[0], new String[0], false);
            assertNotNull(block);
            block.close();
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }
}
