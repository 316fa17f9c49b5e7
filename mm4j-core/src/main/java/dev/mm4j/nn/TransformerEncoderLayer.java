package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import java.util.List;

/**
 * Pre-norm transformer layer: {@code x = x + Attn(LN_a(x)); x = x + FF(LN_f(x))} with FF =
 * Linear(d, ff) -> activation -> Linear(ff, d).
 */
public final class TransformerEncoderLayer extends Module {
    private final MultiHeadAttention attention;
    private final Mlp feedforward;
    private final LayerNorm attentionLayernorm;
    private final LayerNorm feedforwardLayernorm;

    public TransformerEncoderLayer(long dim, int heads, long intermediate, Activation activation, double eps,
            double initStd) {
        this.attention = child("attention", new MultiHeadAttention(dim, heads, initStd));
        this.feedforward = child("feedforward",
                new Mlp(dim, dim, List.of(intermediate), activation, 0.0, (i, o) -> new Linear(i, o, initStd)));
        this.attentionLayernorm = child("attention_layernorm", new LayerNorm(dim, eps));
        this.feedforwardLayernorm = child("feedforward_layernorm", new LayerNorm(dim, eps));
    }

    public NDArray forward(NDArray x, NDArray additiveMask) {
        return forward(x, additiveMask, 0);
    }

    /**
     * The layer's output for the first {@code queries} tokens only, (B, queries, D): every token is still a key of the
     * attention, the rest (query projection, attention output, MLP) runs on those tokens alone; 0: every token.
     */
    public NDArray forward(NDArray x, NDArray additiveMask, int queries) {
        NDArray attended = attention.forward(attentionLayernorm.forward(x), additiveMask, queries);
        NDArray h = (queries > 0 ? x.get(new NDIndex(":, :{}", queries)) : x).add(attended);
        attended.close(); // the sum keeps nothing for the backward pass: free it now, not at the end of the step
        NDArray fed = feedforward.forward(feedforwardLayernorm.forward(h));
        // not in place: the layer norm's backward needs h as it was
        NDArray out = h.add(fed);
        fed.close();
        return out;
    }
}
