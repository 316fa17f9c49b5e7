package dev.mm4j.data;

import java.util.List;

/**
 * One collated batch on the host (no NDArrays; the trainer copies these into tensors).
 *
 * @param images {@code B*3*height*width} floats, NCHW, values in [0,1]
 * @param inputIds {@code B*seqLen} token ids, row-major, 0 = padding
 * @param seqLen the padded question length L (maxLength for FIXED padding, the longest question for DYNAMIC)
 * @param labels {@code B} class indices (majority answer's vocab index; 0 = unknown / no answers)
 * @param samples the B samples, in batch order
 * @param height image height H
 * @param width image width W
 * @param epoch the epoch this batch belongs to
 * @param index the batch number within the epoch: it covers positions {@code [index*batchSize, (index+1)*batchSize)}
 *     of the epoch order (minus skipped records); resume with {@code startBatch = index + 1}
 */
public record Batch(
        float[] images,
        long[] inputIds,
        int seqLen,
        long[] labels,
        List<VqaSample> samples,
        int height,
        int width,
        int epoch,
        int index) {

    /** Number of samples B (can be below the batch size when records were skipped or at the end). */
    public int size() {
        return samples.size();
    }
}
