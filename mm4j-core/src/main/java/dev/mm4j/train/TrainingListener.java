package dev.mm4j.train;

import dev.mm4j.eval.Evaluator;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a training run (any task) reports while it runs: every applied step, every validation pass and every checkpoint
 * written, as typed events. Progress, metrics and memory reporting are listeners ({@link TrainingListeners}), so the
 * loop itself only trains, validates and checkpoints; a caller adds its own with
 * {@link Finetuner.Builder#listener(TrainingListener)}. Events arrive on the training thread, in step order; an
 * exception thrown by a listener ends the run.
 */
public interface TrainingListener {

    /**
     * One applied optimizer step.
     *
     * @param index the step's index (0-based); {@code index + 1} steps are done
     * @param total the run's total steps
     * @param loss the step's training loss (mean over its micro-batches)
     * @param lr the learning rate the step used
     * @param gradNorm the global gradient norm before clipping (NaN when it was not computed for this step)
     * @param samples samples in the step (over all micro-batches)
     * @param seconds wall time of the step
     * @param epoch fractional epoch after the step
     * @param lossParts the named parts of the loss (e.g. each pretraining loss; mean over the micro-batches), in the
     *     model's order; empty for a loss without parts
     */
    record Step(long index, long total, double loss, double lr, double gradNorm, int samples, double seconds,
            double epoch, Map<String, Double> lossParts) {
        /** Training throughput of this step. */
        public double samplesPerSecond() {
            return samples / seconds;
        }
    }

    /**
     * A validation pass.
     *
     * @param stepsDone the steps done when it ran
     * @param epoch fractional epoch at that point
     * @param result the pass's accuracy, predictions and sample answers
     */
    record Validation(long stepsDone, double epoch, Evaluator.Result result) {
        /** The VQA accuracy of the pass, in [0, 1]. */
        public double accuracy() {
            return result.accuracy();
        }
    }

    /**
     * A checkpoint written (complete, resumable).
     *
     * @param stepsDone the steps it holds
     * @param folder its folder under {@code OUT/checkpoints}
     * @param best true for {@code best/} (highest validation accuracy so far), false for the latest {@code step-N}
     */
    record Checkpoint(long stepsDone, Path folder, boolean best) {}

    /** Called after each applied optimizer step. */
    default void onStep(Step step) throws IOException {}

    /** Called after each validation pass (periodic and final). */
    default void onValidation(Validation validation) throws IOException {}

    /** Called after each checkpoint is written. */
    default void onCheckpoint(Checkpoint checkpoint) throws IOException {}
}
