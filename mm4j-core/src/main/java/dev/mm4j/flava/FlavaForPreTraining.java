package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import dev.mm4j.data.PretrainingBatch;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * FLAVA for pretraining, TorchMultimodal's {@code FLAVAForPreTraining}: the model ({@code model.*}, a
 * {@link FlavaModel}), the frozen image codebook that gives the masked image modelling targets
 * ({@code image_codebook.*}, a {@link DalleVaeEncoder}) and the five objectives with their heads ({@code loss.*}, a
 * {@link FlavaPretrainingLoss}). Parameter names are that state dict's, so the tutorial's
 * {@code flava_for_pretraining_unified_text_encoder.pt} loads strictly.
 *
 * <p>What runs follows the inputs, as the reference's {@code forward}: image and text together run the multimodal
 * encoder over the masked inputs (ITM, MMM text, MMM image on the matching pairs, and the global contrastive loss on
 * the unmasked ones; the unimodal MLM/MIM are then skipped); an image alone gives MIM, a text alone MLM.
 *
 * <p>As a {@link LossModel} over the loader's {@link PretrainingBatch}es it is what the shared training loop trains
 * for {@code task: pretraining} ({@code train.Pretrainer}): each batch comes from one source and trains that source's
 * objectives; the loss's parts are the weighted losses computed, by TorchMultimodal's names ({@code mlm_loss},
 * {@code mim_loss}, {@code itm_loss}, {@code mmm_text_loss}, {@code mmm_image_loss}, {@code global_contrastive_loss}).
 */
public final class FlavaForPreTraining extends Module implements LossModel<PretrainingBatch> {
    private final FlavaConfig config;
    private final FlavaModel model;
    private final DalleVaeEncoder imageCodebook;
    private final FlavaPretrainingLoss loss;

    public FlavaForPreTraining(FlavaConfig config) {
        this.config = validForPretraining(config.validate());
        this.model = child("model", new FlavaModel(config));
        this.imageCodebook = child("image_codebook", new DalleVaeEncoder(config));
        this.loss = child("loss", new FlavaPretrainingLoss(config));
        setPrecision(config.precision);
    }

    /**
     * What pretraining needs beyond {@link FlavaConfig#validate}: the unimodal MIM/MLM heads are as wide as the
     * multimodal encoder and read the image/text encoders' outputs, and the codebook's token grid is the patch grid.
     */
    private static FlavaConfig validForPretraining(FlavaConfig c) {
        if (c.imageHiddenSize != c.multimodalHiddenSize || c.textHiddenSize != c.multimodalHiddenSize) {
            throw new IllegalArgumentException("invalid FLAVA pretraining config: image_hidden_size (" + c.imageHiddenSize
                    + ") and text_hidden_size (" + c.textHiddenSize + ") must equal multimodal_hidden_size ("
                    + c.multimodalHiddenSize + "): the MIM and MLM heads read those encoders' outputs");
        }
        if (c.codebookGridSize() != c.imageSize / c.patchSize) {
            throw new IllegalArgumentException("invalid FLAVA pretraining config: codebook_image_size / 8 ("
                    + c.codebookGridSize() + ") must equal image_size / patch_size (" + c.imageSize / c.patchSize
                    + "): one codebook token per patch");
        }
        return c;
    }

    /** Builds the model and allocates its parameters, randomly initialized, on {@code manager}'s device. */
    public static FlavaForPreTraining create(FlavaConfig config, NDManager manager) {
        FlavaForPreTraining m = new FlavaForPreTraining(config);
        m.allocate(manager);
        return m;
    }

    public FlavaConfig config() {
        return config;
    }

    public FlavaModel flava() {
        return model;
    }

    @Override
    public void layerByLayer(boolean on) {
        model.layerByLayer(on);
    }

    public DalleVaeEncoder imageCodebook() {
        return imageCodebook;
    }

    public FlavaPretrainingLoss loss() {
        return loss;
    }

    /**
     * The parameters that training updates: all but the frozen codebook's ({@code image_codebook.*}), each once
     * (a tied weight under its first name). What an optimizer takes.
     */
    public Map<String, Parameter> trainableParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        namedParameters().forEach((n, p) -> {
            if (!n.startsWith("image_codebook.")) {
                out.put(n, p);
            }
        });
        return out;
    }

    /**
     * The pretraining inputs of {@code FLAVAForPreTraining.forward}, any of them null.
     *
     * @param image (B, C, H, W) in [0, 1]
     * @param imageForCodebook (B, C, S, S) already through the logit-Laplace map ({@link DalleVaeEncoder#mapPixels})
     * @param text (B, L) token ids (pad id = padding), unmasked: for the contrastive loss
     * @param textMasked (B, L) the same with masked positions replaced (e.g. by the mask token id)
     * @param mlmLabels (B, L) the original ids at masked text positions, {@link FlavaPretrainingLoss#IGNORE_INDEX} elsewhere
     * @param imagePatchesMask (B, patches) or (B, h, w): 1 = masked patch, row-major over the patch grid
     * @param itmLabels (B) 1 = the image and text match, 0 = not
     * @param required which encoders run; null picks MM when image and text are given, as the reference
     */
    public record Inputs(NDArray image, NDArray imageForCodebook, NDArray text, NDArray textMasked, NDArray mlmLabels,
            NDArray imagePatchesMask, NDArray itmLabels, RequiredEmbedding required) {
        public Inputs(NDArray image, NDArray imageForCodebook, NDArray text, NDArray textMasked, NDArray mlmLabels,
                NDArray imagePatchesMask, NDArray itmLabels) {
            this(image, imageForCodebook, text, textMasked, mlmLabels, imagePatchesMask, itmLabels, null);
        }
    }

    /**
     * What a forward gives: each weighted loss (null where not computed), their sum ({@code total}, null when none
     * was), the codebook's tokens with the unmasked patches set to {@link FlavaPretrainingLoss#IGNORE_INDEX}
     * ({@code mimLabels}, null without codebook input) and the model's outputs.
     */
    public record Output(FlavaPretrainingLoss.Losses losses, NDArray total, NDArray mimLabels,
            FlavaModel.MaskedOutput flava) {}

    public Output forward(Inputs in) {
        NDArray mask = in.imagePatchesMask() == null ? null
                : in.imagePatchesMask().reshape(in.imagePatchesMask().getShape().get(0), -1);
        NDArray imageLabels = null;
        if (in.imageForCodebook() != null) {
            if (mask == null) {
                throw new IllegalArgumentException("image_for_codebook needs image_patches_mask (which patches are masked)");
            }
            NDArray tokens = imageCodebook.forward(in.imageForCodebook());
            tokens = tokens.reshape(tokens.getShape().get(0), -1);
            if (!tokens.getShape().equals(mask.getShape())) {
                throw new IllegalArgumentException("the codebook's token grid " + tokens.getShape()
                        + " does not match image_patches_mask " + mask.getShape()
                        + " (codebook_image_size / 8 must equal image_size / patch_size)");
            }
            NDArray masked = mask.toType(DataType.BOOLEAN, false);
            imageLabels = NDArrays.where(masked, tokens,
                    tokens.getManager().full(tokens.getShape(), FlavaPretrainingLoss.IGNORE_INDEX, DataType.INT64));
        }
        RequiredEmbedding required = in.required() != null ? in.required()
                : in.image() != null && in.text() != null ? RequiredEmbedding.MM
                : in.image() != null ? RequiredEmbedding.IMAGE : RequiredEmbedding.TEXT;
        boolean contrastive = required == RequiredEmbedding.MM && in.image() != null && in.text() != null
                && config.contrastiveLossWeight > 0;
        FlavaModel.MaskedOutput out = model.forwardMasked(in.image(), in.text(), mask, in.textMasked(), required,
                contrastive);
        FlavaOutput unmasked = out.unmasked();
        FlavaPretrainingLoss.Losses losses = loss.forward(
                out.imageMasked() == null ? null : out.imageMasked().lastHiddenState(),
                out.textMasked() == null ? null : out.textMasked().lastHiddenState(),
                out.multimodalMasked() == null ? null : out.multimodalMasked().lastHiddenState(),
                in.itmLabels(), imageLabels, in.mlmLabels(),
                contrastive ? unmasked.projectedImageEmbeddings() : null,
                contrastive ? unmasked.projectedTextEmbeddings() : null);
        return new Output(losses, losses.total(), imageLabels, out);
    }

    /**
     * The forward pass over one loader batch, its inputs made in {@code step}'s memory: the batch's fields as
     * {@link Inputs} (a field its source does not make stays null), the weighted losses as the parts.
     *
     * @throws IllegalArgumentException when no loss is computed for the batch (every weight of its source's objectives 0)
     */
    @Override
    public Loss forward(ModelStep step, PretrainingBatch b) {
        int n = b.size();
        NDArray image = b.image() == null ? null : step.images(b.image(), n, b.imageSize(), b.imageSize());
        NDArray forCodebook = b.imageForCodebook() == null ? null
                : step.images(b.imageForCodebook(), n, b.codebookSize(), b.codebookSize());
        NDArray mask = b.imagePatchesMask() == null ? null
                : step.tokens(b.imagePatchesMask(), n, b.patchRows() * b.patchCols());
        NDArray text = b.text() == null ? null : step.tokens(b.text(), n, b.seqLen());
        NDArray textMasked = b.textMasked() == null ? null : step.tokens(b.textMasked(), n, b.seqLen());
        NDArray mlmLabels = b.mlmLabels() == null ? null : step.tokens(b.mlmLabels(), n, b.seqLen());
        NDArray itm = b.itmLabels() == null ? null : step.labels(b.itmLabels());
        Output out = forward(new Inputs(image, forCodebook, text, textMasked, mlmLabels, mask, itm));
        if (out.total() == null) {
            throw new IllegalArgumentException("no pretraining loss for a batch of source " + b.source() + " ("
                    + b.kind().name().toLowerCase(java.util.Locale.ROOT)
                    + "): the weights of all its objectives are 0");
        }
        return new Loss(out.total(), out.losses().named());
    }

    /**
     * The backward pass of {@code loss} from this model's last forward, inside {@code gc}: gradients of every
     * trainable parameter, including the layers that ran checkpointed ({@link FlavaConfig#activationCheckpointing}).
     */
    public void backward(GradientCollector gc, NDArray loss) {
        backward(gc, loss, params -> {});
    }

    /**
     * The same backward pass; {@code layerDone} gets the parameters of each layer that ran checkpointed as soon as
     * their gradients are complete (after its earliest run: the image and text encoders may run twice a forward).
     * Complete for this backward pass: where a step runs several forwards (e.g. the pairs, image and text cases), each
     * with its backward, gradients add up and only the last backward's {@code layerDone} sees a layer's final ones.
     */
    @Override
    public void backward(GradientCollector gc, NDArray loss, Consumer<Collection<Parameter>> layerDone) {
        model.backward(loss, layerDone);
    }
}
