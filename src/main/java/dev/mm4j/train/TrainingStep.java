package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.mm4j.data.Batch;
import ai.djl.training.GradientCollector;
import dev.mm4j.flava.FlavaForClassification;
import java.util.List;

/**
 * One optimizer step: forward and backward over one or more micro-batches (gradient accumulation),
 * optional clipping by global norm, then AdamW. Every NDArray made during the step belongs to the
 * step's {@link NDScope} and is freed when it ends, so memory stays flat over a long run.
 */
public final class TrainingStep {

    /** One micro-batch on the model's device: images (B,3,H,W), token ids (B,L), labels (B). */
    public record Inputs(NDArray image, NDArray text, NDArray labels) {
        /** Copies a host batch into arrays on {@code manager} (its device); the caller owns the manager. */
        public static Inputs of(Batch b, NDManager manager) {
            NDArray image = nativeCopy(manager.create(b.images(), new Shape(b.size(), 3, b.height(), b.width())));
            NDArray text = nativeCopy(manager.create(b.inputIds(), new Shape(b.size(), b.seqLen())));
            NDArray labels = nativeCopy(manager.create(b.labels(), new Shape(b.size())));
            return new Inputs(image, text, labels);
        }

        /**
         * DJL's create(array) wraps a Java direct buffer that only the Java wrapper keeps alive; autograd may
         * keep the tensor longer (gather keeps the labels, conv the image). A copy in libtorch's own memory
         * is safe whatever the wrapper's fate.
         */
        private static NDArray nativeCopy(NDArray javaBacked) {
            NDArray copy = javaBacked.duplicate();
            javaBacked.close();
            return copy;
        }
    }

    /**
     * @param loss mean loss over the micro-batches
     * @param gradNorm global gradient norm before clipping (NaN when not measured)
     * @param applied false when the loss was not finite and no update was made
     */
    public record Result(double loss, double gradNorm, boolean applied) {}

    private final FlavaForClassification model;
    private final AdamW optimizer;

    public TrainingStep(FlavaForClassification model, AdamW optimizer) {
        this.model = model;
        this.optimizer = optimizer;
    }

    /**
     * @param lr learning rate for this step
     * @param maxGradNorm clip the global gradient norm to this (0 = no clipping)
     * @param measureNorm measure the gradient norm even without clipping (for logging)
     */
    public Result run(List<Inputs> microBatches, double lr, double maxGradNorm, boolean measureNorm) {
        model.setTraining(true);
        return step(microBatches, lr, maxGradNorm, measureNorm);
    }

    /** The same step in eval mode (no dropout): deterministic, for checks and for {@code dropout: false} runs. */
    public Result runWithoutDropout(List<Inputs> microBatches, double lr, double maxGradNorm) {
        model.setTraining(false);
        return step(microBatches, lr, maxGradNorm, maxGradNorm > 0);
    }

    private Result step(List<Inputs> microBatches, double lr, double maxGradNorm, boolean measureNorm) {
        double lossSum = 0;
        try (NDScope scope = new NDScope()) {
            for (Inputs in : microBatches) {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray loss = model.forward(in.image(), in.text(), in.labels()).loss();
                    if (microBatches.size() > 1) {
                        // a libtorch-made scalar, not div(Number): see Inputs.nativeCopy
                        loss = loss.div(loss.getManager().full(new Shape(), microBatches.size(), loss.getDataType()));
                    }
                    float value = loss.getFloat();
                    lossSum += value;
                    if (!Float.isFinite(value)) {
                        optimizer.zeroGrad();
                        return new Result(value, Double.NaN, false);
                    }
                    gc.backward(loss);
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
