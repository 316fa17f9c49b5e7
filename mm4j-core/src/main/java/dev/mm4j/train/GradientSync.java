package dev.mm4j.train;

import dev.mm4j.nn.Parameter;
import java.util.Collection;

/**
 * Where a {@link TrainingStep}'s gradients are complete on this process and not yet used: the place where
 * data-parallel training makes them the same on every process (an all-reduce, in buckets). Both calls come on the
 * training thread, only for the step's last micro-batch (the earlier ones accumulate locally), before the gradient
 * norm is measured, before clipping and before any parameter is updated. Every parameter the optimizer updates is
 * passed exactly once per applied step: some during the backward pass ({@link #layerReady}), the rest after it
 * ({@link #restReady}). A step whose loss is not finite stops before its backward pass and calls neither.
 */
public interface GradientSync {

    /** Single-process training: nothing to synchronise. */
    GradientSync NONE = new GradientSync() {};

    /**
     * The mean of {@code value} (a micro-batch's loss) over the processes, asked after each forward pass, before the
     * step decides whether the loss is finite: every process then reports the same loss and takes the same decision.
     * One process: the value itself.
     */
    default double meanOverRanks(double value) {
        return value;
    }

    /**
     * A layer's gradients are complete while the backward pass still runs (layers recomputed under activation
     * checkpointing, when the step updates during the backward pass); they are updated right after this returns.
     */
    default void layerReady(Collection<Parameter> params) {}

    /**
     * The same as {@link #layerReady}, started: the returned handle's {@link Started#await} finishes it (the step
     * updates the layer after that), so that the work overlaps the rest of the backward pass. Every handle is awaited,
     * in the order started. By default it runs {@link #layerReady} now.
     */
    default Started startLayer(Collection<Parameter> params) {
        layerReady(params);
        return Started.DONE;
    }

    /** What {@link #startLayer} started. */
    interface Started {
        Started DONE = () -> {};

        /** Waits until the layer's gradients are the same on every process. */
        void await();
    }

    /**
     * The backward pass ended: the gradients of {@code params}, those not passed to {@link #layerReady}, are
     * complete; the norm, clipping and the update of them follow when this returns.
     */
    default void restReady(Collection<Parameter> params) {}
}
