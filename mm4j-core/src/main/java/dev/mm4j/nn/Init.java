package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/** How a parameter starts before any checkpoint is loaded (TorchMultimodal's conventions). */
public interface Init {
    NDArray create(NDManager manager, Shape shape);

    /** Zeros (biases, CLS and mask tokens). */
    static Init zeros() {
        return (m, s) -> m.zeros(s, DataType.FLOAT32);
    }

    /** Ones (layer-norm weights). */
    static Init ones() {
        return (m, s) -> m.ones(s, DataType.FLOAT32);
    }

    /** Every element {@code value} (e.g. the contrastive loss's log-temperature). */
    static Init constant(double value) {
        return (m, s) -> m.full(s, (float) value, DataType.FLOAT32);
    }

    /** Normal(0, std): TorchMultimodal's {@code init_transformer_weights} for Linear/Conv/Embedding weights. */
    static Init normal(double std) {
        return (m, s) -> m.randomNormal(0f, (float) std, s, DataType.FLOAT32);
    }

    /** Uniform(-bound, bound): PyTorch's default {@code nn.Linear} init has bound = 1/sqrt(fan_in). */
    static Init uniform(double bound) {
        return (m, s) -> m.randomUniform((float) -bound, (float) bound, s, DataType.FLOAT32);
    }
}
