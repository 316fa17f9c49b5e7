package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import dev.mm4j.data.Batch;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.ModelStep;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TrainingStepTest {

    static FlavaConfig small() throws Exception {
        return FlavaConfig.fromJson("{\"image_size\":32,\"patch_size\":8,\"image_hidden_size\":64,\"image_num_attention_heads\":4,"
                + "\"image_num_hidden_layers\":2,\"image_intermediate_size\":128,\"text_hidden_size\":64,\"text_num_attention_heads\":4,"
                + "\"text_num_hidden_layers\":2,\"text_intermediate_size\":128,\"vocab_size\":300,\"max_position_embeddings\":16,"
                + "\"multimodal_hidden_size\":64,\"multimodal_num_attention_heads\":4,\"multimodal_num_hidden_layers\":2,"
                + "\"multimodal_intermediate_size\":128,\"text_and_image_proj_size\":16,\"num_classes\":9,\"classifier_hidden_sizes\":64}");
    }

    static Batch batch(Random r, int b, int len) {
        float[] images = new float[b * 3 * 32 * 32];
        for (int i = 0; i < images.length; i++) {
            images[i] = r.nextFloat();
        }
        long[] ids = new long[b * len];
        for (int i = 0; i < b; i++) {
            int n = 3 + r.nextInt(len - 3);
            for (int t = 0; t < n; t++) {
                ids[i * len + t] = t == 0 ? 101 : 1 + r.nextInt(299);
            }
        }
        long[] labels = new long[b];
        for (int i = 0; i < b; i++) {
            labels[i] = r.nextInt(9);
        }
        return new Batch(images, ids, len, labels, java.util.Collections.nCopies(b, null), 32, 32, 0, 0);
    }

    /**
     * Regression: gradients were sometimes inf/NaN because tensors backed by Java buffers (DJL's Number operands,
     * host input arrays) were kept by autograd after DJL let the buffer go; a GC before the backward pass then
     * left garbage in them. Here every seed runs with a GC between forward and backward.
     */
    @Test
    void gradientsStayFiniteWhenTheGarbageCollectorRunsBeforeBackward() throws Exception {
        Random r = new Random(1);
        try (NDManager m = NDManager.newBaseManager()) {
            for (int seed = 0; seed < 12; seed++) {
                Engine.getInstance().setRandomSeed(seed);
                FlavaConfig config = small();
                config.maskTextPaddingInMultimodal = seed % 2 == 0;
                FlavaForClassification model = FlavaForClassification.create(config, m);
                try (ModelStep step = ModelStep.open(m)) {
                    ModelStep.Inputs in = step.inputs(batch(r, 8, 12));
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray loss = model.forward(in.image(), in.text(), in.labels()).loss();
                        for (int i = 0; i < 3; i++) {
                            System.gc();
                            new byte[1 << 22].hashCode(); // churn so freed direct buffers get reused
                        }
                        gc.backward(loss);
                    }
                    try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                        double norm = opt.gradNorm();
                        assertTrue(Double.isFinite(norm) && norm > 0, "seed " + seed + ": gradient norm " + norm);
                    }
                }
            }
        }
    }

    /**
     * With several processes a layer finished during the backward pass (here: every layer recomputed under activation
     * checkpointing, no clipping) has its averaging started at once and awaited only once the next layer is done, so
     * that the averaging overlaps the backward pass; the parameters not handed over go after it. A sync that starts
     * nothing leaves the step as it is: the same weights as without one.
     */
    @Test
    void layerAveragingStartsAtOnceAndIsAwaitedOneLayerLater() throws Exception {
        Batch batch = batch(new Random(6), 2, 10);
        float[][] weights = new float[2][];
        List<String> log = new java.util.ArrayList<>();
        for (int run = 0; run < 2; run++) {
            try (NDManager m = NDManager.newBaseManager()) {
                Engine.getInstance().setRandomSeed(5);
                FlavaConfig config = small();
                config.activationCheckpointing = true;
                FlavaForClassification model = FlavaForClassification.create(config, m);
                model.setTraining(false);
                GradientSync recording = new GradientSync() {
                    int started;

                    @Override
                    public Started startLayer(java.util.Collection<dev.mm4j.nn.Parameter> params) {
                        int layer = started++;
                        log.add("start " + layer);
                        return () -> log.add("await " + layer);
                    }

                    @Override
                    public void restReady(java.util.Collection<dev.mm4j.nn.Parameter> params) {
                        log.add("rest");
                    }
                };
                try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                    TrainingStep<Batch> ts = new TrainingStep<>(model, opt, m, run == 0 ? GradientSync.NONE : recording);
                    assertTrue(ts.run(List.of(batch), 1e-3, 0, false, false).applied());
                }
                weights[run] = model.namedParameters().entrySet().stream()
                        .filter(e -> e.getKey().endsWith("image_encoder.encoder.layer.0.attention.query.weight"))
                        .findFirst().orElseThrow().getValue().array().toFloatArray();
            }
        }
        int layers = 2 + 2 + 2; // image, text and multimodal layers of the small config
        List<String> expected = new java.util.ArrayList<>(List.of("start 0"));
        for (int i = 1; i < layers; i++) {
            expected.add("start " + i);
            expected.add("await " + (i - 1));
        }
        expected.add("await " + (layers - 1));
        expected.add("rest");
        assertEquals(expected, log);
        assertArrayEquals(weights[0], weights[1]);
    }

    @Test
    void accumulationOverTwoHalvesEqualsOneBatch() throws Exception {
        Random r = new Random(2);
        Batch whole = batch(r, 4, 10);
        int img = 3 * 32 * 32;
        Batch a = new Batch(java.util.Arrays.copyOfRange(whole.images(), 0, 2 * img),
                java.util.Arrays.copyOfRange(whole.inputIds(), 0, 20), 10, java.util.Arrays.copyOfRange(whole.labels(), 0, 2),
                java.util.Collections.nCopies(2, null), 32, 32, 0, 0);
        Batch b = new Batch(java.util.Arrays.copyOfRange(whole.images(), 2 * img, 4 * img),
                java.util.Arrays.copyOfRange(whole.inputIds(), 20, 40), 10, java.util.Arrays.copyOfRange(whole.labels(), 2, 4),
                java.util.Collections.nCopies(2, null), 32, 32, 0, 1);
        float[][] after = new float[2][];
        double[] losses = new double[2];
        for (int run = 0; run < 2; run++) {
            try (NDManager m = NDManager.newBaseManager()) {
                Engine.getInstance().setRandomSeed(5);
                FlavaForClassification model = FlavaForClassification.create(small(), m);
                model.setTraining(false); // no dropout: the two runs see the same function
                try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                    TrainingStep<Batch> ts = new TrainingStep<>(model, opt, m);
                    List<Batch> in = run == 0 ? List.of(whole) : List.of(a, b);
                    TrainingStep.Result res = ts.run(in, 1e-3, 0.5, true, false);
                    losses[run] = res.loss();
                    after[run] = model.namedParameters().get("classifier.model.0.weight").array().toFloatArray();
                }
            }
        }
        assertEquals(losses[0], losses[1], 1e-5, "mean loss of the halves equals the whole batch's");
        for (int i = 0; i < after[0].length; i++) {
            assertEquals(after[0][i], after[1][i], 1e-6, "parameter " + i + " after one clipped step");
        }
    }
}
