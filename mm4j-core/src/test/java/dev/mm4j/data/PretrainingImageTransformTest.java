package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import java.awt.image.BufferedImage;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * FLAVA's two-way image transform: Pillow's resampling byte for byte, the codebook pixel map and the crop
 * parameters, against reference numbers from tools/flava_pretraining_inputs_reference.py.
 */
class PretrainingImageTransformTest {
    /** The script's test image: r=(7x+3y)%256, g=(5xy+11)%256, b=(13x+17y+x*x)%256, CHW. */
    static int[] testImage(int w, int h) {
        int[] chw = new int[3 * w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                chw[y * w + x] = (7 * x + 3 * y) % 256;
                chw[w * h + y * w + x] = (5 * x * y + 11) % 256;
                chw[2 * w * h + y * w + x] = (13 * x + 17 * y + x * x) % 256;
            }
        }
        return chw;
    }

    static BufferedImage toBufferedImage(int[] chw, int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, (chw[y * w + x] << 16) | (chw[w * h + y * w + x] << 8) | chw[2 * w * h + y * w + x]);
            }
        }
        return img;
    }

    private static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }

    @Test
    void pillowBicubicAndLanczosResizesEqualPillowsBytes() throws Exception {
        JsonNode r = BlockMaskingTest.reference().get("resize");
        int w = r.get("source_width").asInt();
        int h = r.get("source_height").asInt();
        int[] img = testImage(w, h);
        assertArrayEquals(ints(r.get("bicubic_16x16")),
                PillowResize.resize(img, 3, h, w, 16, 16, PillowResize.Filter.BICUBIC));
        assertArrayEquals(ints(r.get("lanczos_8x8")),
                PillowResize.resize(img, 3, h, w, 8, 8, PillowResize.Filter.LANCZOS));
        assertArrayEquals(ints(r.get("bicubic_48x40")),
                PillowResize.resize(img, 3, h, w, 40, 48, PillowResize.Filter.BICUBIC));
        int[] crop = PillowResize.crop(img, 3, h, w, 3, 5, 20, 25);
        assertArrayEquals(ints(r.get("crop_top3_left5_h20_w25_bicubic_16x16")),
                PillowResize.resize(crop, 3, 20, 25, 16, 16, PillowResize.Filter.BICUBIC));
        assertArrayEquals(ints(r.get("crop_top3_left5_h20_w25_lanczos_8x8")),
                PillowResize.resize(crop, 3, 20, 25, 8, 8, PillowResize.Filter.LANCZOS));
    }

    @Test
    void codebookPixelMapEqualsTheReferenceFormula() throws Exception {
        JsonNode m = BlockMaskingTest.reference().get("map_pixels");
        assertEquals(m.get("eps").asDouble(), PretrainingImageTransform.LOGIT_LAPLACE_EPS);
        float[] x = new float[m.get("input").size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) m.get("input").get(i).asDouble();
        }
        PretrainingImageTransform.mapPixels(x);
        for (int i = 0; i < x.length; i++) {
            assertEquals((float) m.get("output").get(i).asDouble(), x[i], 0f, "pixel " + i);
        }
    }

    @Test
    void trainingTransformCropsOnceAndGivesBothImagesFromTheSameBox() throws Exception {
        JsonNode r = BlockMaskingTest.reference().get("resize");
        int w = 37;
        int h = 29;
        BufferedImage img = toBufferedImage(testImage(w, h), w, h);
        PretrainingImageTransform t = new PretrainingImageTransform(true, 16, 8, 0.9, 1.0,
                ImageTransform.Normalize.CLIP);
        PretrainingImageTransform.Output out = t.apply(img, new PretrainingImageTransform.CropBox(3, 5, 20, 25));
        int[] enc = ints(r.get("crop_top3_left5_h20_w25_bicubic_16x16"));
        int[] cb = ints(r.get("crop_top3_left5_h20_w25_lanczos_8x8"));
        float[] mean = ImageTransform.Normalize.CLIP.mean();
        float[] std = ImageTransform.Normalize.CLIP.std();
        assertEquals(3 * 16 * 16, out.image().length);
        for (int i = 0; i < enc.length; i++) {
            int c = i / 256;
            assertEquals((enc[i] / 255f - mean[c]) / std[c], out.image()[i], 0f, "encoder value " + i);
        }
        assertEquals(3 * 8 * 8, out.imageForCodebook().length);
        for (int i = 0; i < cb.length; i++) {
            assertEquals(cb[i] / 255f * 0.8f + 0.1f, out.imageForCodebook()[i], 0f, "codebook value " + i);
            assertTrue(out.imageForCodebook()[i] >= 0.1f && out.imageForCodebook()[i] <= 0.90000004f);
        }
    }

    @Test
    void evaluationTransformResizesTheEncoderImageAgainForTheCodebook() {
        int w = 37;
        int h = 29;
        int[] src = testImage(w, h);
        PretrainingImageTransform t = new PretrainingImageTransform(false, 16, 8, 0.9, 1.0,
                ImageTransform.Normalize.NONE);
        PretrainingImageTransform.Output out = t.apply(toBufferedImage(src, w, h), new Random(1));
        int[] enc = PillowResize.resize(src, 3, h, w, 16, 16, PillowResize.Filter.BICUBIC);
        int[] cb = PillowResize.resize(enc, 3, 16, 16, 8, 8, PillowResize.Filter.LANCZOS);
        for (int i = 0; i < enc.length; i++) {
            assertEquals(enc[i] / 255f, out.image()[i], 0f);
        }
        for (int i = 0; i < cb.length; i++) {
            assertEquals(cb[i] / 255f * 0.8f + 0.1f, out.imageForCodebook()[i], 0f);
        }
    }

    @Test
    void cropParametersFollowRandomResizedCrop() {
        Random rnd = new Random(3);
        double minShare = 1;
        double maxShare = 0;
        for (int k = 0; k < 5000; k++) {
            int h = 50 + rnd.nextInt(400);
            int w = 50 + rnd.nextInt(400);
            PretrainingImageTransform.CropBox b = PretrainingImageTransform.cropParams(h, w, 0.9, 1.0, rnd);
            assertTrue(b.top() >= 0 && b.left() >= 0 && b.top() + b.height() <= h && b.left() + b.width() <= w, b.toString());
            double share = (double) b.height() * b.width() / ((double) h * w);
            double ratio = (double) b.width() / b.height();
            boolean central = b.top() == (h - b.height()) / 2 && b.left() == (w - b.width()) / 2
                    && (b.height() == h || b.width() == w);
            double aspect = (double) w / h;
            if (aspect > 0.8 && aspect < 1.25) { // room for the drawn crops: 10 misses in a row are (almost) impossible
                minShare = Math.min(minShare, share);
                maxShare = Math.max(maxShare, share);
                // rounded sides: area within rounding of [0.9, 1.0], ratio within rounding of [3/4, 4/3]
                assertTrue(share > 0.88 && share <= 1.0, "share " + share + " of " + h + "x" + w + " " + b);
                assertTrue(ratio > 0.74 && ratio < 1.34, "ratio " + ratio + " of " + h + "x" + w + " " + b);
            } else if (share < 0.88) {
                assertTrue(central, "a crop below the scale must be the fallback central crop: " + b);
            }
        }
        assertTrue(minShare < 0.92 && maxShare > 0.98, minShare + " .. " + maxShare);
        // a very wide image never fits the ratio: the central crop with the ratio clamped to 4/3
        PretrainingImageTransform.CropBox wide = PretrainingImageTransform.cropParams(10, 100, 0.9, 1.0, new Random(1));
        assertEquals(new PretrainingImageTransform.CropBox(0, 43, 10, 13), wide);
    }
}
