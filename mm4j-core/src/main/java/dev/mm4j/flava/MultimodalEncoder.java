package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import dev.mm4j.nn.Activation;
import dev.mm4j.nn.ActivationCheckpointing;
import dev.mm4j.nn.Init;
import dev.mm4j.nn.LayerNorm;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Pooler;
import dev.mm4j.nn.TransformerEncoder;

/** FLAVA's multimodal encoder: its own CLS token, then pre-norm layers over [image tokens, text tokens]. */
public final class MultimodalEncoder extends Module {
    private final Parameter clsToken;
    private final TransformerEncoder encoder;
    private final LayerNorm layernorm;

    /** @param checkpointing shared by the model's encoders; it decides which layers run checkpointed */
    public MultimodalEncoder(FlavaConfig c, ActivationCheckpointing checkpointing) {
        this.clsToken = parameter("cls_token", Init.zeros(), 1, 1, c.multimodalHiddenSize);
        this.encoder = child("encoder", new TransformerEncoder(c.multimodalNumHiddenLayers, c.multimodalHiddenSize,
                c.multimodalNumAttentionHeads, c.multimodalIntermediateSize, Activation.GELU,
                c.multimodalLayerNormEps, c.initializerRange, checkpointing));
        this.layernorm = child("layernorm", new LayerNorm(c.multimodalHiddenSize, c.multimodalLayerNormEps));
        child("pooler", new Pooler(c.multimodalHiddenSize, c.initializerRange));
    }

    /** The layers' run on {@code batch} samples of {@code fused} tokens (its CLS added) attending to {@code keys} keys. */
    ActivationCheckpointing.Run run(long batch, long fused, long keys) {
        return encoder.run(batch, 1 + fused, keys);
    }

    /**
     * @param fused (B, L, D) projected image then text tokens
     * @param additiveMask null (the reference: every token attended, text padding included) or
     *     (B, 1, 1, 1 + L) with -inf on keys to ignore
     */
    public EncoderOutput forward(NDArray fused, NDArray additiveMask) {
        return forward(fused, additiveMask, 0);
    }

    /**
     * The same, the output only for the first {@code outputTokens} tokens when {@code outputTokens} &gt; 0 (its CLS
     * token alone for 1: what a classifier reads; the last layer then runs for those tokens only), else every token.
     */
    public EncoderOutput forward(NDArray fused, NDArray additiveMask, int outputTokens) {
        long b = fused.getShape().get(0);
        NDArray cls = clsToken.array().broadcast(b, 1, fused.getShape().get(2));
        NDArray h = NDArrays.concat(new NDList(cls, fused), 1);
        return new EncoderOutput(encoder.forward(h, additiveMask, false, outputTokens), layernorm);
    }
}
