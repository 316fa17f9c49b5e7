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
 * optional clipping by global norm, then AdamW. The step's memory (inputs, activations, temporaries) is
 * one {@link ModelStep}, freed when the step ends, so memory stays flat over a long run.
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
            for (Batch b : microBatches) {
                ModelStep.Inputs in = step.inputs(b);
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
                    model.backward(gc, loss);
                }
            }
            double norm = maxGradNorm > 0 || measureNorm ? optimizer.gradNorm() : Double.NaN;
            if (maxGradNorm > 0 && !Double.isFinite(norm)) {
                optimizer.zeroGrad();
                return new Result(lossSum, norm, false);
            }
            // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1
            double scale = maxGradNorm > 0 ? Math.min(1.0, maxGradNorm / (norm + 1e-6)) : 1.0;
            optimizer.step(lr, scale);
            optimizer.zeroGrad();
            return new Result(lossSum, norm, true);
        }
    }
}
