package dev.mm4j.flava;

/**
 * Floating-point operations of FLAVA for classification, counted analytically from the config
 * (a multiply-add = 2 FLOP; matrix multiplies only: layer norms, softmax and activations are a few
 * percent and not counted). A training step is counted as 3x the forward (forward + backward).
 */
public final class FlavaFlops {
    private FlavaFlops() {}

    /** Forward FLOP of one transformer layer over {@code len} tokens attending to the first {@code keys}. */
    static double layer(long len, long keys, long dim, long ff) {
        return 4.0 * len * dim * dim // query and output projections
                + 4.0 * keys * dim * dim // key and value projections (only the tokens that are keys)
                + 4.0 * len * keys * dim // scores and weighted sum
                + 4.0 * len * dim * ff; // feed-forward
    }

    /**
     * Forward FLOP (multimodal head) for {@code batch} samples with text of {@code textLen} tokens of which the text
     * encoder attends to the first {@code textKeys} (the padding after the longest question is no key:
     * {@code TextEncoder.additiveMask}); the multimodal encoder attends to all its tokens (the tutorial's reference
     * behaviour; with the padding masked the text is as long as the longest question), its last layer for the CLS
     * token alone, all that the classifier reads ({@code FlavaForClassification.HEAD_TOKENS}).
     */
    public static double forward(FlavaConfig c, long batch, long textLen, long textKeys) {
        long patches = c.numPatches();
        long imageLen = patches + 1;
        double image = 2.0 * patches * c.imageHiddenSize * c.numChannels * c.patchSize * c.patchSize
                + c.imageNumHiddenLayers * layer(imageLen, imageLen, c.imageHiddenSize, c.imageIntermediateSize);
        double text = c.textNumHiddenLayers * layer(textLen, textKeys, c.textHiddenSize, c.textIntermediateSize);
        long mmLen = 1 + imageLen + textLen;
        double mm = 2.0 * imageLen * c.imageHiddenSize * c.multimodalHiddenSize
                + 2.0 * textLen * c.textHiddenSize * c.multimodalHiddenSize
                + (c.multimodalNumHiddenLayers - 1) * layer(mmLen, mmLen, c.multimodalHiddenSize, c.multimodalIntermediateSize)
                + layer(FlavaForClassification.HEAD_TOKENS, mmLen, c.multimodalHiddenSize, c.multimodalIntermediateSize);
        double head = 0;
        long in = c.classifierInputDim();
        for (int h : c.classifierHiddenSizes) {
            head += 2.0 * in * h;
            in = h;
        }
        head += 2.0 * in * c.numClasses;
        return batch * (image + text + mm + head);
    }

    /** Forward + backward (3x forward), the text encoder attending to {@code textKeys} keys. */
    public static double trainStep(FlavaConfig c, long batch, long textLen, long textKeys) {
        return 3 * forward(c, batch, textLen, textKeys);
    }
}
