package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.types.SparseFormat;

/**
 * A lookup table: integer ids (any shape) to rows of {@code weight} (num, dim). With a padding id
 * (PyTorch's {@code padding_idx}) that row starts at zero and never receives a gradient.
 */
public final class Embedding extends Module {
    private final Parameter weight;
    private final Integer paddingIdx;

    public Embedding(long num, long dim, double std) {
        this(num, dim, std, null);
    }

    public Embedding(long num, long dim, double std, Integer paddingIdx) {
        this.paddingIdx = paddingIdx;
        Init normal = Init.normal(std);
        Init init = paddingIdx == null ? normal : (m, s) -> {
            NDArray w = normal.create(m, s);
            w.set(new ai.djl.ndarray.index.NDIndex(paddingIdx), 0f);
            return w;
        };
        this.weight = parameter("weight", init, num, dim);
    }

    public NDArray forward(NDArray ids) {
        NDArray w = weight.array();
        NDArray out = lookup(ids, w);
        if (paddingIdx == null) {
            return out;
        }
        // padding positions read the same values through a detached weight: no gradient reaches that row
        NDArray isPad = ids.eq(paddingIdx).expandDims(-1).broadcast(out.getShape());
        return NDArrays.where(isPad, lookup(ids, w.stopGradient()), out);
    }

    private static NDArray lookup(NDArray ids, NDArray w) {
        return ai.djl.nn.core.Embedding.embedding(ids, w, SparseFormat.DENSE).singletonOrThrow();
    }
}
