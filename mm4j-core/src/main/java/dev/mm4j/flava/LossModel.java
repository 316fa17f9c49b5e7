package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.training.GradientCollector;
import dev.mm4j.nn.Parameter;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A model whose forward pass over a host batch gives the loss to optimise: what the training loop
 * ({@code train.TrainingStep}, {@code train.TrainingLoop}) trains, whatever the task. Classification
 * ({@link FlavaForClassification} over {@link dev.mm4j.data.Batch}), retrieval ({@link FlavaForRetrieval} over
 * {@link FlavaForRetrieval.Pairs}) and pretraining implement it; the loop then gives each of them gradient
 * accumulation, clipping, updates during the backward pass, checkpoints and exact resume, and its listeners.
 *
 * @param <B> the host batch type (no NDArrays: the forward copies it into the step's memory)
 */
public interface LossModel<B> {

    /**
     * The forward pass's result.
     *
     * @param total the scalar loss to optimise
     * @param parts named parts of it for logging (e.g. each pretraining loss), in a fixed order; empty when the loss
     *     has no parts. Scalars, made in the same step.
     */
    record Loss(NDArray total, Map<String, NDArray> parts) {
        public Loss {
            parts = Collections.unmodifiableMap(new LinkedHashMap<>(parts));
        }

        /** A loss without parts. */
        public static Loss of(NDArray total) {
            return new Loss(total, Map.of());
        }
    }

    /**
     * The forward pass over {@code batch}, its inputs and activations made in {@code step}'s memory.
     */
    Loss forward(ModelStep step, B batch);

    /**
     * The backward pass of {@code loss} (from this model's last forward) inside {@code gc}: the gradients of every
     * parameter. {@code layerDone} gets the parameters of a layer as soon as their gradients are complete, while the
     * rest of the backward pass still runs (layers recomputed under activation checkpointing, every layer after
     * {@link #layerByLayer}), or never.
     */
    void backward(GradientCollector gc, NDArray loss, Consumer<Collection<Parameter>> layerDone);

    /**
     * Whether the next forward passes prepare {@link #backward} to hand every layer to {@code layerDone} (not only
     * the recomputed ones), at no cost in numbers: what a step that updates layers during the backward pass asks
     * for, and turns off after. Off by default; a model without layers to hand over ignores it.
     */
    default void layerByLayer(boolean on) {}

    /** Train mode (dropout active) or eval mode. */
    void setTraining(boolean training);
}
