package dev.mm4j.data;

/**
 * Pillow's {@code Image.resize} of an 8-bit RGB image (what torchvision's {@code F.resize} and
 * {@code F.resized_crop} do to a PIL image, always antialiased): the convolution resampler of Pillow's
 * {@code Resample.c} with its fixed-point arithmetic, so the bytes equal Pillow's. Coefficients per output
 * position are the filter at {@code (x + xmin - center + 0.5) / filterscale}, normalised to sum 1, then turned into
 * integers with 22 fractional bits; each pass rounds and clips to 0..255. The horizontal pass runs first, then the
 * vertical one; a pass whose size does not change is skipped, as in Pillow.
 *
 * <p>Images are CHW arrays of values 0..255 (one int per sample).
 */
public final class PillowResize {
    private static final int PRECISION_BITS = 32 - 8 - 2;

    /** Pillow's resampling filters ({@code Image.Resampling}). */
    public enum Filter {
        BILINEAR(1.0),
        BICUBIC(2.0),
        LANCZOS(3.0);

        final double support;

        Filter(double support) {
            this.support = support;
        }

        double apply(double x) {
            switch (this) {
                case BILINEAR: {
                    if (x < 0) {
                        x = -x;
                    }
                    return x < 1.0 ? 1.0 - x : 0.0;
                }
                case BICUBIC: {
                    final double a = -0.5;
                    if (x < 0) {
                        x = -x;
                    }
                    if (x < 1.0) {
                        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
                    }
                    if (x < 2.0) {
                        return (((x - 5) * x + 8) * x - 4) * a;
                    }
                    return 0.0;
                }
                default: {
                    if (-3.0 <= x && x < 3.0) {
                        return sinc(x) * sinc(x / 3);
                    }
                    return 0.0;
                }
            }
        }

        private static double sinc(double x) {
            if (x == 0.0) {
                return 1.0;
            }
            x = x * Math.PI;
            return Math.sin(x) / x;
        }
    }

    private PillowResize() {}

    /** {@code img.crop((left, top, left + w, top + h))}: a CHW copy of the box (which must lie inside). */
    public static int[] crop(int[] chw, int c, int h, int w, int top, int left, int cropH, int cropW) {
        if (top < 0 || left < 0 || cropH < 1 || cropW < 1 || top + cropH > h || left + cropW > w) {
            throw new IllegalArgumentException("crop box top=" + top + " left=" + left + " " + cropH + "x" + cropW
                    + " is not inside a " + h + "x" + w + " image");
        }
        int[] out = new int[c * cropH * cropW];
        for (int ch = 0; ch < c; ch++) {
            for (int y = 0; y < cropH; y++) {
                System.arraycopy(chw, (ch * h + top + y) * w + left, out, (ch * cropH + y) * cropW, cropW);
            }
        }
        return out;
    }

    /** {@code img.resize((outW, outH), filter)} of a CHW 8-bit image. */
    public static int[] resize(int[] chw, int c, int h, int w, int outH, int outW, Filter filter) {
        if (chw.length != c * h * w) {
            throw new IllegalArgumentException("array length " + chw.length + " != " + c + "*" + h + "*" + w);
        }
        if (outH < 1 || outW < 1) {
            throw new IllegalArgumentException("output size must be positive, got " + outH + "x" + outW);
        }
        int[] src = chw;
        int srcW = w;
        if (outW != w) {
            Coeffs cx = Coeffs.of(w, outW, filter);
            int[] tmp = new int[c * h * outW];
            for (int ch = 0; ch < c; ch++) {
                for (int y = 0; y < h; y++) {
                    int in = (ch * h + y) * w;
                    int out = (ch * h + y) * outW;
                    for (int x = 0; x < outW; x++) {
                        tmp[out + x] = cx.apply(src, in, 1, x);
                    }
                }
            }
            src = tmp;
            srcW = outW;
        }
        if (outH == h) {
            return src == chw ? chw.clone() : src;
        }
        Coeffs cy = Coeffs.of(h, outH, filter);
        int[] out = new int[c * outH * srcW];
        for (int ch = 0; ch < c; ch++) {
            int base = ch * h * srcW;
            for (int y = 0; y < outH; y++) {
                int row = (ch * outH + y) * srcW;
                for (int x = 0; x < srcW; x++) {
                    out[row + x] = cy.apply(src, base + x, srcW, y);
                }
            }
        }
        return out;
    }

    /** Pillow's {@code precompute_coeffs} + {@code normalize_coeffs_8bpc}. */
    private static final class Coeffs {
        final int ksize;
        final int[] xmin;
        final int[] xsize;
        final int[] k;

        private Coeffs(int outSize, int ksize) {
            this.ksize = ksize;
            this.xmin = new int[outSize];
            this.xsize = new int[outSize];
            this.k = new int[outSize * ksize];
        }

        static Coeffs of(int inSize, int outSize, Filter f) {
            double scale = (double) inSize / outSize;
            double filterscale = Math.max(scale, 1.0);
            double support = f.support * filterscale;
            int ksize = (int) Math.ceil(support) * 2 + 1;
            Coeffs c = new Coeffs(outSize, ksize);
            double[] kk = new double[ksize];
            for (int xx = 0; xx < outSize; xx++) {
                double center = (xx + 0.5) * scale;
                double ww = 0.0;
                double ss = 1.0 / filterscale;
                int xmin = (int) (center - support + 0.5);
                if (xmin < 0) {
                    xmin = 0;
                }
                int xmax = (int) (center + support + 0.5);
                if (xmax > inSize) {
                    xmax = inSize;
                }
                xmax -= xmin;
                for (int x = 0; x < xmax; x++) {
                    double wv = f.apply((x + xmin - center + 0.5) * ss);
                    kk[x] = wv;
                    ww += wv;
                }
                for (int x = 0; x < xmax; x++) {
                    if (ww != 0.0) {
                        kk[x] /= ww;
                    }
                    double v = kk[x];
                    c.k[xx * ksize + x] = v < 0 ? (int) (-0.5 + v * (1 << PRECISION_BITS))
                            : (int) (0.5 + v * (1 << PRECISION_BITS));
                }
                c.xmin[xx] = xmin;
                c.xsize[xx] = xmax;
            }
            return c;
        }

        int apply(int[] src, int base, int stride, int i) {
            int ss = 1 << (PRECISION_BITS - 1);
            int o = i * ksize;
            int start = base + xmin[i] * stride;
            for (int x = 0, n = xsize[i]; x < n; x++) {
                ss += src[start + x * stride] * k[o + x];
            }
            return clip8(ss);
        }

        private static int clip8(int in) {
            if (in >= (1 << PRECISION_BITS << 8)) {
                return 255;
            }
            if (in <= 0) {
                return 0;
            }
            return in >> PRECISION_BITS;
        }
    }
}
