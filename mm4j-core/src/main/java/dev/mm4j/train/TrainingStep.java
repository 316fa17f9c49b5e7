package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.mm4j.flava.LossModel;
import dev.mm4j.flava.ModelStep;
import dev.mm4j.nn.Parameter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One optimizer step of any {@link LossModel}: forward and backward over one or more micro-batches (gradient
 * accumulation), optional clipping by global norm, then AdamW. The model's layers are recorded layer by layer
 * ({@link LossModel#layerByLayer}): without clipping they are updated during the last micro-batch's backward pass,
 * each as soon as its gradients are complete ({@link AdamW#begin}): the same numbers, less memory at the end of the
 * backward pass. The
 * gradients of the last micro-batch pass through the step's {@link GradientSync} (a layer's during the backward pass,
 * the rest after it) before they are measured, clipped or used. The step's memory (inputs, activations,
 * temporaries) is one {@link ModelStep}, freed when the step ends, so memory stays flat over a long run.
 *
 * @param <B> the model's host batch type
 */
public final class TrainingStep<B> {

    /**
     * @param loss mean loss over the micro-batches
     * @param gradNorm global gradient norm before clipping (NaN when not measured)
     * @param applied false when the loss was not finite and no update was made
     * @param parts the mean of each named part of the loss over the micro-batches (empty when the model gives none)
     */
    public record Result(double loss, double gradNorm, boolean applied, Map<String, Double> parts) {
        public Result {
            parts = Collections.unmodifiableMap(new LinkedHashMap<>(parts));
        }
    }

    private final LossModel<B> model;
    private final AdamW optimizer;
    private final NDManager manager;
    private final GradientSync sync;

    /** @param manager the manager the model lives on (each step's memory is opened on it) */
    public TrainingStep(LossModel<B> model, AdamW optimizer, NDManager manager) {
        this(model, optimizer, manager, GradientSync.NONE);
    }

    /** @param sync where the last micro-batch's gradients go before they are used (data-parallel all-reduce) */
    public TrainingStep(LossModel<B> model, AdamW optimizer, NDManager manager, GradientSync sync) {
        this.model = model;
        this.optimizer = optimizer;
        this.manager = manager;
        this.sync = sync;
    }

    /**
     * @param lr learning rate for this step
     * @param maxGradNorm clip the global gradient norm to this (0 = no clipping)
     * @param measureNorm measure the gradient norm even without clipping (for logging)
     * @param dropout train mode (dropout active); false runs the same step in eval mode, deterministic
     */
    public Result run(List<B> microBatches, double lr, double maxGradNorm, boolean measureNorm, boolean dropout) {
        model.setTraining(dropout);
        int n = microBatches.size();
        double lossSum = 0;
        Map<String, Double> parts = new LinkedHashMap<>();
        try (ModelStep step = ModelStep.open(manager)) {
            AdamW.Update update = null;
            Set<Parameter> synced = Collections.newSetFromMap(new IdentityHashMap<>());
            for (int i = 0; i < n; i++) {
                boolean last = i == n - 1;
                // every layer (not only the recomputed ones) is recorded apart: each is handed over as soon as its
                // gradients are complete (to be updated during the last backward pass when nothing waits for the
                // whole gradient), and bf16 layers keep their activations without weight copies of their own
                model.layerByLayer(true);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    LossModel.Loss out = model.forward(step, microBatches.get(i));
                    NDArray loss = out.total();
                    if (n > 1) {
                        // a libtorch-made scalar, not div(Number): see ModelStep
                        loss = loss.div(step.manager().full(new Shape(), n, loss.getDataType()));
                    }
                    double value = sync.meanOverRanks(loss.getFloat()); // the same on every process
                    lossSum += value;
                    out.parts().forEach((name, part) -> parts.merge(name, (double) part.getFloat() / n, Double::sum));
                    if (!Double.isFinite(value)) {
                        optimizer.zeroGrad();
                        return new Result(value, Double.NaN, false, parts);
                    }
                    if (last && maxGradNorm <= 0) {
                        // Nothing waits for the whole gradient (no clipping, no later micro-batch): each layer is
                        // updated as soon as its gradients are complete, and its gradients
                        // are released before the rest of the backward pass allocates its own (less peak memory).
                        // With several processes a layer's averaging runs while the backward pass goes on: the layer is
                        // updated once the next layer is done (its averaging awaited then).
                        AdamW.Update u = optimizer.begin(lr, 1.0, measureNorm);
                        update = u;
                        int lag = sync == GradientSync.NONE ? 0 : 1;
                        Deque<Map.Entry<GradientSync.Started, Collection<Parameter>>> inFlight = new ArrayDeque<>();
                        model.backward(gc, loss, params -> {
                            inFlight.add(Map.entry(sync.startLayer(params), params));
                            synced.addAll(params);
                            updateAwaited(inFlight, lag, u);
                        });
                        updateAwaited(inFlight, 0, u);
                    } else {
                        model.backward(gc, loss, params -> {});
                    }
                }
            }
            restReady(synced);
            if (update != null) {
                update.applyRest();
                optimizer.zeroGrad();
                return new Result(lossSum, measureNorm ? update.gradNorm() : Double.NaN, true, parts);
            }
            double norm = optimizer.gradNorm();
            if (!Double.isFinite(norm)) {
                optimizer.zeroGrad();
                return new Result(lossSum, norm, false, parts);
            }
            // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1
            optimizer.step(lr, Math.min(1.0, maxGradNorm / (norm + 1e-6)));
            optimizer.zeroGrad();
            return new Result(lossSum, norm, true, parts);
        } finally {
            model.layerByLayer(false); // a later plain GradientCollector.backward of the model's loss stays whole
        }
    }

    /** Awaits the oldest layers' averaging and updates them until at most {@code keep} are in flight. */
    private static void updateAwaited(Deque<Map.Entry<GradientSync.Started, Collection<Parameter>>> inFlight, int keep,
            AdamW.Update update) {
        while (inFlight.size() > keep) {
            var layer = inFlight.poll();
            layer.getKey().await();
            update.apply(layer.getValue());
        }
    }

    /** Hands the optimizer's parameters not yet passed during the backward pass to the sync. */
    private void restReady(Set<Parameter> synced) {
        if (sync == GradientSync.NONE) {
            return;
        }
        List<Parameter> rest = new ArrayList<>();
        for (Parameter p : optimizer.parameters()) {
            if (!synced.contains(p)) {
                rest.add(p);
            }
        }
        sync.restReady(rest);
    }
}
