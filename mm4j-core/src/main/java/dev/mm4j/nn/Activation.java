package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;

/** Element-wise activations used by FLAVA. */
public enum Activation {
    /** Exact GELU (erf), PyTorch's {@code nn.GELU()} default. */
    GELU,
    RELU;

    public NDArray apply(NDArray x) {
        return switch (this) {
            case GELU -> ai.djl.nn.Activation.gelu(x);
            case RELU -> ai.djl.nn.Activation.relu(x);
        };
    }
}
