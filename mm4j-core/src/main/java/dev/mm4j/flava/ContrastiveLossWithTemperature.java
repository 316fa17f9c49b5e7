package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.mm4j.nn.Init;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;

/**
 * TorchMultimodal's {@code ContrastiveLossWithTemperature} (CLIP's, FLAVA's global contrastive loss): for a
 * batch of matching image/text pairs, logits = exp({@code logit_scale}) x image . text (and the transpose), the
 * mean of the image->text and text->image cross-entropies with the diagonal as targets. The learnable
 * log-temperature starts at ln(1/0.07) and is clamped into [ln 1, ln 100] before each use (in place, as the
 * reference does: the clamp itself has no gradient).
 *
 * <p>Like the reference module, it takes the embeddings as given: FLAVA's pretraining loss L2-normalises them
 * first (so the logits are scaled cosine similarities), which {@link FlavaForRetrieval#forward} does when asked.
 * The parity fixture (contrastive.json) calls the module on the raw projected embeddings, and so does its test.
 */
public final class ContrastiveLossWithTemperature extends Module {
    public static final double LOGIT_SCALE_INIT = Math.log(1 / 0.07);
    public static final double LOGIT_SCALE_MIN = Math.log(1);
    public static final double LOGIT_SCALE_MAX = Math.log(100);

    private final Parameter logitScale;

    public ContrastiveLossWithTemperature() {
        this.logitScale = parameter("logit_scale", Init.constant(LOGIT_SCALE_INIT));
    }

    /** The current log-temperature, clamped into [ln 1, ln 100] first (as every forward does). */
    public float logitScale() {
        float v = logitScale.array().getFloat();
        float clamped = (float) Math.min(LOGIT_SCALE_MAX, Math.max(LOGIT_SCALE_MIN, v));
        if (clamped != v) {
            NDManager m = logitScale.array().getManager();
            try (NDManager tmp = m.newSubManager()) {
                logitScale.copyFrom(tmp.full(new Shape(), clamped, DataType.FLOAT32));
            }
        }
        return clamped;
    }

    /** The loss and the image->text logits (B, B) it came from. */
    public record Output(NDArray loss, NDArray logitsPerImage) {}

    /**
     * @param image (B, D) image embeddings
     * @param text (B, D) embeddings of the matching captions (row i of each is a pair)
     */
    public Output forward(NDArray image, NDArray text) {
        logitScale();
        NDArray logits = image.matMul(text.transpose()).mul(logitScale.array().exp());
        NDManager m = image.getManager();
        NDArray targets = m.arange(0, image.getShape().get(0), 1, DataType.INT64);
        NDArray loss = FlavaForClassification.crossEntropy(logits, targets)
                .add(FlavaForClassification.crossEntropy(logits.transpose(), targets))
                .div(m.full(new Shape(), 2f, DataType.FLOAT32));
        return new Output(loss, logits);
    }

    /** {@code torch.nn.functional.normalize(x, dim=-1)}: x / max(||x||, 1e-12) along the last axis. */
    public static NDArray normalize(NDArray x) {
        NDArray norm = x.norm(new int[] {-1}, true);
        return x.div(norm.maximum(x.getManager().full(new Shape(), 1e-12f, DataType.FLOAT32)));
    }
}
