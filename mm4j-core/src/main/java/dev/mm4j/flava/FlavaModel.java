package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.mm4j.nn.ActivationCheckpointing;
import dev.mm4j.nn.Linear;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;

/**
 * FLAVA: an image encoder, a text encoder, and a multimodal encoder over both, joined by linear
 * projections ({@code image_to_mm_projection}, {@code text_to_mm_projection}); plus the contrastive
 * projections ({@code image_projection}, {@code text_projection}).
 *
 * <p>Unlike the reference, each encoder runs at most once per forward and nothing is computed that
 * the caller does not read (the reference encodes the image twice and always computes poolers).
 */
public final class FlavaModel extends Module {
    private final ImageEncoder imageEncoder;
    private final TextEncoder textEncoder;
    private final MultimodalEncoder mmEncoder;
    private final Linear imageToMmProjection;
    private final Linear textToMmProjection;
    private final Linear textProjection;
    private final Linear imageProjection;
    private final boolean maskTextPaddingInMultimodal;
    private final ActivationCheckpointing checkpointing;

    public FlavaModel(FlavaConfig c) {
        this.maskTextPaddingInMultimodal = c.maskTextPaddingInMultimodal;
        this.checkpointing = new ActivationCheckpointing(c.activationCheckpointing, !c.bf16KeepActivations);
        this.imageEncoder = child("image_encoder", new ImageEncoder(c, checkpointing));
        this.textEncoder = child("text_encoder", new TextEncoder(c, checkpointing));
        this.mmEncoder = child("mm_encoder", new MultimodalEncoder(c, checkpointing));
        this.imageToMmProjection = child("image_to_mm_projection",
                Linear.torchDefault(c.imageHiddenSize, c.multimodalHiddenSize));
        this.textToMmProjection = child("text_to_mm_projection",
                Linear.torchDefault(c.textHiddenSize, c.multimodalHiddenSize));
        this.textProjection = child("text_projection", Linear.torchDefault(c.textHiddenSize, c.textAndImageProjSize));
        this.imageProjection = child("image_projection",
                Linear.torchDefault(c.imageHiddenSize, c.textAndImageProjSize));
    }

    /**
     * @param image (B, C, H, W) float in [0, 1], or null
     * @param text (B, L) int64 token ids (pad id = padding), or null
     * @param required which embedding is needed; null picks MM when both inputs are given
     */
    public FlavaOutput forward(NDArray image, NDArray text, RequiredEmbedding required) {
        return forward(image, text, required, 0);
    }

    /**
     * The same; {@code multimodalTokens} &gt; 0: the multimodal encoder's output only for its first
     * {@code multimodalTokens} tokens (1: its CLS token, all that a classifier reads; its last layer then runs for
     * those tokens alone, the same numbers for them), 0: every token.
     */
    public FlavaOutput forward(NDArray image, NDArray text, RequiredEmbedding required, int multimodalTokens) {
        if (required == null) {
            required = image != null && text != null ? RequiredEmbedding.MM
                    : image != null ? RequiredEmbedding.IMAGE : RequiredEmbedding.TEXT;
        }
        checkpointing.clear(); // one forward, then at most one backward()
        boolean imageRuns = image != null && required != RequiredEmbedding.TEXT;
        boolean textRuns = text != null && required != RequiredEmbedding.IMAGE;
        if (required == RequiredEmbedding.MM && !(imageRuns && textRuns)) {
            throw new IllegalArgumentException("the multimodal embedding needs both image and text");
        }
        if (checkpointing.plans(precision())) {
            long keys = textRuns ? textEncoder.keys(text) : 0;
            plan(required == RequiredEmbedding.MM ? text : null, keys,
                    imageRuns ? imageEncoder.run(image.getShape().get(0)) : null,
                    textRuns ? textEncoder.run(text, 1, keys) : null);
        }
        EncoderOutput img = imageRuns ? imageEncoder.forward(image) : null;
        EncoderOutput txt = textRuns ? textEncoder.forward(text) : null;
        EncoderOutput mm = null;
        if (required == RequiredEmbedding.MM) {
            mm = multimodal(img, txt, text, multimodalTokens);
        }
        return new FlavaOutput(img, txt, mm, imageProjection, textProjection);
    }

    /**
     * What {@link #forwardMasked} gives: the unmasked image and text encoders' outputs with their projections
     * ({@code unmasked}, whose encoders are null where they did not run) and the masked encoders' outputs (null
     * where they did not run): TorchMultimodal's {@code FLAVAOutput} with {@code skip_unmasked_mm_encoder=True}.
     */
    public record MaskedOutput(FlavaOutput unmasked, EncoderOutput imageMasked, EncoderOutput textMasked,
            EncoderOutput multimodalMasked) {}

    /**
     * TorchMultimodal's {@code FLAVAModel.forward(image, text, image_patches_mask, text_masked, required_embedding)}
     * as pretraining calls it: the image encoder on the image with its masked patches replaced by the mask token,
     * the text encoder on the masked text, and the multimodal encoder over both when {@code required} is MM (null
     * picks MM when image and text are given, as the reference). The unmasked image and text run only when
     * {@code unmasked} is set (the reference runs them always; only the global contrastive loss reads them).
     * Without a patch mask the masked image is the unmasked one (the same numbers, computed once). Where an encoder
     * runs on both the unmasked and the masked input, the two go through its layers in one run, stacked along the
     * batch: the same numbers, with each layer's weights read (and cast to bf16) once and larger matrix products.
     *
     * @param image (B, C, H, W) in [0, 1], or null
     * @param text (B, L) token ids, or null
     * @param imagePatchesMask (B, patches) 1 = masked, or null
     * @param textMasked (B, L) token ids with the masked positions replaced, or null
     */
    public MaskedOutput forwardMasked(NDArray image, NDArray text, NDArray imagePatchesMask, NDArray textMasked,
            RequiredEmbedding required, boolean unmasked) {
        if (required == null) {
            required = image != null && text != null ? RequiredEmbedding.MM
                    : image != null ? RequiredEmbedding.IMAGE : RequiredEmbedding.TEXT;
        }
        checkpointing.clear(); // one forward, then at most one backward()
        boolean imageWanted = image != null && required != RequiredEmbedding.TEXT;
        boolean textWanted = required != RequiredEmbedding.IMAGE;
        if (checkpointing.plans(precision())) { // the runs below: the image once or twice (stacked or not), the texts
            long b = image != null ? image.getShape().get(0) : textMasked != null ? textMasked.getShape().get(0) : 0;
            int images = !imageWanted ? 0 : unmasked && imagePatchesMask != null ? 2 : 1;
            boolean textRuns = textWanted && unmasked && text != null;
            boolean maskedRuns = textWanted && textMasked != null;
            boolean textsStacked = textRuns && maskedRuns;
            long keys = textRuns ? textEncoder.keys(text) : 0;
            long maskedKeys = maskedRuns ? textEncoder.keys(textMasked) : 0;
            plan(required == RequiredEmbedding.MM && imageWanted ? textMasked : null, maskedKeys,
                    images > 0 ? imageEncoder.run(images * b) : null,
                    textsStacked ? textEncoder.run(text, 2, Math.max(keys, maskedKeys)) : null,
                    textRuns && !textsStacked ? textEncoder.run(text, 1, keys) : null,
                    maskedRuns && !textsStacked ? textEncoder.run(textMasked, 1, maskedKeys) : null);
        }
        EncoderOutput img = null;
        EncoderOutput imgMasked = null;
        if (imageWanted && unmasked && imagePatchesMask != null) { // both: one run of the layers on 2B samples
            EncoderOutput[] both = imageEncoder.forwardUnmaskedAndMasked(image, imagePatchesMask);
            img = both[0];
            imgMasked = both[1];
        } else if (imageWanted) {
            img = unmasked ? imageEncoder.forward(image) : null;
            imgMasked = imagePatchesMask == null && img != null ? img : imageEncoder.forward(image, imagePatchesMask);
        }
        EncoderOutput txt = null;
        EncoderOutput txtMasked = null;
        if (textWanted && unmasked && text != null && textMasked != null) {
            EncoderOutput[] both = textEncoder.forwardBoth(text, textMasked);
            txt = both[0];
            txtMasked = both[1];
        } else if (textWanted) {
            txt = unmasked && text != null ? textEncoder.forward(text) : null;
            txtMasked = textMasked != null ? textEncoder.forward(textMasked) : null;
        }
        EncoderOutput mm = required == RequiredEmbedding.MM && imgMasked != null && txtMasked != null
                ? multimodal(imgMasked, txtMasked, textMasked, 0) : null;
        return new MaskedOutput(new FlavaOutput(img, txt, null, imageProjection, textProjection), imgMasked, txtMasked, mm);
    }

    /** The image encoder alone: pixels (B, C, H, W) in [0, 1] -> its output, reusable with {@link #forward(EncoderOutput, NDArray)}. */
    public EncoderOutput encodeImage(NDArray pixels) {
        return imageEncoder.forward(pixels);
    }

    /**
     * TorchMultimodal's {@code encode_image(image, projection=True)[1]}: the image encoder's CLS output (after its
     * final layer norm) through {@code image_projection}, (B, text_and_image_proj_size), not normalised.
     */
    public NDArray imageEmbeddings(NDArray pixels) {
        return new FlavaOutput(imageEncoder.forward(pixels), null, null, imageProjection, textProjection)
                .projectedImageEmbeddings();
    }

    /**
     * TorchMultimodal's {@code encode_text(text, projection=True)[1]}: the text encoder's CLS output (padding
     * masked by pad id) through {@code text_projection}, (B, text_and_image_proj_size), not normalised.
     */
    public NDArray textEmbeddings(NDArray inputIds) {
        return new FlavaOutput(null, textEncoder.forward(inputIds), null, imageProjection, textProjection)
                .projectedTextEmbeddings();
    }

    /**
     * Hidden states that {@link #encodeImage} gave ({@code hiddenBeforeNorm()}, possibly rows of several
     * calls stacked) as the image encoder's output again.
     */
    public EncoderOutput imageOutput(NDArray hiddenBeforeNorm) {
        return imageEncoder.output(hiddenBeforeNorm);
    }

    /** The multimodal forward from an already encoded image (e.g. cached): the image encoder is not run. */
    public FlavaOutput forward(EncoderOutput image, NDArray text) {
        return forward(image, text, 0);
    }

    /** The same, the multimodal output for the first {@code multimodalTokens} tokens only (0: all; see above). */
    public FlavaOutput forward(EncoderOutput image, NDArray text, int multimodalTokens) {
        EncoderOutput txt = textEncoder.forward(text);
        return new FlavaOutput(image, txt, multimodal(image, txt, text, multimodalTokens), imageProjection,
                textProjection);
    }

    /**
     * Plans which bf16 encoders the coming forward pass recomputes ({@link ActivationCheckpointing#plan}) from its
     * runs ({@code runs}, null where an encoder does not run) and the multimodal encoder's over the image and
     * {@code multimodalText} when it is not null, whose keys are {@code multimodalTextKeys} ({@code TextEncoder#keys}).
     */
    private void plan(NDArray multimodalText, long multimodalTextKeys, ActivationCheckpointing.Run... runs) {
        List<ActivationCheckpointing.Run> all = new ArrayList<>();
        for (ActivationCheckpointing.Run r : runs) {
            if (r != null) {
                all.add(r);
            }
        }
        if (multimodalText != null) {
            long imageTokens = imageEncoder.tokens();
            long tokens = imageTokens + multimodalText.getShape().get(1);
            long keys = maskTextPaddingInMultimodal ? 1 + imageTokens + multimodalTextKeys : 1 + tokens;
            all.add(mmEncoder.run(multimodalText.getShape().get(0), tokens, keys));
        }
        checkpointing.plan(all);
    }

    private EncoderOutput multimodal(EncoderOutput img, EncoderOutput txt, NDArray text, int outputTokens) {
        NDArray fused = NDArrays.concat(new NDList(
                imageToMmProjection.forward(img.hiddenBeforeNorm()),
                textToMmProjection.forward(txt.hiddenBeforeNorm())), 1);
        return mmEncoder.forward(fused, maskTextPaddingInMultimodal ? multimodalMask(img, text) : null, outputTokens);
    }

    /**
     * The backward pass of {@code loss} (computed from this model's last forward, gradients recorded): the loss's
     * own, then the layers that ran checkpointed, recomputed (every layer with activation checkpointing; in bf16 also
     * the ones that would keep more than float32, see {@code ActivationCheckpointing}) and back-propagated.
     * {@code layerDone} gets each recomputed layer's parameters once their gradients are complete, and with
     * {@link #layerByLayer} every other layer's too ({@link ActivationCheckpointing#backward(Consumer)}).
     */
    public void backward(NDArray loss, Consumer<Collection<Parameter>> layerDone) {
        checkpointing.backward(loss, layerDone);
    }

    /**
     * Whether the next forward passes under gradient recording prepare {@link #backward} to hand every layer to
     * {@code layerDone}, also the layers that keep their activations (each layer's graph recorded apart; see
     * {@link ActivationCheckpointing#layerByLayer}). Only for a backward pass through {@link #backward}.
     */
    public void layerByLayer(boolean on) {
        checkpointing.layerByLayer(on);
    }

    /** Additive mask over [mm CLS, image tokens, text tokens] that hides text padding. */
    private NDArray multimodalMask(EncoderOutput img, NDArray text) {
        long b = text.getShape().get(0);
        long imageTokens = img.hiddenBeforeNorm().getShape().get(1);
        NDArray keepImage = text.getManager().ones(new Shape(b, 1 + imageTokens), DataType.FLOAT32);
        NDArray keep = NDArrays.concat(new NDList(keepImage, textEncoder.keepMask(text)), 1);
        return TextEncoder.additiveMask(keep);
    }
}
