package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import dev.mm4j.nn.Activation;
import dev.mm4j.nn.ActivationCheckpointing;
import dev.mm4j.nn.Embedding;
import dev.mm4j.nn.LayerNorm;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Pooler;
import dev.mm4j.nn.TransformerEncoder;

/** FLAVA's text encoder: BERT embeddings (word + position + token type) then pre-norm layers. */
public final class TextEncoder extends Module {
    private final Embeddings embeddings;
    private final TransformerEncoder encoder;
    private final LayerNorm layernorm;
    private final int padTokenId;

    /** @param checkpointing shared by the model's encoders; it decides which layers run checkpointed */
    public TextEncoder(FlavaConfig c, ActivationCheckpointing checkpointing) {
        this.embeddings = child("embeddings", new Embeddings(c));
        this.encoder = child("encoder", new TransformerEncoder(c.textNumHiddenLayers, c.textHiddenSize,
                c.textNumAttentionHeads, c.textIntermediateSize, Activation.GELU, c.textLayerNormEps,
                c.initializerRange, checkpointing));
        this.layernorm = child("layernorm", new LayerNorm(c.textHiddenSize, c.textLayerNormEps));
        child("pooler", new Pooler(c.textHiddenSize, c.initializerRange));
        this.padTokenId = c.padTokenId;
    }

    /**
     * The layers' run on {@code ids} (B, L) token ids attending to {@code keys} keys ({@link #keys}; of both where two
     * texts run stacked, {@link #forwardBoth}: {@code stacks} 2), for {@code ActivationCheckpointing#plan}.
     */
    ActivationCheckpointing.Run run(NDArray ids, int stacks, long keys) {
        return encoder.run(stacks * ids.getShape().get(0), ids.getShape().get(1), keys);
    }

    /** How many tokens the attention takes as keys for {@code inputIds}: up to the last one any row keeps. */
    long keys(NDArray inputIds) {
        return keptPrefix(keepMask(inputIds));
    }

    /** input ids (B, L) int64 -> hidden states (B, L, D); keys equal to the pad id are masked. */
    public EncoderOutput forward(NDArray inputIds) {
        return new EncoderOutput(encoder.forward(embeddings.forward(inputIds), paddingMask(inputIds)), layernorm);
    }

    /**
     * Two texts of the same shape (e.g. the unmasked and the masked one) in one run of the layers, stacked along the
     * batch: {@link #forward} of each, with each layer run once on 2B samples. The same numbers: every layer works
     * on each sample alone (its padding masked as its own).
     */
    public EncoderOutput[] forwardBoth(NDArray inputIds, NDArray otherIds) {
        NDArray ids = NDArrays.concat(new NDList(inputIds, otherIds), 0);
        return EncoderOutput.split(encoder.forward(embeddings.forward(ids), paddingMask(ids), true),
                inputIds.getShape().get(0), layernorm);
    }

    /** 1 where a token is real, 0 where it is padding: (B, L) float32. */
    public NDArray keepMask(NDArray inputIds) {
        return inputIds.neq(padTokenId).toType(DataType.FLOAT32, false);
    }

    /** Additive attention mask (B, 1, 1, L): 0 for real tokens, -inf for padding. */
    NDArray paddingMask(NDArray inputIds) {
        return additiveMask(keepMask(inputIds));
    }

    /**
     * Turns a keep mask (B, L) of 1/0 into an additive mask (B, 1, 1, K) of 0/-inf over the first K tokens, K the
     * last token any row keeps + 1: the tokens after it, padding in every row, are no keys at all (the attention
     * projects keys and values only for the mask's K tokens, see {@code MultiHeadAttention}). The same result as
     * masking them, without the work: text padded to 512 with questions of ~24 tokens attends to ~24 keys.
     */
    static NDArray additiveMask(NDArray keep) {
        long[] s = keep.getShape().getShape();
        long keys = keptPrefix(keep);
        NDArray kept = keys < s[1] ? keep.get(new NDIndex(":, :" + keys)) : keep;
        NDManager m = keep.getManager();
        NDArray neg = m.full(kept.getShape(), Float.NEGATIVE_INFINITY, DataType.FLOAT32);
        NDArray zero = m.zeros(kept.getShape(), DataType.FLOAT32);
        return ai.djl.ndarray.NDArrays.where(kept.gt(0.5f), zero, neg).reshape(s[0], 1, 1, keys);
    }

    /** 1 + the last position any row keeps; all L when no row keeps any (attention then does what it did). */
    private static long keptPrefix(NDArray keep) {
        float[] any = keep.max(new int[] {0}).toFloatArray();
        for (int i = any.length - 1; i >= 0; i--) {
            if (any[i] > 0.5f) {
                return i + 1;
            }
        }
        return any.length;
    }

    /** {@code word_embeddings + position_embeddings + token_type_embeddings} -> {@code layer_norm}. */
    static final class Embeddings extends Module {
        private final Embedding wordEmbeddings;
        private final Embedding positionEmbeddings;
        private final Embedding tokenTypeEmbeddings;
        private final LayerNorm layerNorm;
        private final int maxPositions;

        Embeddings(FlavaConfig c) {
            this.wordEmbeddings = child("word_embeddings", new Embedding(c.vocabSize, c.textHiddenSize, c.initializerRange, c.padTokenId));
            this.positionEmbeddings = child("position_embeddings",
                    new Embedding(c.maxPositionEmbeddings, c.textHiddenSize, c.initializerRange));
            this.tokenTypeEmbeddings = child("token_type_embeddings",
                    new Embedding(c.typeVocabSize, c.textHiddenSize, c.initializerRange));
            this.layerNorm = child("layer_norm", new LayerNorm(c.textHiddenSize, c.textLayerNormEps));
            this.maxPositions = c.maxPositionEmbeddings;
        }

        NDArray forward(NDArray ids) {
            long len = ids.getShape().get(1);
            if (len > maxPositions) {
                throw new IllegalArgumentException(
                        "text of " + len + " tokens is longer than max_position_embeddings " + maxPositions);
            }
            NDManager m = ids.getManager();
            NDArray positions = m.arange(0, len, 1, DataType.INT64).expandDims(0);
            NDArray types = m.zeros(new ai.djl.ndarray.types.Shape(1, len), DataType.INT64);
            NDArray e = wordEmbeddings.forward(ids)
                    .add(positionEmbeddings.forward(positions))
                    .add(tokenTypeEmbeddings.forward(types));
            return layerNorm.forward(e);
        }
    }
}
