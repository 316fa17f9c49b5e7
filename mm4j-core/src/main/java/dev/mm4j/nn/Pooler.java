package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

/** {@code tanh(dense(x[:, 0]))}: exists so that checkpoints load; computed only when asked. */
public final class Pooler extends Module {
    private final Linear dense;

    public Pooler(long dim, double initStd) {
        this.dense = child("dense", new Linear(dim, dim, initStd));
    }

    public NDArray forward(NDArray sequence) {
        return dense.forward(sequence.get(new NDIndex(":, 0"))).tanh();
    }
}
