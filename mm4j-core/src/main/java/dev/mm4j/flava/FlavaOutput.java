package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import dev.mm4j.nn.Linear;

/**
 * Outputs of {@link FlavaModel#forward}: each encoder's output when it ran (else null), and the
 * projected image/text embeddings, computed only when asked.
 */
public final class FlavaOutput {
    private final EncoderOutput image;
    private final EncoderOutput text;
    private final EncoderOutput multimodal;
    private final Linear imageProjection;
    private final Linear textProjection;

    FlavaOutput(EncoderOutput image, EncoderOutput text, EncoderOutput multimodal, Linear imageProjection,
            Linear textProjection) {
        this.image = image;
        this.text = text;
        this.multimodal = multimodal;
        this.imageProjection = imageProjection;
        this.textProjection = textProjection;
    }

    public EncoderOutput image() {
        return image;
    }

    public EncoderOutput text() {
        return text;
    }

    public EncoderOutput multimodal() {
        return multimodal;
    }

    /** {@code image_projection(image.last_hidden_state[:, 0])}. */
    public NDArray projectedImageEmbeddings() {
        return imageProjection.forward(image.lastHiddenState().get(new NDIndex(":, 0")));
    }

    /** {@code text_projection(text.last_hidden_state[:, 0])}. */
    public NDArray projectedTextEmbeddings() {
        return textProjection.forward(text.lastHiddenState().get(new NDIndex(":, 0")));
    }
}
