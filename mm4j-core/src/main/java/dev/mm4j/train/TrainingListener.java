package dev.mm4j.train;

import dev.mm4j.eval.Evaluator;
import java.io.IOException;

/**
 * What the training loop reports while it runs. Progress, metrics and memory reporting are listeners
 * ({@link TrainingListeners}), so the loop itself only trains, validates and checkpoints.
 */
public interface TrainingListener {

    /**
     * One applied optimizer step.
     *
     * @param index the step's index (0-based); {@code index + 1} steps are done
     * @param total the run's total steps
     * @param samples samples in the step (over all micro-batches)
     * @param seconds wall time of the step
     * @param epoch fractional epoch after the step
     */
    record Step(long index, long total, double loss, double lr, double gradNorm, int samples, double seconds,
            double epoch) {
        public double samplesPerSecond() {
            return samples / seconds;
        }
    }

    default void onStep(Step step) throws IOException {}

    /** A validation pass after {@code stepsDone} steps. */
    default void onValidation(long stepsDone, Evaluator.Result result, double epoch) throws IOException {}
}
