package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import java.util.Collection;
import java.util.function.Consumer;

/**
 * FLAVA for image-text retrieval: the model's image and text embeddings (CLS through {@code image_projection} /
 * {@code text_projection}) trained with FLAVA's global contrastive loss. Parameter names are those of
 * TorchMultimodal's {@code FLAVAForPreTraining}: {@code model.*} and {@code loss.contrastive_loss.logit_scale},
 * so a pretraining checkpoint loads its projections and its learned temperature, and a classification
 * checkpoint ({@code model.*}, {@code classifier.*}) loads everything but the temperature.
 */
public final class FlavaForRetrieval extends FlavaWithHead implements LossModel<FlavaForRetrieval.Pairs> {
    private final ContrastiveLossWithTemperature contrastiveLoss;

    public FlavaForRetrieval(FlavaConfig config) {
        super(config);
        this.contrastiveLoss = child("loss", new Losses()).contrastive;
    }

    /** {@code FLAVAPretrainingLoss}'s place for the contrastive loss (its other losses are pretraining-only). */
    private static final class Losses extends Module {
        final ContrastiveLossWithTemperature contrastive = child("contrastive_loss", new ContrastiveLossWithTemperature());
    }

    /** Builds the model and allocates its parameters, randomly initialized, on {@code manager}'s device. */
    public static FlavaForRetrieval create(FlavaConfig config, NDManager manager) {
        return allocated(new FlavaForRetrieval(config), manager);
    }

    public ContrastiveLossWithTemperature contrastiveLoss() {
        return contrastiveLoss;
    }

    /** Image embeddings (B, P); L2-normalised when {@code normalize}. */
    public NDArray imageEmbeddings(NDArray pixels, boolean normalize) {
        NDArray e = model.imageEmbeddings(pixels);
        return normalize ? ContrastiveLossWithTemperature.normalize(e) : e;
    }

    /** Text embeddings (B, P) of token ids (B, L), 0 = padding; L2-normalised when {@code normalize}. */
    public NDArray textEmbeddings(NDArray inputIds, boolean normalize) {
        NDArray e = model.textEmbeddings(inputIds);
        return normalize ? ContrastiveLossWithTemperature.normalize(e) : e;
    }

    /**
     * The contrastive loss of B images and their B captions (row i of each is a pair), on L2-normalised
     * embeddings when {@code normalize} (FLAVA's pretraining, what fine-tuning uses: the logits are scaled cosine
     * similarities, the index's measure), else on the raw projections ({@code ContrastiveLossWithTemperature()}
     * called on them, as the parity fixture does).
     */
    public ContrastiveLossWithTemperature.Output forward(NDArray pixels, NDArray inputIds, boolean normalize) {
        return contrastiveLoss.forward(imageEmbeddings(pixels, normalize), textEmbeddings(inputIds, normalize));
    }

    /**
     * One training batch on the host: {@code size} images and their captions, row i of each a pair.
     *
     * @param images {@code size*3*height*width} floats, NCHW, the model's image transform applied
     * @param inputIds {@code size*seqLen} token ids, row-major, 0 = padding
     * @param epoch the epoch the batch belongs to
     * @param index the batch's number within its epoch (resume with the next one)
     */
    public record Pairs(float[] images, int height, int width, long[] inputIds, int seqLen, int size, int epoch,
            int index) {}

    /** The contrastive loss of a batch of pairs on L2-normalised embeddings (what fine-tuning optimises). */
    @Override
    public Loss forward(ModelStep step, Pairs batch) {
        return Loss.of(forward(step.images(batch.images(), batch.size(), batch.height(), batch.width()),
                step.tokens(batch.inputIds(), batch.size(), batch.seqLen()), true).loss());
    }

    /** The backward pass of {@code loss} from this model's last forward, checkpointed layers included. */
    public void backward(GradientCollector gc, NDArray loss) {
        backward(gc, loss, params -> {});
    }

    /**
     * The same backward pass; {@code layerDone} gets the parameters of each layer that ran checkpointed as soon as
     * their gradients are complete, before the rest of the backward pass.
     */
    @Override
    public void backward(GradientCollector gc, NDArray loss, Consumer<Collection<Parameter>> layerDone) {
        model.backward(loss, layerDone);
    }
}
