package dev.mm4j.data;

import java.util.List;

/**
 * One collated FLAVA pretraining batch on the host (no NDArrays), drawn from one source. Field names follow
 * {@code FLAVAForPreTraining.forward}'s arguments; a field a source does not make is null:
 * <ul>
 *   <li>{@link PretrainingSource.Kind#TEXT}: {@code textMasked}, {@code mlmLabels} (MLM);
 *   <li>{@link PretrainingSource.Kind#IMAGE}: {@code image}, {@code imageForCodebook}, {@code imagePatchesMask}
 *       (MIM);
 *   <li>{@link PretrainingSource.Kind#PAIRS}: all of them, with {@code text} the unmasked caption and
 *       {@code itmLabels} when the ITM probability is above 0 (contrastive, ITM, MMM).
 * </ul>
 *
 * @param kind what the source holds
 * @param source the source's name
 * @param step the loader's step this batch is (resume from {@code step + 1})
 * @param image {@code B*3*imageSize*imageSize}, normalised (the encoder's input)
 * @param imageSize the encoder input's side (224)
 * @param imageForCodebook {@code B*3*codebookSize*codebookSize}, in the codebook's pixel range [0.1, 0.9]
 * @param codebookSize the codebook input's side (112)
 * @param imagePatchesMask {@code B*patchRows*patchCols}, row-major over the patch grid, 1 = masked
 * @param patchRows rows of the patch grid (14)
 * @param patchCols columns of the patch grid (14)
 * @param text {@code B*seqLen} token ids, unmasked, padded with 0
 * @param textMasked {@code B*seqLen} token ids after BERT masking
 * @param mlmLabels {@code B*seqLen}: the original id where masked, {@link MlmMasking#IGNORE_INDEX} elsewhere
 * @param seqLen the padded text length
 * @param itmLabels {@code B}: 1 = the image's own caption, 0 = another sample's
 * @param origins the B records, for messages
 */
public record PretrainingBatch(
        PretrainingSource.Kind kind,
        String source,
        long step,
        float[] image,
        int imageSize,
        float[] imageForCodebook,
        int codebookSize,
        long[] imagePatchesMask,
        int patchRows,
        int patchCols,
        long[] text,
        long[] textMasked,
        long[] mlmLabels,
        int seqLen,
        long[] itmLabels,
        List<String> origins) {

    /** Number of samples B. */
    public int size() {
        return origins.size();
    }
}
