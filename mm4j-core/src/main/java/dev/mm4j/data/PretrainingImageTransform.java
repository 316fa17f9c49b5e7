package dev.mm4j.data;

import java.awt.image.BufferedImage;
import java.util.Random;

/**
 * TorchMultimodal's {@code FLAVAImageTransform} without the mask (see {@link BlockMasking}): one image gives two,
 * <ul>
 *   <li>{@code image}, the encoder's input: {@code encoder_input_size} (224) with Pillow's BICUBIC, ToTensor, then
 *       normalised with CLIP's mean/std ({@code IMAGE_PRETRAINING_MEAN/STD});
 *   <li>{@code image_for_codebook}, the DALL-E codebook's input: {@code codebook_input_size} (112) with Pillow's
 *       LANCZOS, ToTensor, then {@link #mapPixels} ({@code (1 - 2 * 0.1) * x + 0.1}, the logit-Laplace range).
 * </ul>
 * Training ({@code is_train}) crops as torchvision's {@code RandomResizedCrop} ({@code scale} (0.9, 1.0), ratio
 * (3/4, 4/3)): one crop box, resized to both sizes from the original pixels. Evaluation resizes the whole image to
 * the encoder size, then that resized image to the codebook size (as {@code TwoWayResize} does). Resizing is
 * {@link PillowResize} (byte-exact Pillow); images are first read as Pillow's {@code convert("RGB")} does.
 */
public final class PretrainingImageTransform {
    public static final int DEFAULT_ENCODER_SIZE = 224;
    public static final int DEFAULT_CODEBOOK_SIZE = 112;
    public static final double DEFAULT_SCALE_MIN = 0.9;
    public static final double DEFAULT_SCALE_MAX = 1.0;
    public static final double RATIO_MIN = 3.0 / 4.0;
    public static final double RATIO_MAX = 4.0 / 3.0;
    /** {@code LOGIT_LAPLACE_EPS}. */
    public static final double LOGIT_LAPLACE_EPS = 0.1;

    /** A crop box in source pixels (torchvision's {@code i, j, h, w}). */
    public record CropBox(int top, int left, int height, int width) {}

    /** The two images, CHW floats. */
    public record Output(float[] image, float[] imageForCodebook) {}

    private final boolean train;
    private final int encoderSize;
    private final int codebookSize;
    private final double scaleMin;
    private final double scaleMax;
    private final ImageTransform.Normalize normalize;

    /** FLAVAImageTransform(is_train=train) with its defaults. */
    public PretrainingImageTransform(boolean train) {
        this(train, DEFAULT_ENCODER_SIZE, DEFAULT_CODEBOOK_SIZE, DEFAULT_SCALE_MIN, DEFAULT_SCALE_MAX,
                ImageTransform.Normalize.CLIP);
    }

    public PretrainingImageTransform(boolean train, int encoderSize, int codebookSize, double scaleMin,
            double scaleMax, ImageTransform.Normalize normalize) {
        if (encoderSize < 1 || codebookSize < 1) {
            throw new IllegalArgumentException("image sizes must be positive, got encoder " + encoderSize
                    + " and codebook " + codebookSize);
        }
        if (!(scaleMin > 0 && scaleMin <= scaleMax && scaleMax <= 1)) {
            throw new IllegalArgumentException("crop scale must satisfy 0 < min <= max <= 1, got (" + scaleMin + ", "
                    + scaleMax + ")");
        }
        this.train = train;
        this.encoderSize = encoderSize;
        this.codebookSize = codebookSize;
        this.scaleMin = scaleMin;
        this.scaleMax = scaleMax;
        this.normalize = normalize == null ? ImageTransform.Normalize.NONE : normalize;
    }

    public boolean train() {
        return train;
    }

    public int encoderSize() {
        return encoderSize;
    }

    public int codebookSize() {
        return codebookSize;
    }

    /** Both outputs; the crop (training) is drawn from {@code rnd}. */
    public Output apply(BufferedImage img, Random rnd) {
        CropBox box = train ? cropParams(img.getHeight(), img.getWidth(), scaleMin, scaleMax, rnd) : null;
        return apply(img, box);
    }

    /** Both outputs for an explicit crop box (training); {@code box} is ignored by an evaluation transform. */
    public Output apply(BufferedImage img, CropBox box) {
        int h = img.getHeight();
        int w = img.getWidth();
        int[] rgb = rgbBytes(img);
        int[] enc;
        int[] cb;
        if (train) {
            if (box == null) {
                throw new IllegalArgumentException("a training transform needs a crop box");
            }
            int[] crop = PillowResize.crop(rgb, 3, h, w, box.top(), box.left(), box.height(), box.width());
            enc = PillowResize.resize(crop, 3, box.height(), box.width(), encoderSize, encoderSize,
                    PillowResize.Filter.BICUBIC);
            cb = PillowResize.resize(crop, 3, box.height(), box.width(), codebookSize, codebookSize,
                    PillowResize.Filter.LANCZOS);
        } else {
            enc = PillowResize.resize(rgb, 3, h, w, encoderSize, encoderSize, PillowResize.Filter.BICUBIC);
            cb = PillowResize.resize(enc, 3, encoderSize, encoderSize, codebookSize, codebookSize,
                    PillowResize.Filter.LANCZOS);
        }
        float[] image = toTensor(enc);
        normalize.apply(image);
        float[] forCodebook = toTensor(cb);
        mapPixels(forCodebook);
        return new Output(image, forCodebook);
    }

    /** {@code map_pixels}: {@code (1 - 2 * eps) * x + eps} in float32, in place. */
    public static void mapPixels(float[] x) {
        // torch multiplies a float32 tensor by Python floats as float32 scalars
        float a = (float) (1 - 2 * LOGIT_LAPLACE_EPS);
        float b = (float) LOGIT_LAPLACE_EPS;
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * a + b;
        }
    }

    /** ToTensor of 8-bit values: {@code v / 255} in float32. */
    static float[] toTensor(int[] bytes) {
        float[] out = new float[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            out[i] = bytes[i] / 255f;
        }
        return out;
    }

    /** The image as Pillow's {@code convert("RGB")} sees it, CHW 0..255. */
    static int[] rgbBytes(BufferedImage img) {
        float[] chw = ImageTransform.toTensor(img);
        int[] out = new int[chw.length];
        for (int i = 0; i < chw.length; i++) {
            out[i] = Math.round(chw[i] * 255f);
        }
        return out;
    }

    /**
     * torchvision's {@code RandomResizedCrop.get_params}: 10 tries of an area fraction uniform in
     * {@code [scaleMin, scaleMax]} and a log-uniform aspect ratio in [3/4, 4/3] (Python's round-half-even for
     * the sides), else the central crop with the ratio clamped.
     */
    public static CropBox cropParams(int height, int width, double scaleMin, double scaleMax, Random rnd) {
        double area = (double) height * width;
        double logMin = Math.log(RATIO_MIN);
        double logMax = Math.log(RATIO_MAX);
        for (int attempt = 0; attempt < 10; attempt++) {
            double targetArea = area * (scaleMin + (scaleMax - scaleMin) * rnd.nextDouble());
            double aspect = Math.exp(logMin + (logMax - logMin) * rnd.nextDouble());
            int w = (int) Math.rint(Math.sqrt(targetArea * aspect));
            int h = (int) Math.rint(Math.sqrt(targetArea / aspect));
            if (0 < w && w <= width && 0 < h && h <= height) {
                int i = rnd.nextInt(height - h + 1);
                int j = rnd.nextInt(width - w + 1);
                return new CropBox(i, j, h, w);
            }
        }
        double inRatio = (double) width / height;
        int w;
        int h;
        if (inRatio < RATIO_MIN) {
            w = width;
            h = (int) Math.rint(w / RATIO_MIN);
        } else if (inRatio > RATIO_MAX) {
            h = height;
            w = (int) Math.rint(h * RATIO_MAX);
        } else {
            w = width;
            h = height;
        }
        return new CropBox((height - h) / 2, (width - w) / 2, h, w);
    }
}
