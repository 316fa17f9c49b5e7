package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import dev.mm4j.flava.LossModel;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.nn.Linear;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import dev.mm4j.report.MetricsLog;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The training loop is not tied to FLAVA: a tiny real {@link LossModel} (a two-layer regression net over its own
 * batch type, its loss the sum of two named parts) trained by the same {@link TrainingLoop} and {@link TrainingStep}
 * as classification and retrieval, with checkpoints, exact resume, per-part metrics and the {@link GradientSync} hook.
 */
class TrainingLoopTest {
    @TempDir Path tmp;

    /** A toy batch on the host: {@code n} rows of 6 inputs and 3 targets, and its place in its epoch. */
    record Rows(float[] x, float[] y, int n, int index) {}

    /** y = out(relu(hidden(x))); loss = mse + mean |error|, both reported as parts. */
    static final class Regressor extends Module implements LossModel<Rows> {
        final Linear hidden = child("hidden", Linear.torchDefault(6, 8));
        final Linear out = child("out", Linear.torchDefault(8, 3));

        @Override
        public Loss forward(ModelStep step, Rows b) {
            // six inputs as a 3-channel 1x2 "image" and three targets as 1x1: libtorch-made floats in the step
            NDArray x = step.images(b.x(), b.n(), 1, 2).reshape(b.n(), 6);
            NDArray y = step.images(b.y(), b.n(), 1, 1).reshape(b.n(), 3);
            NDArray err = out.forward(ai.djl.nn.Activation.relu(hidden.forward(x))).sub(y);
            NDArray mse = err.square().mean();
            NDArray l1 = err.abs().mean();
            Map<String, NDArray> parts = new LinkedHashMap<>();
            parts.put("mse", mse);
            parts.put("l1", l1);
            return new Loss(mse.add(l1), parts);
        }

        /** After the backward pass the hidden layer is reported done on its own, as a recomputed layer would be. */
        @Override
        public void backward(GradientCollector gc, NDArray loss, Consumer<Collection<Parameter>> layerDone) {
            gc.backward(loss);
            layerDone.accept(hidden.namedParameters().values());
        }
    }

    /** 24 rows of a fixed linear map plus noise, 4 rows a batch, shuffled per epoch from (seed, epoch). */
    static final class Data implements TrainingLoop.Data<Rows> {
        final float[][] x = new float[24][6];
        final float[][] y = new float[24][3];

        Data() {
            Random r = new Random(7);
            for (int i = 0; i < 24; i++) {
                for (int j = 0; j < 6; j++) {
                    x[i][j] = (float) r.nextGaussian();
                }
                for (int k = 0; k < 3; k++) {
                    y[i][k] = x[i][k] - 0.5f * x[i][k + 3] + 0.05f * (float) r.nextGaussian();
                }
            }
        }

        @Override
        public Iterator<Rows> epoch(int epoch, int startBatch) {
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < 24; i++) {
                order.add(i);
            }
            Collections.shuffle(order, new Random(1000 + epoch));
            List<Rows> batches = new ArrayList<>();
            for (int b = startBatch; b < 6; b++) {
                float[] bx = new float[4 * 6];
                float[] by = new float[4 * 3];
                for (int i = 0; i < 4; i++) {
                    int row = order.get(b * 4 + i);
                    // NCHW: channel c of the 1x2 image holds inputs 2c, 2c+1; reshaped back to (n, 6) in row order
                    System.arraycopy(x[row], 0, bx, i * 6, 6);
                    System.arraycopy(y[row], 0, by, i * 3, 3);
                }
                batches.add(new Rows(bx, by, 4, b));
            }
            return batches.iterator();
        }

        @Override
        public int batchesPerEpoch() {
            return 6;
        }

        @Override
        public int samples(Rows b) {
            return b.n();
        }

        @Override
        public int index(Rows b) {
            return b.index();
        }
    }

    static FinetuneSettings settings() {
        FinetuneSettings s = new FinetuneSettings();
        s.lr = 0.05;
        s.seed = 5;
        s.logEvery = 1;
        return s;
    }

    /** A loop over a fresh model (same init every time), resumed from {@code store}'s latest checkpoint if any. */
    record Run(Regressor model, AdamW optimizer, TrainingLoop<Rows> loop) implements AutoCloseable {
        static Run open(NDManager m, FinetuneSettings s, long total, CheckpointStore store, boolean resume)
                throws Exception {
            Engine.getInstance().setRandomSeed(11);
            Regressor model = new Regressor();
            model.allocate(m);
            AdamW opt = new AdamW(model.namedParameters(), s.adamw(), m);
            Path from = resume ? store.latest() : null;
            TrainState st = from != null ? CheckpointStore.restore(from, model, opt) : new TrainState();
            LrSchedule schedule = new LrSchedule(LrSchedule.Kind.COSINE, s.lr, 2, total, 0.5, 0);
            return new Run(model, opt, new TrainingLoop<>(model, null, opt, m, new Data(), TrainingLoop.Options.of(s), schedule, total, store, st,
                    from));
        }

        @Override
        public void close() {
            optimizer.close();
        }
    }

    @Test
    void aToyModelLearnsOnTheSharedLoopAndAResumedRunRepeatsTheUninterruptedOne() throws Exception {
        FinetuneSettings s = settings();
        long total = 45; // seven and a half epochs
        try (NDManager m = NDManager.newBaseManager()) {
            List<Double> whole;
            float[] wholeWeights;
            Path metricsFile = tmp.resolve("metrics.jsonl");
            try (Run a = Run.open(m, s, total, new CheckpointStore(tmp.resolve("a"), 2), false);
                    MetricsLog metrics = TrainingListeners.openMetrics(metricsFile, new TrainState())) {
                TrainingLoop.Outcome o = a.loop().listeners(List.of(TrainingListeners.metrics(metrics, 1))).run();
                assertFalse(o.cancelled() || o.stoppedOnNonFinite());
                whole = o.losses();
                wholeWeights = a.model().out.namedParameters().get("weight").array().toFloatArray();
            }
            assertEquals(45, whole.size());
            double firstEpoch = whole.subList(0, 6).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
            double lastEpoch = whole.subList(39, 45).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
            assertTrue(lastEpoch < 0.5 * firstEpoch, "the toy model learns: " + whole);
            // metrics.jsonl holds each step's loss and its named parts, which add up to it
            List<MetricsLog.Entry> entries = MetricsLog.read(metricsFile);
            assertEquals(45, entries.size());
            for (MetricsLog.Entry e : entries) {
                assertEquals(List.of("mse", "l1"), List.copyOf(e.lossParts().keySet()));
                assertEquals(e.loss(), e.lossParts().get("mse") + e.lossParts().get("l1"), 1e-5 * e.loss());
                assertEquals(whole.get((int) e.step()), e.loss());
            }

            // the same run cancelled after 26 steps (mid epoch 4), checkpointed, then resumed in a fresh model
            CheckpointStore store = new CheckpointStore(tmp.resolve("b"), 2);
            List<Double> first;
            try (Run b = Run.open(m, s, total, store, false)) {
                long[] done = {0};
                TrainingLoop.Outcome o = b.loop().listeners(List.of(new TrainingListener() {
                    @Override
                    public void onStep(Step st) {
                        done[0] = st.index() + 1;
                    }
                })).cancelWhen(() -> done[0] == 26).run();
                assertTrue(o.cancelled());
                b.loop().checkpoint();
                first = o.losses();
            }
            assertEquals(26, first.size());
            try (Run c = Run.open(m, s, total, store, true)) {
                TrainingLoop.Outcome o = c.loop().run();
                List<Double> all = new ArrayList<>(first);
                all.addAll(o.losses());
                assertEquals(whole, all, "resumed losses repeat the uninterrupted run's exactly");
                assertArrayEquals(wholeWeights, c.model().out.namedParameters().get("weight").array().toFloatArray());
            }
        }
    }

    @Test
    void gradientSyncGetsEveryParameterOncePerStepBeforeItIsUsed() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            for (double clip : new double[] {0, 1.0}) {
                for (int accum : new int[] {1, 2}) {
                    Engine.getInstance().setRandomSeed(11);
                    Regressor model = new Regressor();
                    model.allocate(m);
                    try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                        List<String> calls = new ArrayList<>();
                        Map<Parameter, Integer> seen = new IdentityHashMap<>();
                        Map<Parameter, float[]> before = new IdentityHashMap<>();
                        GradientSync sync = new GradientSync() {
                            @Override
                            public void layerReady(Collection<Parameter> params) {
                                calls.add("layer " + params.size());
                                check(params);
                            }

                            @Override
                            public void restReady(Collection<Parameter> params) {
                                calls.add("rest " + params.size());
                                check(params);
                            }

                            private void check(Collection<Parameter> params) {
                                for (Parameter p : params) {
                                    seen.merge(p, 1, Integer::sum);
                                    assertNotNull(p.array().getGradient(), "a gradient is there to sync");
                                    assertArrayEquals(before.get(p), p.array().toFloatArray(), "not updated yet");
                                }
                            }
                        };
                        TrainingStep<Rows> step = new TrainingStep<>(model, opt, m, sync);
                        Iterator<Rows> batches = new Data().epoch(0, 0);
                        for (int k = 0; k < 2; k++) {
                            model.namedParameters().values().forEach(p -> before.put(p, p.array().toFloatArray()));
                            List<Rows> micro = new ArrayList<>();
                            for (int i = 0; i < accum; i++) {
                                micro.add(batches.next());
                            }
                            TrainingStep.Result r = step.run(micro, 1e-2, clip, true, false);
                            assertTrue(r.applied());
                            assertFalse(Arrays.equals(before.get(model.out.namedParameters().get("bias")),
                                    model.out.namedParameters().get("bias").array().toFloatArray()), "updated after");
                        }
                        String where = "clip " + clip + ", accumulation " + accum;
                        // updates during the backward pass (no clipping): the hidden layer's 2 parameters as a layer,
                        // the output layer's 2 after the backward pass; with clipping all 4 after it; once per step
                        assertEquals(clip == 0 ? List.of("layer 2", "rest 2", "layer 2", "rest 2") : List.of("rest 4", "rest 4"),
                                calls, where);
                        assertEquals(4, seen.size(), where);
                        seen.values().forEach(n -> assertEquals(2, n, where));
                    }
                }
            }
        }
    }
}
