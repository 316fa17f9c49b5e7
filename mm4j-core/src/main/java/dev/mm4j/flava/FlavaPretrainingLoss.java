package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import dev.mm4j.nn.Activation;
import dev.mm4j.nn.Init;
import dev.mm4j.nn.LayerNorm;
import dev.mm4j.nn.Linear;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Pooler;
import dev.mm4j.nn.Precision;
import dev.mm4j.nn.TorchOps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * TorchMultimodal's {@code FLAVAPretrainingLoss}: FLAVA's five objectives and their heads, named as its state dict
 * ({@code contrastive_loss.logit_scale}, {@code mlm_loss.cls.*}, {@code mim_loss.cls.*}, {@code mmm_loss.mlm.cls.*},
 * {@code mmm_loss.mim.cls.*}, {@code itm_loss.pooler.*}, {@code itm_loss.cls.seq_relationship.*}).
 *
 * <ul>
 *   <li>MIM / MLM (unimodal): the masked image's patch tokens / the masked text's tokens through a
 *       {@link MaskedPredictionHead}, cross-entropy over the masked positions (label {@link #IGNORE_INDEX} elsewhere);
 *       computed only when the multimodal encoder did not run.
 *   <li>ITM: {@code tanh(dense(mm[:, 0]))} then a two-way head, cross-entropy against the match labels.
 *   <li>MMM text / image: the multimodal encoder's text tokens / image patch tokens (after its CLS and the image's
 *       CLS) through their own heads, over the matching pairs only (ITM label not 0; all pairs when none is).
 *   <li>Global contrastive: the projected image and text CLS embeddings, L2-normalised, logits scaled by
 *       exp({@code logit_scale}) (clamped in place into [0, 4.6052] first), over the matching pairs' rows.
 * </ul>
 * Each loss is multiplied by its weight; a loss whose weight is 0 is not computed.
 */
public final class FlavaPretrainingLoss extends Module {
    /** Label of positions that no loss counts (FLAVAPretrainingLoss's {@code ignore_index}). */
    public static final int IGNORE_INDEX = -1;

    private final GlobalContrastiveLoss contrastiveLoss;
    private final MaskedPredictionLoss mlmLoss;
    private final MaskedPredictionLoss mimLoss;
    private final MmmLoss mmmLoss;
    private final ItmLoss itmLoss;
    private final double mlmWeight;
    private final double mimWeight;
    private final double contrastiveLossWeight;
    private final double mmmImageLossWeight;
    private final double mmmTextLossWeight;
    private final double itmLossWeight;

    public FlavaPretrainingLoss(FlavaConfig c) {
        int hidden = c.multimodalHiddenSize;
        double eps = c.pretrainingLayerNormEps;
        this.contrastiveLoss = child("contrastive_loss", new GlobalContrastiveLoss());
        this.mlmLoss = child("mlm_loss", new MaskedPredictionLoss(hidden, c.vocabSize, eps));
        this.mimLoss = child("mim_loss", new MaskedPredictionLoss(hidden, c.imageVocabSize, eps));
        this.mmmLoss = child("mmm_loss", new MmmLoss(hidden, c.vocabSize, c.imageVocabSize, eps));
        this.itmLoss = child("itm_loss", new ItmLoss(hidden));
        this.mlmWeight = c.mlmWeight;
        this.mimWeight = c.mimWeight;
        this.contrastiveLossWeight = c.contrastiveLossWeight;
        this.mmmImageLossWeight = c.mmmImageLossWeight;
        this.mmmTextLossWeight = c.mmmTextLossWeight;
        this.itmLossWeight = c.itmLossWeight;
    }

    /** The global contrastive loss (its learnable {@code logit_scale}). */
    public GlobalContrastiveLoss contrastiveLoss() {
        return contrastiveLoss;
    }

    /** Each weighted loss (null where not computed), as {@code FLAVAPretrainingLossesCollection}. */
    public record Losses(NDArray mmmTextLoss, NDArray mmmImageLoss, NDArray mimLoss, NDArray mlmLoss, NDArray itmLoss,
            NDArray globalContrastiveLoss) {
        /** The losses that were computed, by TorchMultimodal's names, in its order. */
        public Map<String, NDArray> named() {
            Map<String, NDArray> m = new LinkedHashMap<>();
            put(m, "mmm_text_loss", mmmTextLoss);
            put(m, "mmm_image_loss", mmmImageLoss);
            put(m, "mim_loss", mimLoss);
            put(m, "mlm_loss", mlmLoss);
            put(m, "itm_loss", itmLoss);
            put(m, "global_contrastive_loss", globalContrastiveLoss);
            return m;
        }

        /** The sum of the computed losses (what pretraining back-propagates), or null when none was. */
        public NDArray total() {
            NDArray sum = null;
            for (NDArray l : named().values()) {
                sum = sum == null ? l : sum.add(l);
            }
            return sum;
        }

        private static void put(Map<String, NDArray> m, String k, NDArray v) {
            if (v != null) {
                m.put(k, v);
            }
        }
    }

    /**
     * {@code FLAVAPretrainingLoss.forward} on what it reads (every argument may be null).
     *
     * @param imageMasked (B, 1 + patches, D) the masked image encoder's last hidden state (after its final norm)
     * @param textMasked (B, L, D) the masked text encoder's last hidden state
     * @param multimodalMasked (B, 1 + 1 + patches + L, D) the multimodal encoder's over the masked inputs
     * @param itmLabels (B) 1 = matching pair, 0 = not
     * @param mimLabels (B, patches) codebook tokens of the masked patches, {@link #IGNORE_INDEX} elsewhere
     * @param mlmLabels (B, L) token ids of the masked text positions, {@link #IGNORE_INDEX} elsewhere
     * @param projectedImage (B, P) {@code image_projection} of the unmasked image's CLS
     * @param projectedText (B, P) {@code text_projection} of the unmasked text's CLS
     */
    public Losses forward(NDArray imageMasked, NDArray textMasked, NDArray multimodalMasked, NDArray itmLabels,
            NDArray mimLabels, NDArray mlmLabels, NDArray projectedImage, NDArray projectedText) {
        NDArray mim = null;
        NDArray mlm = null;
        NDArray itm = null;
        NDArray mmmText = null;
        NDArray mmmImage = null;
        NDArray contrastive = null;
        if (imageMasked != null && mimWeight > 0 && multimodalMasked == null) {
            long start = mimLabels != null ? length(imageMasked) - mimLabels.getShape().get(1) : 1; // drops the CLS
            mim = weighted(mimLoss.forward(tail(imageMasked, start), mimLabels, null), mimWeight);
        }
        if (textMasked != null && mlmWeight > 0 && multimodalMasked == null) {
            long start = mlmLabels != null ? length(textMasked) - mlmLabels.getShape().get(1) : 1;
            mlm = weighted(mlmLoss.forward(tail(textMasked, start), mlmLabels, null), mlmWeight);
        }
        long[] pairs = null; // the matching pairs' rows, which MMM and the contrastive loss count
        if (multimodalMasked != null && itmLossWeight > 0) {
            pairs = positiveRows(itmLabels, multimodalMasked.getShape().get(0));
            itm = weighted(itmLoss.forward(multimodalMasked, itmLabels), itmLossWeight);
        }
        if (multimodalMasked != null && mmmTextLossWeight > 0) {
            long textTokens = mlmLabels != null ? mlmLabels.getShape().get(1) : length(textMasked) - 1;
            mmmText = weighted(mmmLoss.mlm.forward(tail(multimodalMasked, length(multimodalMasked) - textTokens),
                    mlmLabels, pairs), mmmTextLossWeight);
        }
        if (multimodalMasked != null && mmmImageLossWeight > 0) {
            // from 2: the multimodal encoder's CLS, then the image encoder's
            long patches = mimLabels != null ? mimLabels.getShape().get(1) : length(imageMasked) - 1;
            NDArray forImage = multimodalMasked.get(new NDIndex(":, 2:" + (2 + patches)));
            mmmImage = weighted(mmmLoss.mim.forward(forImage, mimLabels, pairs), mmmImageLossWeight);
        }
        if (projectedImage != null && projectedText != null && contrastiveLossWeight > 0) {
            contrastive = weighted(contrastiveLoss.forward(projectedImage, projectedText, pairs), contrastiveLossWeight);
        }
        return new Losses(mmmText, mmmImage, mim, mlm, itm, contrastive);
    }

    private static long length(NDArray sequence) {
        return sequence.getShape().get(1);
    }

    private static NDArray tail(NDArray sequence, long start) {
        return start == 0 ? sequence : sequence.get(new NDIndex(":, " + start + ":"));
    }

    private static NDArray weighted(NDArray loss, double weight) {
        return weight == 1.0 ? loss : loss.mul((float) weight);
    }

    /** Rows whose ITM label is not 0; every row when none is or there are no labels (the reference's pos_mask). */
    static long[] positiveRows(NDArray itmLabels, long batch) {
        List<Long> rows = new ArrayList<>();
        if (itmLabels != null) {
            long[] l = itmLabels.toType(DataType.INT64, false).toLongArray();
            for (int i = 0; i < l.length; i++) {
                if (l[i] != 0) {
                    rows.add((long) i);
                }
            }
        }
        if (rows.isEmpty()) {
            for (long i = 0; i < batch; i++) {
                rows.add(i);
            }
        }
        return rows.stream().mapToLong(Long::longValue).toArray();
    }

    /** Rows {@code rows} of {@code x} (N, ...) along axis 0, differentiable (an embedding lookup into x). */
    static NDArray rows(NDArray x, long[] rows) {
        Shape s = x.getShape();
        NDArray flat = x.reshape(s.get(0), -1);
        NDArray idx = x.getManager().create(rows);
        NDArray picked = ai.djl.nn.core.Embedding.embedding(idx, flat, SparseFormat.DENSE).singletonOrThrow();
        long[] out = s.getShape().clone();
        out[0] = rows.length;
        return picked.reshape(new Shape(out));
    }

    /** Mean cross-entropy of logits (N, C) against labels (N), positions labelled {@link #IGNORE_INDEX} not counted. */
    static NDArray crossEntropy(NDArray logits, NDArray labels) {
        NDArray valid = labels.neq(IGNORE_INDEX);
        NDArray safe = NDArrays.where(valid, labels, labels.zerosLike());
        NDArray picked = logits.logSoftmax(-1).gather(safe.reshape(-1, 1), 1).reshape(-1);
        NDArray v = valid.toType(DataType.FLOAT32, false);
        return picked.mul(v).sum().div(v.sum()).neg();
    }

    /** {@code FLAVAGlobalContrastiveLoss}: the learnable log-temperature {@code logit_scale} and the loss. */
    public static final class GlobalContrastiveLoss extends Module {
        /** The reference clamps the log-temperature into [0, 4.6052] in place before each use. */
        public static final float LOGIT_SCALE_MAX = 4.6052f;

        private final Parameter logitScale;

        GlobalContrastiveLoss() {
            this.logitScale = parameter("logit_scale", Init.constant(ContrastiveLossWithTemperature.LOGIT_SCALE_INIT));
        }

        /** The current log-temperature after the in-place clamp into [0, 4.6052] that each forward does. */
        public float logitScale() {
            float v = logitScale.array().getFloat();
            float clamped = Math.min(LOGIT_SCALE_MAX, Math.max(0f, v));
            if (clamped != v) {
                NDManager m = logitScale.array().getManager();
                try (NDManager tmp = m.newSubManager()) {
                    logitScale.copyFrom(tmp.full(new Shape(), clamped, DataType.FLOAT32));
                }
            }
            return clamped;
        }

        /**
         * @param image (B, P) projected image embeddings, not normalised
         * @param text (B, P) projected text embeddings of the same pairs
         * @param pairs rows that count (the matching pairs), or null for all
         */
        public NDArray forward(NDArray image, NDArray text, long[] pairs) {
            logitScale();
            NDArray t = ContrastiveLossWithTemperature.normalize(text);
            NDArray i = ContrastiveLossWithTemperature.normalize(image);
            NDArray temperature = logitScale.array().exp();
            NDArray logitsA = i.matMul(t.transpose()).mul(temperature);
            NDArray logitsB = t.matMul(i.transpose()).mul(temperature);
            NDArray labels = image.getManager().arange(0, image.getShape().get(0), 1, DataType.INT64);
            if (pairs != null && pairs.length < image.getShape().get(0)) {
                logitsA = rows(logitsA, pairs);
                logitsB = rows(logitsB, pairs);
                labels = image.getManager().create(pairs);
            }
            return FlavaForClassification.crossEntropy(logitsA, labels)
                    .add(FlavaForClassification.crossEntropy(logitsB, labels)).div(2f);
        }
    }

    /** {@code MaskedPredictionLoss}: a {@link MaskedPredictionHead} ({@code cls}) and cross-entropy on the masked positions. */
    public static final class MaskedPredictionLoss extends Module {
        private final MaskedPredictionHead cls;

        MaskedPredictionLoss(int hidden, int vocab, double eps) {
            this.cls = child("cls", new MaskedPredictionHead(hidden, vocab, eps));
        }

        /**
         * @param hidden (B, L, D)
         * @param labels (B, L) targets, {@link #IGNORE_INDEX} where not masked; null: the head on every position and
         *     a zero loss (an error in training mode, as the reference's assertion)
         * @param pairs rows that count, or null for all
         */
        NDArray forward(NDArray hidden, NDArray labels, long[] pairs) {
            if (labels == null) {
                if (isTraining()) {
                    throw new IllegalArgumentException("masked labels are needed in training mode");
                }
                return cls.forward(hidden).sum().mul(0f);
            }
            long[] s = hidden.getShape().getShape();
            long[] l = labels.toType(DataType.INT64, false).toLongArray();
            if (l.length != s[0] * s[1]) {
                throw new IllegalArgumentException("masked labels " + labels.getShape() + " do not fit the sequence "
                        + hidden.getShape());
            }
            boolean[] counted = new boolean[(int) s[0]];
            if (pairs == null) {
                Arrays.fill(counted, true);
            } else {
                for (long r : pairs) {
                    counted[(int) r] = true;
                }
            }
            List<Long> positions = new ArrayList<>();
            List<Long> targets = new ArrayList<>();
            for (int b = 0; b < s[0]; b++) {
                for (int t = 0; t < s[1]; t++) {
                    long y = l[(int) (b * s[1] + t)];
                    if (counted[b] && y != IGNORE_INDEX) {
                        positions.add(b * s[1] + t);
                        targets.add(y);
                    }
                }
            }
            NDManager m = hidden.getManager();
            NDArray masked = rows(hidden.reshape(s[0] * s[1], s[2]),
                    positions.stream().mapToLong(Long::longValue).toArray());
            NDArray y = m.create(targets.stream().mapToLong(Long::longValue).toArray());
            // the mean over no position is NaN, as the reference's
            return FlavaForClassification.crossEntropy(cls.forward(masked), y);
        }
    }

    /**
     * {@code MaskedPredictionHead}: {@code decoder(layer_norm(gelu(dense(x))))}, the decoder's bias being the head's
     * {@code bias} (tied, so the state dict holds it as {@code bias} and {@code decoder.bias}).
     */
    public static final class MaskedPredictionHead extends Module {
        private final Linear dense;
        private final LayerNorm layerNorm;
        private final Decoder decoder;

        MaskedPredictionHead(int hidden, int vocab, double eps) {
            Parameter bias = parameter("bias", Init.zeros(), vocab);
            this.dense = child("dense", Linear.torchDefault(hidden, hidden));
            this.layerNorm = child("layer_norm", new LayerNorm(hidden, eps));
            this.decoder = child("decoder", new Decoder(hidden, vocab, bias));
        }

        public NDArray forward(NDArray x) {
            return decoder.forward(layerNorm.forward(Activation.GELU.apply(dense.forward(x))));
        }
    }

    /** {@code nn.Linear(hidden, vocab, bias=False)} whose bias is then set to the head's: {@code weight}, {@code bias}. */
    static final class Decoder extends Module {
        private final Parameter weight;
        private final Parameter bias;

        Decoder(int hidden, int vocab, Parameter bias) {
            double bound = 1.0 / Math.sqrt(hidden);
            this.weight = parameter("weight", Init.uniform(bound), vocab, hidden);
            this.bias = bias;
            tie("bias", bias);
        }

        NDArray forward(NDArray x) {
            if (precision() == Precision.BF16) {
                return TorchOps.on(x).linear(Precision.BF16, x, weight.array(), bias.array());
            }
            return ai.djl.nn.core.Linear.linear(x, weight.array(), bias.array()).singletonOrThrow();
        }
    }

    /** {@code mmm_loss}: the multimodal masked objectives' own heads, {@code mlm} (text) and {@code mim} (image). */
    static final class MmmLoss extends Module {
        final MaskedPredictionLoss mlm;
        final MaskedPredictionLoss mim;

        MmmLoss(int hidden, int textVocab, int imageVocab, double eps) {
            this.mlm = child("mlm", new MaskedPredictionLoss(hidden, textVocab, eps));
            this.mim = child("mim", new MaskedPredictionLoss(hidden, imageVocab, eps));
        }
    }

    /** {@code ITMLoss}: {@code pooler} (tanh(dense(x[:, 0]))) and {@code cls.seq_relationship}, a two-way head. */
    static final class ItmLoss extends Module {
        private final Pooler pooler;
        private final TwoWayHead cls;

        ItmLoss(int hidden) {
            this.pooler = child("pooler", new Pooler(hidden, 0.02));
            this.cls = child("cls", new TwoWayHead(hidden));
        }

        /** Mean cross-entropy of the match scores against {@code labels} (-1 not counted); labels null: zero. */
        NDArray forward(NDArray multimodal, NDArray labels) {
            if (labels == null && isTraining()) {
                throw new IllegalArgumentException("itm labels are needed in training mode");
            }
            NDArray pooled = pooler.forward(multimodal);
            NDArray scores = cls.forward(pooled);
            return labels == null ? pooled.sum().mul(0f)
                    : crossEntropy(scores.reshape(-1, 2), labels.toType(DataType.INT64, false).reshape(-1));
        }
    }

    /** {@code TwoWayHead}: {@code seq_relationship}, Linear(hidden, 2). */
    static final class TwoWayHead extends Module {
        private final Linear seqRelationship;

        TwoWayHead(int hidden) {
            this.seqRelationship = child("seq_relationship", Linear.torchDefault(hidden, 2));
        }

        NDArray forward(NDArray pooled) {
            return seqRelationship.forward(pooled);
        }
    }
}
