package dev.mm4j.data;

import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * Image-text matching negatives as TorchMultimodal's {@code VLTransform} makes them: with probability
 * {@code itm_probability} (0.1, {@code VLDataModule}'s default) a sample's caption is replaced by the caption of a
 * sample drawn uniformly from the whole dataset, drawn again while it equals the sample's own caption (so a
 * negative's caption always differs from its own text); {@code itm_labels} is 1 for a kept pair, 0 for a
 * negative. With {@code itm_probability} 0 the reference emits no {@code itm_labels} at all.
 */
public final class ItmNegatives {
    /** {@code VLDataModule}'s {@code itm_probability}. */
    public static final double DEFAULT_ITM_PROBABILITY = 0.1;
    /** A choice that keeps the sample's own caption. */
    public static final int POSITIVE = -1;
    private static final int MAX_REDRAWS = 10_000;

    private final double probability;

    public ItmNegatives() {
        this(DEFAULT_ITM_PROBABILITY);
    }

    public ItmNegatives(double itmProbability) {
        if (!(itmProbability >= 0 && itmProbability <= 1)) {
            throw new IllegalArgumentException("itm_probability must be in [0, 1], got " + itmProbability);
        }
        this.probability = itmProbability;
    }

    public double itmProbability() {
        return probability;
    }

    /** Whether batches carry {@code itm_labels} (the reference adds them only when the probability is above 0). */
    public boolean labelsPresent() {
        return probability > 0;
    }

    /**
     * For each of {@code samples} (indices into {@code captions}): {@link #POSITIVE}, or the index of the dataset
     * sample whose caption replaces its own.
     */
    public int[] draw(List<String> captions, int[] samples, Random rnd) {
        Objects.requireNonNull(captions, "captions");
        int[] out = new int[samples.length];
        for (int i = 0; i < samples.length; i++) {
            out[i] = POSITIVE;
            if (rnd.nextDouble() < probability) {
                out[i] = other(captions, samples[i], rnd);
            }
        }
        return out;
    }

    private static int other(List<String> captions, int sample, Random rnd) {
        String own = captions.get(sample);
        for (int t = 0; t < MAX_REDRAWS; t++) {
            int j = rnd.nextInt(captions.size());
            if (!captions.get(j).equals(own)) {
                return j;
            }
        }
        throw new IllegalStateException("no caption different from \"" + own + "\" found in " + MAX_REDRAWS
                + " draws over " + captions.size() + " captions; image-text matching needs captions that differ");
    }

    /** {@code itm_labels} for choices: 1 where {@link #POSITIVE}, else 0. */
    public static long[] labels(int[] choices) {
        long[] l = new long[choices.length];
        for (int i = 0; i < choices.length; i++) {
            l[i] = choices[i] == POSITIVE ? 1 : 0;
        }
        return l;
    }
}
