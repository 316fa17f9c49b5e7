package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/** 2-D convolution with a square kernel, no padding: weight (out, in, k, k). */
public final class Conv2d extends Module {
    private final Parameter weight;
    private final Parameter bias;
    private final Shape stride;

    public Conv2d(long in, long out, int kernel, int stride, double std) {
        this.weight = parameter("weight", Init.normal(std), out, in, kernel, kernel);
        this.bias = parameter("bias", Init.zeros(), out);
        this.stride = new Shape(stride, stride);
    }

    public NDArray forward(NDArray x) {
        return ai.djl.nn.convolutional.Conv2d.conv2d(x, weight.array(), bias.array(), stride).singletonOrThrow();
    }
}
