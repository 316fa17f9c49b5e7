package dev.mm4j.data;

import java.util.List;
import java.util.Random;

/**
 * BEiT's block masking for masked image modelling: TorchMultimodal's {@code ImageMaskingGenerator}, line for line,
 * with Java's {@link Random} in place of Python's {@code random}. Rectangular blocks of
 * {@code [min_num_patches, max_num_patches]} patches (target area drawn uniformly) with a log-uniform aspect ratio
 * in {@code [min_aspect, max_aspect]} are added until {@code num_masking_patches} patches are masked or a block
 * cannot be placed in 10 tries; a block may overlap earlier ones but must add at least one new patch and at most
 * what is left to mask, so the count never exceeds {@code num_masking_patches}.
 *
 * <p>Defaults are {@code FLAVAImageTransform}'s: a 14x14 patch grid (224 / 16), 75 patches, blocks of at least 16
 * patches, at most 75, aspect ratios in [0.3, 1/0.3]. The mask is row-major over the patch grid
 * ({@code image_patches_mask}: 1 = masked).
 */
public final class BlockMasking {
    public static final int DEFAULT_WINDOW = 14;
    public static final int DEFAULT_NUM_MASKING_PATCHES = 75;
    public static final int DEFAULT_MIN_NUM_PATCHES = 16;
    public static final double DEFAULT_MIN_ASPECT = 0.3;
    private static final int TRIES = 10;

    /** One block the generator placed (rows {@code [top, top+h)}, columns {@code [left, left+w)}), and its draws. */
    public record Block(int top, int left, int h, int w, double targetArea, double aspectRatio, int added) {}

    private final int height;
    private final int width;
    private final int numMaskingPatches;
    private final int minNumPatches;
    private final int maxNumPatches;
    private final double logAspectMin;
    private final double logAspectMax;

    /** FLAVAImageTransform's generator: 14x14, 75 patches, min 16, max 75, aspect [0.3, 1/0.3]. */
    public BlockMasking() {
        this(DEFAULT_WINDOW, DEFAULT_WINDOW, DEFAULT_NUM_MASKING_PATCHES, DEFAULT_MIN_NUM_PATCHES, null,
                DEFAULT_MIN_ASPECT, null);
    }

    /**
     * @param maxNumPatches null = {@code numMaskingPatches} (the reference's {@code None})
     * @param maxAspect null = {@code 1 / minAspect}
     */
    public BlockMasking(int height, int width, int numMaskingPatches, int minNumPatches, Integer maxNumPatches,
            double minAspect, Double maxAspect) {
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("mask window must be at least 1x1, got " + height + "x" + width);
        }
        if (numMaskingPatches < 0 || numMaskingPatches > height * width) {
            throw new IllegalArgumentException("num_masking_patches must be in [0, " + height * width + "], got "
                    + numMaskingPatches);
        }
        int max = maxNumPatches == null ? numMaskingPatches : maxNumPatches;
        if (minNumPatches < 0 || max < minNumPatches) {
            throw new IllegalArgumentException("need 0 <= min_num_patches <= max_num_patches, got " + minNumPatches
                    + " and " + max);
        }
        if (!(minAspect > 0)) {
            throw new IllegalArgumentException("min_aspect must be > 0, got " + minAspect);
        }
        // Python: max_aspect = max_aspect or 1 / min_aspect
        double maxA = maxAspect == null || maxAspect == 0 ? 1 / minAspect : maxAspect;
        this.height = height;
        this.width = width;
        this.numMaskingPatches = numMaskingPatches;
        this.minNumPatches = minNumPatches;
        this.maxNumPatches = max;
        this.logAspectMin = Math.log(minAspect);
        this.logAspectMax = Math.log(maxA);
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    public int numPatches() {
        return height * width;
    }

    public int numMaskingPatches() {
        return numMaskingPatches;
    }

    public int minNumPatches() {
        return minNumPatches;
    }

    public int maxNumPatches() {
        return maxNumPatches;
    }

    /** [log(min_aspect), log(max_aspect)]. */
    public double[] logAspectRatio() {
        return new double[] {logAspectMin, logAspectMax};
    }

    /** A mask, row-major, 1 = masked. */
    public long[] draw(Random rnd) {
        return draw(rnd, null);
    }

    /** A mask; each placed block is added to {@code blocks} when it is not null. */
    public long[] draw(Random rnd, List<Block> blocks) {
        long[] mask = new long[height * width];
        int count = 0;
        while (count < numMaskingPatches) {
            int maxMask = Math.min(numMaskingPatches - count, maxNumPatches);
            int delta = maskOnce(mask, maxMask, rnd, blocks);
            if (delta == 0) {
                break;
            }
            count += delta;
        }
        return mask;
    }

    private int maskOnce(long[] mask, int maxMaskPatches, Random rnd, List<Block> blocks) {
        int delta = 0;
        for (int attempt = 0; attempt < TRIES; attempt++) {
            double targetArea = uniform(rnd, minNumPatches, maxMaskPatches);
            double aspect = Math.exp(uniform(rnd, logAspectMin, logAspectMax));
            int h = (int) Math.rint(Math.sqrt(targetArea * aspect));
            int w = (int) Math.rint(Math.sqrt(targetArea / aspect));
            if (w < width && h < height) {
                int top = randint(rnd, 0, height - h);
                int left = randint(rnd, 0, width - w);
                int masked = 0;
                for (int i = top; i < top + h; i++) {
                    for (int j = left; j < left + w; j++) {
                        masked += (int) mask[i * width + j];
                    }
                }
                int fresh = h * w - masked;
                if (0 < fresh && fresh <= maxMaskPatches) {
                    for (int i = top; i < top + h; i++) {
                        for (int j = left; j < left + w; j++) {
                            if (mask[i * width + j] == 0) {
                                mask[i * width + j] = 1;
                                delta++;
                            }
                        }
                    }
                    if (blocks != null) {
                        blocks.add(new Block(top, left, h, w, targetArea, aspect, delta));
                    }
                }
                if (delta > 0) {
                    break;
                }
            }
        }
        return delta;
    }

    /** Python's {@code random.uniform(a, b)}: {@code a + (b - a) * random()}. */
    private static double uniform(Random rnd, double a, double b) {
        return a + (b - a) * rnd.nextDouble();
    }

    /** Python's {@code random.randint(a, b)}: both ends included. */
    private static int randint(Random rnd, int a, int b) {
        return a + rnd.nextInt(b - a + 1);
    }

    /** Number of masked patches in a mask. */
    public static int count(long[] mask) {
        int n = 0;
        for (long v : mask) {
            n += (int) v;
        }
        return n;
    }
}
