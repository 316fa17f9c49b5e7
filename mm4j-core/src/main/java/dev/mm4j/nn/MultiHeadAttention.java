package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * Multi-head self-attention with query/key/value/output projections (with bias), scaled by
 * 1/sqrt(head_dim), softmax in float32. The optional mask is additive, broadcastable to
 * (batch, heads, queries, keys): 0 where a key is attended, -inf where it is masked.
 */
public final class MultiHeadAttention extends Module {
    private final Linear query;
    private final Linear key;
    private final Linear value;
    private final Linear output;
    private final int heads;
    private final long headDim;
    private final float scale;

    public MultiHeadAttention(long dim, int heads, double initStd) {
        if (dim % heads != 0) {
            throw new IllegalArgumentException("hidden size " + dim + " not divisible by " + heads + " heads");
        }
        this.query = child("query", new Linear(dim, dim, initStd));
        this.key = child("key", new Linear(dim, dim, initStd));
        this.value = child("value", new Linear(dim, dim, initStd));
        this.output = child("output", new Linear(dim, dim, initStd));
        this.heads = heads;
        this.headDim = dim / heads;
        this.scale = (float) (1.0 / Math.sqrt(headDim));
    }

    /** x: (B, L, D) -> (B, L, D). */
    public NDArray forward(NDArray x, NDArray additiveMask) {
        Shape s = x.getShape();
        long b = s.get(0);
        long l = s.get(1);
        // The scale is a tensor made by libtorch, not NDArray.mul(Number): DJL builds a Number operand from
        // a Java buffer and frees it right after the call, while autograd keeps it for the backward pass.
        // Scaling q (B,H,L,Dh) costs L/Dh times less than scaling the scores (B,H,L,L).
        NDArray scaleTensor = x.getManager().full(new Shape(), scale, x.getDataType());
        NDArray projected = query.forward(x);
        NDArray q = splitHeads(projected, b, l).mul(scaleTensor);
        // the unscaled projection is not saved for the backward pass (only the scale is): free it now
        projected.close();
        NDArray k = splitHeads(key.forward(x), b, l);
        NDArray v = splitHeads(value.forward(x), b, l);
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2));
        if (additiveMask != null) {
            scores = scores.addi(additiveMask); // in place: matmul keeps its inputs for the backward, not its output
        }
        NDArray probs = scores.softmax(-1);
        // Transients are freed as soon as they are consumed: closing a wrapper only drops our reference, and
        // libtorch keeps whatever the backward pass saved (softmax keeps its output, not the scores).
        scores.close();
        NDArray weighted = probs.matMul(v);
        NDArray context = weighted.transpose(0, 2, 1, 3).reshape(b, l, heads * headDim);
        weighted.close();
        return output.forward(context);
    }

    private NDArray splitHeads(NDArray t, long b, long l) {
        return t.reshape(b, l, heads, headDim).transpose(0, 2, 1, 3);
    }
}
