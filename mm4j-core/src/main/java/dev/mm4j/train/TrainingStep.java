package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.mm4j.data.Batch;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.ModelStep;
import java.util.List;

/**
 * One optimizer step: forward and backward over one or more micro-batches (gradient accumulation),
 * optional clipping by global norm, then AdamW. Without clipping, the layers that the backward pass recomputes
 * (activation checkpointing) are updated during the last micro-batch's backward pass, each as soon as its
 * gradients are complete ({@link AdamW#begin}): the same numbers, less memory at the end of the backward pass.
 * The step's memory (inputs, activations, temporaries) is one {@link ModelStep}, freed when the step ends, so
 * memory stays flat over a long run.
 */
public final class TrainingStep {

    /**
     * @param loss mean loss over the micro-batches
     * @param gradNorm global gradient norm before clipping (NaN when not measured)
     * @param applied false when the loss was not finite and no update was made
     */
    public record Result(double loss, double gradNorm, boolean applied) {}

    private final FlavaForClassification model;
    private final AdamW optimizer;
    private final NDManager manager;

    /** @param manager the manager the model lives on (each step's memory is opened on it) */
    public TrainingStep(FlavaForClassification model, AdamW optimizer, NDManager manager) {
        this.model = model;
        this.optimizer = optimizer;
        this.manager = manager;
    }

    /**
     * @param lr learning rate for this step
     * @param maxGradNorm clip the global gradient norm to this (0 = no clipping)
     * @param measureNorm measure the gradient norm even without clipping (for logging)
     * @param dropout train mode (dropout active); false runs the same step in eval mode, deterministic
     */
    public Result run(List<Batch> microBatches, double lr, double maxGradNorm, boolean measureNorm, boolean dropout) {
        model.setTraining(dropout);
        double lossSum = 0;
        try (ModelStep step = ModelStep.open(manager)) {
            AdamW.Update update = null;
            for (int i = 0; i < microBatches.size(); i++) {
                ModelStep.Inputs in = step.inputs(microBatches.get(i));
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray loss = model.forward(in.image(), in.text(), in.labels()).loss();
                    if (microBatches.size() > 1) {
                        // a libtorch-made scalar, not div(Number): see ModelStep
                        loss = loss.div(step.manager().full(new Shape(), microBatches.size(), loss.getDataType()));
                    }
                    float value = loss.getFloat();
                    lossSum += value;
                    if (!Float.isFinite(value)) {
                        optimizer.zeroGrad();
                        return new Result(value, Double.NaN, false);
                    }
                    if (i == microBatches.size() - 1 && maxGradNorm <= 0) {
                        // Nothing waits for the whole gradient (no clipping, no later micro-batch): each layer that the
                        // backward pass recomputes is updated as soon as its gradients are complete, and its gradients
                        // are released before the rest of the backward pass allocates its own (less peak memory).
                        update = optimizer.begin(lr, 1.0, measureNorm);
                        model.backward(gc, loss, update::apply);
                    } else {
                        model.backward(gc, loss);
                    }
                }
            }
            if (update != null) {
                update.applyRest();
                optimizer.zeroGrad();
                return new Result(lossSum, measureNorm ? update.gradNorm() : Double.NaN, true);
            }
            double norm = optimizer.gradNorm();
            if (!Double.isFinite(norm)) {
                optimizer.zeroGrad();
                return new Result(lossSum, norm, false);
            }
            // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1
            optimizer.step(lr, Math.min(1.0, maxGradNorm / (norm + 1e-6)));
            optimizer.zeroGrad();
            return new Result(lossSum, norm, true);
        }
    }
}
