package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/** Layer normalization over the last dimension, computed in float32. */
public final class LayerNorm extends Module {
    private final Parameter weight;
    private final Parameter bias;
    private final Shape normalizedShape;
    private final float eps;

    public LayerNorm(long dim, double eps) {
        this.weight = parameter("weight", Init.ones(), dim);
        this.bias = parameter("bias", Init.zeros(), dim);
        this.normalizedShape = new Shape(dim);
        this.eps = (float) eps;
    }

    public NDArray forward(NDArray x) {
        return ai.djl.nn.norm.LayerNorm.layerNorm(x, normalizedShape, weight.array(), bias.array(), eps)
                .singletonOrThrow();
    }
}
