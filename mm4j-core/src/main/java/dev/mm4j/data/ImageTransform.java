package dev.mm4j.data;

import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tutorial's image transform: {@code Compose([ToTensor(), Resize([H, W])])} applied to
 * {@code image.convert("RGB")}.
 *
 * <ul>
 *   <li>decode (PNG, JPEG incl. CMYK/YCCK via TwelveMonkeys, GIF, BMP, ... whatever ImageIO reads),
 *   <li>RGB like Pillow's {@code convert("RGB")}: alpha is dropped (no blending), gray is replicated,
 *       palettes are looked up,
 *   <li>{@code ToTensor}: float32 {@code value / 255}, CHW,
 *   <li>{@code Resize}: bilinear, exactly torch {@code F.interpolate(mode="bilinear", align_corners=False)},
 *       {@code antialias} off (torchvision &lt; 0.17 on tensors, the default here) or on (torchvision &ge; 0.17),
 *   <li>{@code Normalize(mean, std)} per channel when asked ({@link Normalize}): none (the tutorial), CLIP's
 *       mean/std (what FLAVA was pretrained with) or ImageNet's (TorchMultimodal's fine-tuning example).
 * </ul>
 *
 * <p>Thread-safe and stateless apart from its settings; meant to run on loader worker threads.
 */
public final class ImageTransform {
    public static final int DEFAULT_SIZE = 224;
    /**
     * Pillow's {@code Image.MAX_IMAGE_PIXELS} ({@code 1024 * 1024 * 1024 // 4 // 3}): an image with more pixels is
     * decoded with a warning, one with more than twice as many is refused before decoding (a decompression bomb).
     */
    public static final long DEFAULT_MAX_IMAGE_PIXELS = 1024L * 1024 * 1024 / 4 / 3;
    private static final Logger LOG = LoggerFactory.getLogger(ImageTransform.class);

    /**
     * The per-channel {@code (x - mean) / std} after the resize, as torchvision's {@code Normalize} (float32).
     * {@code none}: the tutorial's transform has none. {@code clip}: OpenAI CLIP's mean/std, which FLAVA was
     * pretrained with (TorchMultimodal's FLAVA transform, Hugging Face's {@code FlavaImageProcessor}).
     * {@code imagenet}: torchvision's ImageNet mean/std, what TorchMultimodal's FLAVA fine-tuning example uses.
     */
    public enum Normalize {
        NONE(null, null),
        CLIP(new float[] {0.48145466f, 0.4578275f, 0.40821073f}, new float[] {0.26862954f, 0.26130258f, 0.27577711f}),
        IMAGENET(new float[] {0.485f, 0.456f, 0.406f}, new float[] {0.229f, 0.224f, 0.225f});

        private final float[] mean;
        private final float[] std;

        Normalize(float[] mean, float[] std) {
            this.mean = mean;
            this.std = std;
        }

        public float[] mean() {
            return mean == null ? null : mean.clone();
        }

        public float[] std() {
            return std == null ? null : std.clone();
        }

        /** {@code none}, {@code clip} or {@code imagenet} (any case); null means none. */
        public static Normalize parse(String s) {
            if (s == null) {
                return NONE;
            }
            for (Normalize n : values()) {
                if (n.name().equalsIgnoreCase(s.trim())) {
                    return n;
                }
            }
            throw new IllegalArgumentException("normalize must be none, clip or imagenet, got '" + s + "'");
        }

        /** The setting's value: {@code none}, {@code clip}, {@code imagenet}. */
        public String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        /** Normalizes a CHW float image in place. */
        void apply(float[] chw) {
            if (mean == null) {
                return;
            }
            int plane = chw.length / 3;
            for (int c = 0; c < 3; c++) {
                float m = mean[c];
                float sd = std[c];
                for (int i = c * plane, end = i + plane; i < end; i++) {
                    chw[i] = (chw[i] - m) / sd;
                }
            }
        }
    }

    private final int height;
    private final int width;
    private final boolean antialias;
    private final Normalize normalize;
    private final long maxImagePixels;

    public ImageTransform() {
        this(DEFAULT_SIZE, DEFAULT_SIZE, false);
    }

    public ImageTransform(int height, int width, boolean antialias) {
        this(height, width, antialias, Normalize.NONE);
    }

    public ImageTransform(int height, int width, boolean antialias, Normalize normalize) {
        this(height, width, antialias, normalize, DEFAULT_MAX_IMAGE_PIXELS);
    }

    private ImageTransform(int height, int width, boolean antialias, Normalize normalize, long maxImagePixels) {
        if (height <= 0 || width <= 0) {
            throw new IllegalArgumentException("output size must be positive, got " + height + "x" + width);
        }
        if (maxImagePixels < 0) {
            throw new IllegalArgumentException("max_image_pixels must be >= 0 (0 = no limit), got " + maxImagePixels);
        }
        this.height = height;
        this.width = width;
        this.antialias = antialias;
        this.normalize = normalize == null ? Normalize.NONE : normalize;
        this.maxImagePixels = maxImagePixels;
    }

    public Normalize normalize() {
        return normalize;
    }

    /**
     * The same transform with another decompression-bomb limit, Pillow's rule: more than {@code maxImagePixels}
     * pixels (width x height, read from the image header) warns, more than twice as many is refused without
     * decoding; 0 = no limit.
     */
    public ImageTransform withMaxImagePixels(long maxImagePixels) {
        return new ImageTransform(height, width, antialias, normalize, maxImagePixels);
    }

    public long maxImagePixels() {
        return maxImagePixels;
    }

    /** An image whose header announces more pixels than the limit allows: refused before decoding. */
    public static final class ImageTooLargeException extends IOException {
        public ImageTooLargeException(String message) {
            super(message);
        }
    }

    /** Image data that ends before the image does (Pillow: "image file is truncated"): refused, never half decoded. */
    public static final class TruncatedImageException extends IOException {
        public TruncatedImageException(String message) {
            super(message);
        }
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    public boolean antialias() {
        return antialias;
    }

    /** Floats per transformed image: {@code 3 * height * width}. */
    public int outputLength() {
        return 3 * height * width;
    }

    /** A mid-gray image (every value 0.5) as {@link #apply} gives one: a model's warm-up input. */
    public float[] blank() {
        float[] gray = new float[outputLength()];
        java.util.Arrays.fill(gray, 0.5f);
        return gray;
    }

    /** Decode + convert + to-tensor + resize: a CHW float array of length {@code 3*H*W}. */
    public float[] apply(byte[] encoded) throws IOException {
        return apply(encoded, "<image bytes>");
    }

    /** As {@link #apply(byte[])}; {@code name} is used in error messages. */
    public float[] apply(byte[] encoded, String name) throws IOException {
        return apply(decodeImage(encoded, name));
    }

    /** {@link #decode(byte[], String, long)} with this transform's pixel limit. */
    public BufferedImage decodeImage(byte[] encoded, String name) throws IOException {
        return decode(encoded, name, maxImagePixels);
    }

    /** {@link #decode(byte[], String, long)} with Pillow's default pixel limit. */
    public static BufferedImage decode(byte[] encoded, String name) throws IOException {
        return decode(encoded, name, DEFAULT_MAX_IMAGE_PIXELS);
    }

    /**
     * Decodes encoded image bytes; throws an {@link IOException} naming {@code name} if they cannot be decoded, an
     * {@link ImageTooLargeException} (before decoding anything) if the header announces more than twice
     * {@code maxImagePixels} pixels, and warns above {@code maxImagePixels} (0 = no limit).
     */
    public static BufferedImage decode(byte[] encoded, String name, long maxImagePixels) throws IOException {
        // Pillow ignores embedded ICC profiles; the JPEG readers (JDK and TwelveMonkeys) convert colours with
        // them. Dropping the profile segments gives the stored pixel values, as Pillow sees them.
        byte[] data = encoded == null ? null : stripJpegIccProfile(encoded);
        return ImageHeader.withReader(data, name, reader -> {
            try {
                checkPixels(name, reader.getFormatName(), reader.getWidth(0), reader.getHeight(0), maxImagePixels);
                java.util.List<String> warnings = new java.util.ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                BufferedImage img = reader.read(0);
                if (img == null || img.getWidth() <= 0 || img.getHeight() <= 0) {
                    throw new IOException(name + ": decoder returned no image");
                }
                String truncated = truncationWarning(warnings);
                if (truncated != null) {
                    throw new TruncatedImageException(name + ": " + reader.getFormatName().toLowerCase(java.util.Locale.ROOT)
                            + " image file is truncated (" + encoded.length + " bytes; " + truncated + ")");
                }
                return img;
            } catch (ImageTooLargeException | TruncatedImageException e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                    if (c instanceof java.io.EOFException) { // e.g. PNG: "Unexpected end of ZLIB input stream"
                        throw new TruncatedImageException(name + ": " + reader.getFormatName().toLowerCase(java.util.Locale.ROOT)
                                + " image file is truncated (" + encoded.length + " bytes; " + c.getMessage() + ")");
                    }
                }
                throw new IOException(name + ": cannot decode " + reader.getFormatName() + " image: " + e.getMessage(), e);
            }
        });
    }

    /**
     * The decoder's warning that says the data ended before the image did, or null: a JPEG without its end-of-image
     * marker ("Missing EOI"), or whose scan data stops early ("premature end"). Such images are refused, as Pillow
     * refuses them by default ({@code LOAD_TRUNCATED_IMAGES = False}: "image file is truncated") instead of
     * answering from a partly decoded (grey-filled) image; other warnings (e.g. extraneous bytes) are tolerated.
     */
    private static String truncationWarning(java.util.List<String> warnings) {
        for (String w : warnings) {
            String l = w.toLowerCase(java.util.Locale.ROOT);
            if (l.contains("missing eoi") || l.contains("premature end") || l.contains("truncated")) {
                return w;
            }
        }
        return null;
    }

    private static void checkPixels(String name, String format, int w, int h, long maxImagePixels) throws ImageTooLargeException {
        long pixels = (long) w * h;
        if (maxImagePixels <= 0 || pixels <= maxImagePixels) {
            return;
        }
        if (pixels > 2 * maxImagePixels) {
            throw new ImageTooLargeException(String.format("%s: %s image of %dx%d = %,d pixels is over the limit of %,d "
                    + "(twice max_image_pixels %,d, Pillow's rule); refused without decoding (a decompression bomb?)",
                    name, format, w, h, pixels, 2 * maxImagePixels, maxImagePixels));
        }
        LOG.warn("{}: {} image of {}x{} = {} pixels is over max_image_pixels {} (decoded; more than twice that is refused)",
                name, format, w, h, pixels, maxImagePixels);
    }

    /**
     * For a JPEG, the same bytes without its {@code APP2 ICC_PROFILE} segments (the header is walked up to
     * the first scan); anything else, or a JPEG without a profile, is returned as is.
     */
    static byte[] stripJpegIccProfile(byte[] b) {
        if (b.length < 4 || (b[0] & 0xff) != 0xFF || (b[1] & 0xff) != 0xD8) {
            return b;
        }
        java.io.ByteArrayOutputStream out = null;
        int copied = 0; // bytes of b already accounted for in out
        int pos = 2;
        while (pos + 4 <= b.length) {
            if ((b[pos] & 0xff) != 0xFF) {
                break; // not a marker: leave the rest alone
            }
            int marker = b[pos + 1] & 0xff;
            if (marker == 0xFF) {
                pos++; // fill byte
                continue;
            }
            if (marker == 0xDA || marker == 0xD9) {
                break; // start of scan / end of image
            }
            if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
                pos += 2;
                continue;
            }
            int len = ((b[pos + 2] & 0xff) << 8) | (b[pos + 3] & 0xff);
            int end = pos + 2 + len;
            if (len < 2 || end > b.length) {
                break; // malformed: let the decoder report it
            }
            boolean icc = marker == 0xE2 && len >= 14 && new String(b, pos + 4, 12,
                    java.nio.charset.StandardCharsets.ISO_8859_1).equals("ICC_PROFILE\0");
            if (icc) {
                if (out == null) {
                    out = new java.io.ByteArrayOutputStream(b.length);
                }
                out.write(b, copied, pos - copied);
                copied = end;
            }
            pos = end;
        }
        if (out == null) {
            return b;
        }
        out.write(b, copied, b.length - copied);
        return out.toByteArray();
    }

    /**
     * {@code ToTensor(image.convert("RGB"))}: CHW floats {@code value/255}, length {@code 3*h*w}.
     * 8-bit rasters are read directly (no colour management, like Pillow); 16-bit samples use their high byte.
     */
    public static float[] toTensor(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        int plane = w * h;
        float[] out = new float[3 * plane];
        RowReader rows = RowReader.of(img);
        float[] r = new float[w];
        float[] g = new float[w];
        float[] b = new float[w];
        for (int y = 0; y < h; y++) {
            rows.read(y, r, g, b);
            System.arraycopy(r, 0, out, y * w, w);
            System.arraycopy(g, 0, out, plane + y * w, w);
            System.arraycopy(b, 0, out, 2 * plane + y * w, w);
        }
        return out;
    }

    /**
     * {@code Normalize(Resize(ToTensor(image.convert("RGB"))))}: {@link #resized} then the per-channel
     * normalization of {@link #normalize()}.
     */
    public float[] apply(BufferedImage img) {
        float[] out = resized(img);
        normalize.apply(out);
        return out;
    }

    /**
     * {@code Resize(ToTensor(image.convert("RGB")))} in one pass over the rows, without the full-size float
     * image; gives exactly the same floats as {@link #toTensor} followed by {@link #resize}.
     */
    float[] resized(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        int outW = width;
        int outH = height;
        RowReader rows = RowReader.of(img);
        float[] r = new float[w];
        float[] g = new float[w];
        float[] b = new float[w];
        float[][] ch = {r, g, b};
        Weights wx = outW == w ? null : antialias ? Weights.antialiased(w, outW) : Weights.bilinear(w, outW);
        float[] tmp = new float[3 * h * outW]; // width-resized rows, CHW
        for (int y = 0; y < h; y++) {
            rows.read(y, r, g, b);
            for (int c = 0; c < 3; c++) {
                int o = (c * h + y) * outW;
                if (wx == null) {
                    System.arraycopy(ch[c], 0, tmp, o, w);
                } else {
                    float[] src = ch[c];
                    for (int x = 0; x < outW; x++) {
                        tmp[o + x] = wx.apply(src, 0, 1, x);
                    }
                }
            }
        }
        if (outH == h) {
            return tmp;
        }
        Weights wy = antialias ? Weights.antialiased(h, outH) : Weights.bilinear(h, outH);
        float[] out = new float[3 * outH * outW];
        for (int c = 0; c < 3; c++) {
            int srcBase = c * h * outW;
            for (int y = 0; y < outH; y++) {
                int rowOut = (c * outH + y) * outW;
                for (int x = 0; x < outW; x++) {
                    out[rowOut + x] = wy.apply(tmp, srcBase + x, outW, y);
                }
            }
        }
        return out;
    }

    /** Reads one image row as R, G, B floats {@code value/255} the way Pillow's {@code convert("RGB")} sees it. */
    abstract static class RowReader {
        abstract void read(int y, float[] r, float[] g, float[] b);

        static RowReader of(BufferedImage img) {
            int w = img.getWidth();
            Raster raster = img.getRaster();
            ColorModel cm = img.getColorModel();
            int bands = raster.getNumBands();
            if (cm instanceof IndexColorModel icm) {
                int n = icm.getMapSize();
                float[] lr = new float[n];
                float[] lg = new float[n];
                float[] lb = new float[n];
                for (int i = 0; i < n; i++) {
                    lr[i] = icm.getRed(i) / 255f;
                    lg[i] = icm.getGreen(i) / 255f;
                    lb[i] = icm.getBlue(i) / 255f;
                }
                int[] row = new int[w * bands];
                return new RowReader() {
                    @Override
                    void read(int y, float[] r, float[] g, float[] b) {
                        raster.getPixels(0, y, w, 1, row);
                        for (int x = 0; x < w; x++) {
                            int idx = row[x * bands];
                            r[x] = lr[idx];
                            g[x] = lg[idx];
                            b[x] = lb[idx];
                        }
                    }
                };
            }
            int csType = cm.getColorSpace().getType();
            boolean gray = csType == java.awt.color.ColorSpace.TYPE_GRAY && (bands == 1 || bands == 2);
            boolean rgb = csType == java.awt.color.ColorSpace.TYPE_RGB && (bands == 3 || bands == 4);
            if ((gray || rgb) && raster.getDataBuffer() instanceof java.awt.image.DataBufferByte dbb
                    && raster.getSampleModel() instanceof java.awt.image.ComponentSampleModel sm
                    && dbb.getNumBanks() == 1) {
                // fast path: interleaved 8-bit samples (TYPE_3BYTE_BGR, TYPE_4BYTE_ABGR, TYPE_BYTE_GRAY, ...)
                byte[] data = dbb.getData();
                int[] off = sm.getBandOffsets();
                int pixelStride = sm.getPixelStride();
                int scan = sm.getScanlineStride();
                int base = dbb.getOffset() - raster.getSampleModelTranslateY() * scan
                        - raster.getSampleModelTranslateX() * pixelStride;
                int o0 = off[0];
                int o1 = gray ? off[0] : off[1];
                int o2 = gray ? off[0] : off[2];
                float[] lut = new float[256];
                for (int i = 0; i < 256; i++) {
                    lut[i] = i / 255f;
                }
                return new RowReader() {
                    @Override
                    void read(int y, float[] r, float[] g, float[] b) {
                        int p = base + y * scan;
                        for (int x = 0; x < w; x++, p += pixelStride) {
                            r[x] = lut[data[p + o0] & 0xff];
                            g[x] = lut[data[p + o1] & 0xff];
                            b[x] = lut[data[p + o2] & 0xff];
                        }
                    }
                };
            }
            if (gray || rgb) {
                int shift = Math.max(0, cm.getComponentSize(0) - 8);
                int[] row = new int[w * bands];
                return new RowReader() {
                    @Override
                    void read(int y, float[] r, float[] g, float[] b) {
                        raster.getPixels(0, y, w, 1, row);
                        for (int x = 0; x < w; x++) {
                            int p = x * bands;
                            if (gray) {
                                float v = (row[p] >> shift) / 255f;
                                r[x] = v;
                                g[x] = v;
                                b[x] = v;
                            } else {
                                r[x] = (row[p] >> shift) / 255f;
                                g[x] = (row[p + 1] >> shift) / 255f;
                                b[x] = (row[p + 2] >> shift) / 255f;
                            }
                        }
                    }
                };
            }
            // anything else (e.g. CMYK delivered in another colour space): let Java2D convert to sRGB
            int[] argb = new int[w];
            return new RowReader() {
                @Override
                void read(int y, float[] r, float[] g, float[] b) {
                    img.getRGB(0, y, w, 1, argb, 0, w);
                    for (int x = 0; x < w; x++) {
                        int p = argb[x];
                        r[x] = ((p >> 16) & 0xff) / 255f;
                        g[x] = ((p >> 8) & 0xff) / 255f;
                        b[x] = (p & 0xff) / 255f;
                    }
                }
            };
        }
    }

    /**
     * Resizes a CHW float image to {@code outH x outW}, bilinear, as torch
     * {@code F.interpolate(x, size=(outH, outW), mode="bilinear", align_corners=False, antialias=antialias)}.
     * Separable: the width pass first, then the height pass (the order torch uses), each with weights and
     * source indices precomputed once per output column/row.
     */
    public static float[] resize(float[] chw, int c, int h, int w, int outH, int outW, boolean antialias) {
        if (chw.length != c * h * w) {
            throw new IllegalArgumentException("array length " + chw.length + " != " + c + "*" + h + "*" + w);
        }
        if (outH == h && outW == w) {
            return chw.clone();
        }
        Weights wx = antialias ? Weights.antialiased(w, outW) : Weights.bilinear(w, outW);
        Weights wy = antialias ? Weights.antialiased(h, outH) : Weights.bilinear(h, outH);
        float[] out = new float[c * outH * outW];
        // torch skips a dimension whose size does not change (an identity pass); so do we
        boolean doX = outW != w;
        boolean doY = outH != h;
        float[] tmp = doX ? new float[h * outW] : null;
        for (int ch = 0; ch < c; ch++) {
            int inBase = ch * h * w;
            float[] src = chw;
            int srcBase = inBase;
            int srcW = w;
            if (doX) {
                for (int y = 0; y < h; y++) {
                    int rowIn = inBase + y * w;
                    int rowOut = y * outW;
                    for (int x = 0; x < outW; x++) {
                        tmp[rowOut + x] = wx.apply(chw, rowIn, 1, x);
                    }
                }
                src = tmp;
                srcBase = 0;
                srcW = outW;
            }
            int outBase = ch * outH * outW;
            if (doY) {
                for (int y = 0; y < outH; y++) {
                    int rowOut = outBase + y * outW;
                    for (int x = 0; x < outW; x++) {
                        out[rowOut + x] = wy.apply(src, srcBase + x, srcW, y);
                    }
                }
            } else {
                System.arraycopy(src, srcBase, out, outBase, outH * outW);
            }
        }
        return out;
    }

    /** Per output position: {@code count} source indices and weights ({@code taps} slots each). */
    static final class Weights {
        final int taps;
        final int[] count;
        final int[] index; // outSize * taps
        final float[] weights; // outSize * taps

        private Weights(int outSize, int taps) {
            this.taps = taps;
            this.count = new int[outSize];
            this.index = new int[outSize * taps];
            this.weights = new float[outSize * taps];
        }

        /** sum_k src[base + index[k]*stride] * w[k], accumulated in float in torch's order. */
        float apply(float[] src, int base, int stride, int i) {
            int n = count[i];
            int wo = i * taps;
            float acc = src[base + index[wo] * stride] * weights[wo];
            for (int k = 1; k < n; k++) {
                acc += src[base + index[wo + k] * stride] * weights[wo + k];
            }
            return acc;
        }

        /** torch upsample_bilinear2d, align_corners=False: two taps, clamped at the borders. */
        static Weights bilinear(int inSize, int outSize) {
            Weights wt = new Weights(outSize, 2);
            float scale = (float) inSize / outSize;
            for (int i = 0; i < outSize; i++) {
                // the scale is a float, but the source index stays in double precision (torch's CPU
                // accumulate type for float); only lambda is rounded to float
                double real = scale * (i + 0.5) - 0.5;
                if (real < 0) {
                    real = 0;
                }
                int i0 = (int) real;
                int offset = i0 < inSize - 1 ? 1 : 0;
                float lambda1 = (float) Math.min(Math.max(real - i0, 0.0), 1.0);
                float lambda0 = 1f - lambda1;
                // torch always reads two taps; at the last pixel both are the same pixel
                wt.count[i] = 2;
                wt.index[2 * i] = i0;
                wt.index[2 * i + 1] = i0 + offset;
                wt.weights[2 * i] = lambda0;
                wt.weights[2 * i + 1] = lambda1;
            }
            return wt;
        }

        /** torch _upsample_bilinear2d_aa: triangle filter with support scaled by the downscale factor, normalised. */
        static Weights antialiased(int inSize, int outSize) {
            float scale = (float) inSize / outSize;
            float support = (float) (scale >= 1f ? 1.0 * scale : 1.0);
            int taps = (int) Math.ceil(support) * 2 + 1;
            Weights wt = new Weights(outSize, taps);
            float invscale = (float) (scale >= 1f ? 1.0 / scale : 1.0);
            for (int i = 0; i < outSize; i++) {
                float center = (float) (scale * (i + 0.5));
                int xmin = (int) Math.max((long) ((center - support) + 0.5), 0L);
                int xsize = (int) (Math.min((long) ((center + support) + 0.5), (long) inSize) - xmin);
                float total = 0f;
                int wo = i * taps;
                for (int j = 0; j < xsize; j++) {
                    float d = (float) (j + xmin) - center;
                    float x = (float) ((d + 0.5) * invscale);
                    if (x < 0) {
                        x = -x;
                    }
                    float v = x < 1f ? 1f - x : 0f;
                    wt.weights[wo + j] = v;
                    wt.index[wo + j] = xmin + j;
                    total += v;
                }
                if (total != 0f) {
                    for (int j = 0; j < xsize; j++) {
                        wt.weights[wo + j] /= total;
                    }
                }
                wt.count[i] = xsize;
            }
            return wt;
        }
    }
}
