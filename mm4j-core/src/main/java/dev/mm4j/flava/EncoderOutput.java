package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import dev.mm4j.nn.LayerNorm;

/**
 * What an encoder gives: the last layer's hidden state before the final layer norm (what the
 * multimodal encoder consumes) and, computed only when asked, the normalized last hidden state.
 */
public final class EncoderOutput {
    private final NDArray hiddenBeforeNorm;
    private final LayerNorm finalNorm;
    private NDArray lastHiddenState;

    EncoderOutput(NDArray hiddenBeforeNorm, LayerNorm finalNorm) {
        this.hiddenBeforeNorm = hiddenBeforeNorm;
        this.finalNorm = finalNorm;
    }

    /** A run over two stacked batches of {@code first} and the rest samples, as the two outputs: {first, rest}. */
    static EncoderOutput[] split(NDArray hiddenBeforeNorm, long first, LayerNorm finalNorm) {
        return new EncoderOutput[] {
            new EncoderOutput(hiddenBeforeNorm.get(new NDIndex(":{}", first)), finalNorm),
            new EncoderOutput(hiddenBeforeNorm.get(new NDIndex("{}:", first)), finalNorm)};
    }

    /** (B, L, D): the last transformer layer's output, before the encoder's final layer norm. */
    public NDArray hiddenBeforeNorm() {
        return hiddenBeforeNorm;
    }

    /** (B, L, D): after the encoder's final layer norm ({@code last_hidden_state} in TorchMultimodal). */
    public NDArray lastHiddenState() {
        if (lastHiddenState == null) {
            lastHiddenState = finalNorm.forward(hiddenBeforeNorm);
        }
        return lastHiddenState;
    }
}
