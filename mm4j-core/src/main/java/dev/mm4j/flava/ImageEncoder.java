package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import dev.mm4j.nn.Activation;
import dev.mm4j.nn.ActivationCheckpointing;
import dev.mm4j.nn.Conv2d;
import dev.mm4j.nn.Init;
import dev.mm4j.nn.LayerNorm;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Pooler;
import dev.mm4j.nn.TransformerEncoder;

/** FLAVA's image encoder: a ViT. Patches (Conv2d kernel = stride = patch) + CLS + positions, then layers. */
public final class ImageEncoder extends Module {
    private final Embeddings embeddings;
    private final TransformerEncoder encoder;
    private final LayerNorm layernorm;
    /** CLS and the patches: the tokens of every image (images of another size are refused). */
    private final long tokens;

    /** @param checkpointing shared by the model's encoders; it decides which layers run checkpointed */
    public ImageEncoder(FlavaConfig c, ActivationCheckpointing checkpointing) {
        this.tokens = 1 + c.numPatches();
        this.embeddings = child("embeddings", new Embeddings(c));
        this.encoder = child("encoder", new TransformerEncoder(c.imageNumHiddenLayers, c.imageHiddenSize,
                c.imageNumAttentionHeads, c.imageIntermediateSize, Activation.GELU, c.imageLayerNormEps,
                c.initializerRange, checkpointing));
        this.layernorm = child("layernorm", new LayerNorm(c.imageHiddenSize, c.imageLayerNormEps));
        child("pooler", new Pooler(c.imageHiddenSize, c.initializerRange));
    }

    /** CLS and the patches: how many tokens each image has. */
    long tokens() {
        return tokens;
    }

    /** The layers' run on {@code samples} images (for {@code ActivationCheckpointing#plan}). */
    ActivationCheckpointing.Run run(long samples) {
        return encoder.run(samples, tokens, tokens);
    }

    /** pixels (B, C, H, W) in [0, 1] -> hidden states (B, 1 + patches, D). */
    public EncoderOutput forward(NDArray pixels) {
        return forward(pixels, null);
    }

    /**
     * The same with masked image modelling: patches where {@code patchesMask} (B, patches; 1 = masked, row-major
     * over the patch grid) is set are replaced by {@code mask_token} before the positions are added. Null: none.
     */
    public EncoderOutput forward(NDArray pixels, NDArray patchesMask) {
        return output(encoder.forward(embeddings.forward(pixels, patchesMask), null));
    }

    /**
     * The unmasked and the masked image in one run of the layers: {@link #forward(NDArray)} and
     * {@link #forward(NDArray, NDArray)} on the same pixels, their embeddings stacked along the batch (the patches
     * projected once), so each layer runs once on 2B samples and its weights are cast once. The same numbers: every
     * layer works on each sample alone.
     *
     * @return {unmasked, masked}
     */
    public EncoderOutput[] forwardUnmaskedAndMasked(NDArray pixels, NDArray patchesMask) {
        NDArray patches = embeddings.patches(pixels);
        NDArray both = NDArrays.concat(new NDList(embeddings.embed(patches, null), embeddings.embed(patches, patchesMask)), 0);
        return EncoderOutput.split(encoder.forward(both, null, true), pixels.getShape().get(0), layernorm);
    }

    /** Hidden states (B, 1 + patches, D) before the final norm, as this encoder's output. */
    EncoderOutput output(NDArray hiddenBeforeNorm) {
        return new EncoderOutput(hiddenBeforeNorm, layernorm);
    }

    /** {@code cls_token}, {@code position_embeddings}, {@code mask_token} and the patch projection. */
    static final class Embeddings extends Module {
        private final Parameter clsToken;
        private final Parameter positionEmbeddings;
        private final Parameter maskToken;
        private final PatchEmbeddings patchEmbeddings;
        private final int imageSize;

        Embeddings(FlavaConfig c) {
            this.clsToken = parameter("cls_token", Init.zeros(), 1, 1, c.imageHiddenSize);
            this.positionEmbeddings = parameter("position_embeddings", Init.normal(c.initializerRange), 1,
                    c.numPatches() + 1, c.imageHiddenSize);
            this.maskToken = c.useImageMasking
                    ? parameter("mask_token", Init.zeros(), 1, 1, c.imageHiddenSize) // masked pretraining only
                    : null;
            this.patchEmbeddings = child("patch_embeddings", new PatchEmbeddings(c));
            this.imageSize = c.imageSize;
        }

        NDArray forward(NDArray pixels, NDArray patchesMask) {
            return embed(patches(pixels), patchesMask);
        }

        /** The projected patches (B, P, D) of {@code pixels}. */
        NDArray patches(NDArray pixels) {
            if (pixels.getShape().get(2) != imageSize || pixels.getShape().get(3) != imageSize) {
                throw new IllegalArgumentException("input image size " + pixels.getShape() + " doesn't match model ("
                        + imageSize + "*" + imageSize + ")");
            }
            return patchEmbeddings.forward(pixels);
        }

        /** CLS, the patches (the masked ones replaced by {@code mask_token} where {@code patchesMask} is set), positions. */
        NDArray embed(NDArray patches, NDArray patchesMask) {
            long b = patches.getShape().get(0);
            if (patchesMask != null && maskToken != null) {
                // embeddings * (1 - w) + mask_token * w, as the reference (a mask without use_image_masking is ignored)
                NDArray w = patchesMask.reshape(b, -1).toType(DataType.FLOAT32, false).expandDims(-1);
                patches = patches.mul(w.neg().add(1f)).add(maskToken.array().mul(w));
            }
            NDArray cls = clsToken.array().broadcast(b, 1, patches.getShape().get(2));
            return NDArrays.concat(new NDList(cls, patches), 1).add(positionEmbeddings.array());
        }
    }

    /** {@code projection}: Conv2d(C, D, kernel = stride = patch), flattened to a token sequence. */
    static final class PatchEmbeddings extends Module {
        private final Conv2d projection;

        PatchEmbeddings(FlavaConfig c) {
            this.projection = child("projection",
                    new Conv2d(c.numChannels, c.imageHiddenSize, c.patchSize, c.patchSize, c.initializerRange));
        }

        NDArray forward(NDArray pixels) {
            return projection.forward(pixels).flatten(2, 3).transpose(0, 2, 1);
        }
    }
}
