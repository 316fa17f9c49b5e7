package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;

/** {@code y = x W^T + b}, weight stored (out, in) as in PyTorch. */
public final class Linear extends Module {
    private final Parameter weight;
    private final Parameter bias;

    /** TorchMultimodal's transformer init: weight ~ N(0, std), bias 0. */
    public Linear(long in, long out, double std) {
        this(in, out, Init.normal(std), Init.zeros());
    }

    /** PyTorch's default {@code nn.Linear} init: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)). */
    public static Linear torchDefault(long in, long out) {
        double bound = 1.0 / Math.sqrt(in);
        return new Linear(in, out, Init.uniform(bound), Init.uniform(bound));
    }

    private Linear(long in, long out, Init weightInit, Init biasInit) {
        weight = parameter("weight", weightInit, out, in);
        bias = parameter("bias", biasInit, out);
    }

    public NDArray forward(NDArray x) {
        if (precision() != Precision.FP32) {
            return TorchOps.on(x).linear(precision(), x, weight.array(), bias.array());
        }
        return ai.djl.nn.core.Linear.linear(x, weight.array(), bias.array()).singletonOrThrow();
    }

    NDArray weight() {
        return weight.array();
    }

    NDArray bias() {
        return bias.array();
    }
}
