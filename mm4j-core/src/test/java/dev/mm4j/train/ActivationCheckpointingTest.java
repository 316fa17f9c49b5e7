package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.mm4j.data.Batch;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.flava.RequiredEmbedding;
import dev.mm4j.nn.ActivationCheckpointing;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Precision;
import dev.mm4j.util.NativeHeap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Activation checkpointing changes memory and time, never numbers: the same weights give the same loss and
 * the same gradient for every parameter (within 1e-6 of each tensor's largest magnitude) with and without
 * it, with the text padding attended (the reference) or masked, and over optimizer steps with accumulation.
 */
class ActivationCheckpointingTest {
    static final double REL = 1e-6;

    /** Two models with the same weights: without and with checkpointing. */
    static FlavaForClassification[] pair(NDManager m, boolean maskPadding) throws Exception {
        return pair(m, maskPadding, Precision.FP32);
    }

    static FlavaForClassification[] pair(NDManager m, boolean maskPadding, Precision precision) throws Exception {
        FlavaConfig c = TrainingStepTest.small();
        c.maskTextPaddingInMultimodal = maskPadding;
        c.precision = precision;
        FlavaForClassification plain = FlavaForClassification.create(c, m);
        FlavaConfig cc = c.copy();
        cc.activationCheckpointing = true;
        assertTrue(cc.activationCheckpointing && !c.activationCheckpointing);
        FlavaForClassification checkpointed = FlavaForClassification.create(cc, m);
        Map<String, Parameter> to = checkpointed.namedParameters();
        plain.namedParameters().forEach((n, p) -> to.get(n).copyFrom(p.array()));
        return new FlavaForClassification[] {plain, checkpointed};
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void lossAndEveryGradientEqualThoseWithoutCheckpointing(boolean maskPadding) throws Exception {
        lossAndEveryGradientEqual(maskPadding, Precision.FP32);
    }

    /**
     * Recomputation in bf16 runs the same bfloat16 products: the same numbers as without checkpointing. On 8
     * samples, where bf16 keeps every layer's activations without being asked to checkpoint (on one sample its weight
     * copies outweigh what it saves, and it checkpoints those layers by itself).
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void inBf16TooLossAndEveryGradientEqualThoseWithoutCheckpointing(boolean maskPadding) throws Exception {
        // image: 16 patches + CLS; text: 12; multimodal: 1 + 17 + 12 tokens; width 64, 4 heads, MLP 128
        for (long[] tokensKeys : new long[][] {{17, 17}, {12, 12}, {30, 30}}) {
            assertFalse(ActivationCheckpointing.bf16KeepsMore(8, tokensKeys[0], tokensKeys[1], 64, 4, 128));
            assertTrue(ActivationCheckpointing.bf16KeepsMore(1, tokensKeys[0], tokensKeys[1], 64, 4, 128));
        }
        lossAndEveryGradientEqual(maskPadding, Precision.BF16, 8);
    }

    /**
     * {@code bf16_keep_activations}: on 1 sample, where bf16 recomputes every layer by itself (the backward pass hands
     * each recomputed layer's parameters over as it finishes them), the setting keeps every layer's activations instead
     * (none is recomputed, none handed over): the same loss and gradients.
     */
    @Test
    void bf16KeepActivationsRecomputesNoLayerAndGivesTheSameGradients() throws Exception {
        FinetuneSettings settings = new FinetuneSettings();
        settings.bf16KeepActivations = true;
        FlavaConfig keepConfig = settings.flavaConfig(TrainingStepTest.small().numClasses, TrainingStepTest.small());
        assertTrue(keepConfig.bf16KeepActivations, "the setting reaches the model's config");
        assertTrue(keepConfig.copy().bf16KeepActivations, "and survives a copy");
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaConfig c = TrainingStepTest.small();
            c.precision = Precision.BF16;
            FlavaConfig kc = c.copy();
            kc.bf16KeepActivations = true;
            FlavaForClassification[] models = {FlavaForClassification.create(c, m), FlavaForClassification.create(kc, m)};
            Map<String, Parameter> to = models[1].namedParameters();
            models[0].namedParameters().forEach((n, p) -> to.get(n).copyFrom(p.array()));
            int[] handedOver = lossAndEveryGradientEqual(m, models, TrainingStepTest.batch(new Random(5), 1, 12));
            assertTrue(handedOver[0] > 0, "by default bf16 recomputes layers on 1 sample");
            assertEquals(0, handedOver[1], "with bf16_keep_activations no layer is recomputed");
        }
    }

    /**
     * With {@code layerByLayer} the layers that keep their activations are handed over too, each as its backward pass
     * ends, with the gradients of one whole backward pass: fp32 (no layer recomputed), bf16 (some recomputed by the
     * memory rule on 1 sample) and bf16 keeping every layer's activations.
     */
    @ParameterizedTest(name = "{0}, bf16_keep_activations {1}")
    @CsvSource({"FP32, false", "BF16, false", "BF16, true"})
    void layerByLayerHandsOverEveryLayerWithTheSameGradients(Precision precision, boolean keep) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaConfig c = TrainingStepTest.small();
            c.precision = precision;
            c.bf16KeepActivations = keep;
            FlavaForClassification[] models = {FlavaForClassification.create(c, m), FlavaForClassification.create(c, m)};
            Map<String, Parameter> to = models[1].namedParameters();
            models[0].namedParameters().forEach((n, p) -> to.get(n).copyFrom(p.array()));
            models[1].layerByLayer(true);
            int[] handedOver = lossAndEveryGradientEqual(m, models, TrainingStepTest.batch(new Random(5), 1, 12));
            long layerParams = to.keySet().stream().filter(n -> n.contains(".layer.")).count();
            assertEquals(layerParams, handedOver[1], "every encoder layer's parameters handed over");
            if (precision == Precision.FP32 || keep) {
                assertEquals(0, handedOver[0], "without layerByLayer only recomputed layers are handed over");
            }
        }
    }

    private void lossAndEveryGradientEqual(boolean maskPadding, Precision precision) throws Exception {
        lossAndEveryGradientEqual(maskPadding, precision, 3);
    }

    private void lossAndEveryGradientEqual(boolean maskPadding, Precision precision, int samples) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification[] models = pair(m, maskPadding, precision);
            assertEquals(precision, models[1].precision());
            lossAndEveryGradientEqual(m, models, TrainingStepTest.batch(new Random(3), samples, 12));
        }
    }

    /**
     * One forward and backward pass of each of two models with the same weights on {@code batch}: the same loss and
     * gradients. Returns how many parameters each model's backward pass handed over as recomputed layers finished.
     */
    private static int[] lossAndEveryGradientEqual(NDManager m, FlavaForClassification[] models, Batch batch) {
        double[] loss = new double[2];
        int[] handedOver = new int[2];
        for (int k = 0; k < 2; k++) {
            int model = k;
            models[k].setTraining(false);
            try (ModelStep step = ModelStep.open(m)) {
                ModelStep.Inputs in = step.inputs(batch);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray l = models[k].forward(in.image(), in.text(), in.labels()).loss();
                    loss[k] = l.getFloat();
                    models[k].backward(gc, l, params -> handedOver[model] += params.size());
                }
            }
        }
        assertEquals(loss[0], loss[1], REL * Math.abs(loss[0]), "loss");
        Map<String, Parameter> b = models[1].namedParameters();
        int compared = 0;
        for (var e : models[0].namedParameters().entrySet()) {
            NDArray ga = JniUtils.getGradient((PtNDArray) e.getValue().array());
            NDArray gb = JniUtils.getGradient((PtNDArray) b.get(e.getKey()).array());
            assertEquals(ga == null, gb == null, e.getKey() + ": gradient present in one model only");
            if (ga != null) {
                assertRelClose(e.getKey(), ga.toFloatArray(), gb.toFloatArray());
                compared++;
            }
        }
        // every encoder layer, embeddings, projections and head have a gradient; poolers etc. do not
        assertTrue(compared > 100, "compared " + compared + " gradients");
        return handedOver;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void threeAccumulatedAdamWStepsGiveTheSameWeights(boolean maskPadding) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification[] models = pair(m, maskPadding);
            double[][] losses = new double[2][3];
            for (int k = 0; k < 2; k++) {
                Random r = new Random(11);
                try (AdamW opt = new AdamW(models[k].namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                    TrainingStep<Batch> step = new TrainingStep<>(models[k], opt, m);
                    for (int s = 0; s < 3; s++) {
                        List<Batch> micro = List.of(TrainingStepTest.batch(r, 2, 10), TrainingStepTest.batch(r, 2, 10));
                        losses[k][s] = step.run(micro, 1e-3, 1.0, false, false).loss();
                    }
                }
            }
            for (int s = 0; s < 3; s++) {
                assertEquals(losses[0][s], losses[1][s], REL * Math.abs(losses[0][s]), "loss of step " + s);
            }
            Map<String, Parameter> b = models[1].namedParameters();
            models[0].namedParameters().forEach((n, p) ->
                    assertRelClose(n, p.array().toFloatArray(), b.get(n).array().toFloatArray()));
        }
    }

    /**
     * Updating each recomputed layer as soon as its gradients are complete (what TrainingStep does without clipping)
     * gives exactly the weights, moments, losses and gradient norms of one update after the whole backward pass (the
     * clipping path with a bound no norm reaches: scale 1), over steps with one and with two micro-batches.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void updatingLayersDuringTheBackwardPassGivesExactlyTheSameSteps(int microBatches) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification[] models = {pair(m, true)[1], pair(m, true)[1]};
            Map<String, Parameter> to = models[1].namedParameters();
            models[0].namedParameters().forEach((n, p) -> to.get(n).copyFrom(p.array()));
            double[][] losses = new double[2][3];
            double[][] norms = new double[2][3];
            float[][][] moments = new float[2][][];
            for (int k = 0; k < 2; k++) {
                Random r = new Random(17);
                try (AdamW opt = new AdamW(models[k].namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                    TrainingStep<Batch> step = new TrainingStep<>(models[k], opt, m);
                    for (int s = 0; s < 3; s++) {
                        List<Batch> micro = new ArrayList<>();
                        for (int i = 0; i < microBatches; i++) {
                            micro.add(TrainingStepTest.batch(r, 2, 10));
                        }
                        TrainingStep.Result result = step.run(micro, 1e-3, k == 0 ? 0 : 1e30, true, false);
                        assertTrue(result.applied());
                        losses[k][s] = result.loss();
                        norms[k][s] = result.gradNorm();
                    }
                    moments[k] = opt.state().values().stream().map(NDArray::toFloatArray).toArray(float[][]::new);
                }
            }
            assertArrayEquals(losses[1], losses[0], "losses");
            assertArrayEquals(norms[1], norms[0], "gradient norms");
            assertTrue(norms[0][0] > 0, "norm " + norms[0][0]);
            for (int i = 0; i < moments[0].length; i++) {
                assertArrayEquals(moments[1][i], moments[0][i], "moment " + i);
            }
            Map<String, Parameter> b = models[1].namedParameters();
            models[0].namedParameters().forEach((n, p) ->
                    assertArrayEquals(b.get(n).array().toFloatArray(), p.array().toFloatArray(), n));
        }
    }

    /**
     * During the backward pass each recomputed layer's parameters (or, with layerByLayer, each layer's that kept its
     * activations) come to the caller with their complete gradients,
     * which an update then releases: when the backward pass ends only other parameters hold gradients, and the
     * allocator holds less than after a backward pass whose updates wait for its end, by about those gradients' bytes.
     */
    @ParameterizedTest(name = "kept layers recorded layer by layer instead of recomputed: {0}")
    @ValueSource(booleans = {false, true})
    void layersUpdatedDuringTheBackwardPassHoldNoGradientWhenItEnds(boolean layerByLayer) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification model = pair(m, true)[layerByLayer ? 0 : 1];
            model.layerByLayer(layerByLayer);
            Map<String, Parameter> all = model.namedParameters();
            Batch batch = TrainingStepTest.batch(new Random(6), 2, 10);
            try (AdamW opt = new AdamW(all, AdamW.Settings.torchDefaults(), m)) {
                int rounds = 15; // each way, alternating; the first round of each warms up (op library, lasting state)
                long[][] grown = new long[2][rounds - 1];
                Set<Parameter> early = Collections.newSetFromMap(new IdentityHashMap<>());
                for (int k = 0; k < 2 * rounds; k++) {
                    boolean during = k % 2 == 1;
                    try (ModelStep step = ModelStep.open(m)) {
                        ModelStep.Inputs in = step.inputs(batch);
                        AdamW.Update update = opt.begin(1e-3, 1.0, false);
                        long before = NativeHeap.stats().inUse();
                        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                            NDArray loss = model.forward(in.image(), in.text(), in.labels()).loss();
                            model.backward(gc, loss, params -> {
                                if (during) {
                                    for (Parameter p : params) {
                                        assertTrue(hasGradient(p), "no gradient yet");
                                        early.add(p);
                                    }
                                    update.apply(params);
                                }
                            });
                        }
                        if (k >= 2) {
                            grown[k % 2][k / 2 - 1] = NativeHeap.stats().inUse() - before;
                        }
                        if (during) {
                            int others = 0;
                            for (Parameter p : all.values()) {
                                boolean has = hasGradient(p);
                                assertFalse(has && early.contains(p), "an updated layer's gradient is still held");
                                others += has ? 1 : 0;
                            }
                            assertTrue(others > 10, others + " other parameters hold gradients (embeddings, head, ...)");
                        }
                        update.applyRest();
                        opt.zeroGrad();
                    }
                }
                // 3 encoders x 2 layers, each 4 x (64 x 64 + 64) + 2 x 64 x 128 + 128 + 64 + 4 x 64 parameters
                long perLayer = 4 * (64 * 64 + 64) + 2 * 64 * 128 + 128 + 64 + 4 * 64;
                assertEquals(6 * perLayer, early.stream().mapToLong(Parameter::size).sum());
                Arrays.sort(grown[0]);
                Arrays.sort(grown[1]);
                long saved = grown[0][rounds / 2] - grown[1][rounds / 2]; // medians
                System.out.printf("live bytes added by forward + backward: updates after it %s, during it %s%n",
                        Arrays.toString(grown[0]), Arrays.toString(grown[1]));
                assertTrue(saved > 0.8 * 6 * perLayer * 4, "saved " + saved + " bytes, gradients " + 6 * perLayer * 4);
            }
        }
    }

    /**
     * What the benchmark's memory probe does between training steps: recorded forwards that are never
     * back-propagated (the whole model, one encoder alone) and an inference forward, each in its own step.
     * The next steps must neither read what those forwards recorded (their arrays are freed with their
     * step) nor differ from the plain model's.
     */
    @Test
    void forwardsWithoutABackwardPassDoNotDisturbTheNextSteps() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification[] models = pair(m, true);
            for (int k = 0; k < 2; k++) {
                FlavaForClassification model = models[k];
                Random r = new Random(5);
                try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                    TrainingStep<Batch> step = new TrainingStep<>(model, opt, m);
                    for (int s = 0; s < 2; s++) {
                        Batch batch = TrainingStepTest.batch(r, 2, 10);
                        try (ModelStep probe = ModelStep.open(m)) {
                            ModelStep.Inputs in = probe.inputs(batch);
                            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                                model.forward(in.image(), in.text(), in.labels()).loss().getFloat();
                            }
                        }
                        try (ModelStep probe = ModelStep.open(m)) {
                            ModelStep.Inputs in = probe.inputs(batch);
                            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                                model.flava().forward(in.image(), null, RequiredEmbedding.IMAGE);
                            }
                        }
                        try (ModelStep probe = ModelStep.open(m)) {
                            ModelStep.Inputs in = probe.unlabelled(batch);
                            model.forward(in.image(), in.text(), null).logits().toFloatArray();
                        }
                        step.run(List.of(batch), 1e-3, 1.0, false, false);
                    }
                }
            }
            Map<String, Parameter> b = models[1].namedParameters();
            models[0].namedParameters().forEach((n, p) ->
                    assertRelClose(n, p.array().toFloatArray(), b.get(n).array().toFloatArray()));
        }
    }

    /**
     * bf16 never keeps more for the backward pass than float32: on 1 sample its weight copies would outweigh what
     * its activations save, so it recomputes those layers (and its gradients are still float32's within bf16's
     * rounding, MixedPrecisionTest); on 8 it keeps its activations, at about half of float32's bytes. (On 2 the
     * multimodal layer, 2 x 30 tokens, is within {@code BF16_MARGIN} of the break-even and keeps them.)
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 8})
    void bf16KeepsNoMoreForTheBackwardPassThanFloat32(int samples) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification fp32 = pair(m, true, Precision.FP32)[0];
            FlavaForClassification bf16 = pair(m, true, Precision.BF16)[0];
            Map<String, Parameter> to = bf16.namedParameters();
            fp32.namedParameters().forEach((n, p) -> to.get(n).copyFrom(p.array()));
            Batch batch = TrainingStepTest.batch(new Random(4), samples, 12);
            int rounds = 15; // alternating; the first round loads the op library; the median of the others counts (the
            // allocator's live bytes are the whole process's: a thread freeing memory meanwhile moves one reading)
            long[][] kept = new long[2][rounds - 1];
            FlavaForClassification[] models = {fp32, bf16};
            for (int k = 0; k < 2 * rounds; k++) {
                try (ModelStep step = ModelStep.open(m)) {
                    ModelStep.Inputs in = step.inputs(batch);
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        long before = NativeHeap.stats().inUse();
                        models[k % 2].forward(in.image(), in.text(), in.labels()).loss().getFloat();
                        if (k >= 2) {
                            kept[k % 2][k / 2 - 1] = NativeHeap.stats().inUse() - before;
                        }
                    }
                }
            }
            System.out.printf("kept for the backward pass on %d samples: float32 %s bytes, bf16 %s bytes%n",
                    samples, Arrays.toString(kept[0]), Arrays.toString(kept[1]));
            Arrays.sort(kept[0]);
            Arrays.sort(kept[1]);
            long fp32Kept = kept[0][(rounds - 1) / 2];
            long bf16Kept = kept[1][(rounds - 1) / 2];
            assertTrue(bf16Kept < fp32Kept, "bf16 keeps " + bf16Kept + " bytes, float32 " + fp32Kept + " (medians)");
        }
    }

    /**
     * Which bf16 layers recompute by themselves (in a backward pass of the whole graph at once): full-size FLAVA
     * (width 768, 12 heads, MLP 3072) in the tutorial's batch of 2 recomputes its image encoder (197 tokens) and its
     * multimodal encoder (710 tokens, whose explicit attention keeps 2 bytes per score where float32's fused kernel
     * keeps none) and keeps the text encoder's activations (512 tokens over 24 keys); at 3 images it still recomputes
     * the image encoder, from 4
     * (pretraining's masked and unmasked image at batch 2: copies within {@code BF16_MARGIN} of what bfloat16 saves)
     * it keeps it. The demo's model (width 128) in its batch of 96 keeps everything.
     */
    @Test
    void bf16RecomputesTheLayersWhoseWeightCopiesOutweighTheirActivations() {
        assertTrue(ActivationCheckpointing.bf16KeepsMore(2, 197, 197, 768, 12, 3072));
        assertFalse(ActivationCheckpointing.bf16KeepsMore(2, 512, 24, 768, 12, 3072));
        assertTrue(ActivationCheckpointing.bf16KeepsMore(2, 710, 710, 768, 12, 3072));
        assertTrue(ActivationCheckpointing.bf16KeepsMore(3, 197, 197, 768, 12, 3072));
        assertFalse(ActivationCheckpointing.bf16KeepsMore(4, 197, 197, 768, 12, 3072));
        assertFalse(ActivationCheckpointing.bf16KeepsMore(5, 197, 197, 768, 12, 3072));
        assertFalse(ActivationCheckpointing.bf16KeepsMore(96, 17, 17, 128, 4, 256));
        assertFalse(ActivationCheckpointing.bf16KeepsMore(96, 16, 16, 128, 4, 256));
    }

    /** Whether {@code p} holds a gradient (the handle asked for is closed again: it would keep the gradient alive). */
    private static boolean hasGradient(Parameter p) {
        NDArray g = JniUtils.getGradient((PtNDArray) p.array());
        if (g != null) {
            g.close();
        }
        return g != null;
    }

    static void assertRelClose(String name, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, name);
        double scale = 0;
        double max = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            max = Math.max(max, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(max <= REL * scale, name + ": max difference " + max + " > 1e-6 x " + scale);
    }
}
