package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;

/**
 * Multi-head self-attention with query/key/value/output projections (with bias), scaled by
 * 1/sqrt(head_dim), softmax accumulated in float32 (PyTorch's fused attention kernel). The optional mask is additive, broadcastable to
 * (batch, heads, queries, keys): 0 where a key is attended, -inf where it is masked; it may cover only the first
 * K &le; L tokens, and the tokens after them are then no keys at all (neither projected nor attended).
 */
public final class MultiHeadAttention extends Module {
    private final Linear query;
    private final Linear key;
    private final Linear value;
    private final Linear output;
    private final int heads;

    public MultiHeadAttention(long dim, int heads, double initStd) {
        if (dim % heads != 0) {
            throw new IllegalArgumentException("hidden size " + dim + " not divisible by " + heads + " heads");
        }
        this.query = child("query", new Linear(dim, dim, initStd));
        this.key = child("key", new Linear(dim, dim, initStd));
        this.value = child("value", new Linear(dim, dim, initStd));
        this.output = child("output", new Linear(dim, dim, initStd));
        this.heads = heads;
    }

    /**
     * x: (B, L, D) -> (B, L, D), in one op of the {@link TorchOps} library: the projections, PyTorch's fused
     * {@code scaled_dot_product_attention} (no (B, H, L, L) score or probability arrays are kept for the
     * backward pass) and the output projection, the products in this module's {@link Precision}. bf16 on short
     * sequences computes the scores explicitly instead, where that is faster
     * ({@link TorchOps#BF16_EXPLICIT_ATTENTION_MAX_SCORES}).
     */
    public NDArray forward(NDArray x, NDArray additiveMask) {
        return forward(x, additiveMask, 0);
    }

    /**
     * The same for the first {@code queries} tokens only, (B, queries, D), every token still a key (e.g. the last layer
     * of an encoder whose reader takes only token 0); 0: every token.
     */
    public NDArray forward(NDArray x, NDArray additiveMask, int queries) {
        return TorchOps.on(x).attention(precision(), x, additiveMask, heads, queries,
                query.weight(), query.bias(), key.weight(), key.bias(), value.weight(), value.bias(),
                output.weight(), output.bias());
    }
}
