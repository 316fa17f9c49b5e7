package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.util.Npy;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

class ImageTransformTest {
    private static final double PNG_TOL = 1e-6;
    private static final double JPEG_RESIZED_TOL = 2.0 / 255;

    static Path fixtures() throws URISyntaxException {
        return Path.of(ImageTransformTest.class.getResource("/fixtures/transforms/index.json").toURI()).getParent();
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length, "lengths differ");
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }

    @TestFactory
    List<DynamicTest> matchesPythonFixtures() throws Exception {
        Path dir = fixtures();
        JsonNode index = new ObjectMapper().readTree(dir.resolve("index.json").toFile());
        List<DynamicTest> tests = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = index.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().startsWith("_")) {
                continue;
            }
            String name = e.getKey();
            JsonNode c = e.getValue();
            tests.add(DynamicTest.dynamicTest(name, () -> checkCase(dir, name, c)));
        }
        assertEquals(5, tests.size());
        return tests;
    }

    private static void checkCase(Path dir, String name, JsonNode c) throws IOException {
        byte[] bytes = Files.readAllBytes(dir.resolve(c.get("file").asText()));
        BufferedImage img = ImageTransform.decode(bytes, name);
        assertEquals(c.get("size").get(0).asInt(), img.getWidth());
        assertEquals(c.get("size").get(1).asInt(), img.getHeight());
        Npy.FloatArray tt = Npy.readFloat(dir.resolve(c.get("totensor").asText()));
        assertArrayEquals(new int[] {3, img.getHeight(), img.getWidth()}, tt.shape());
        float[] mine = ImageTransform.toTensor(img);
        double dT = maxAbsDiff(mine, tt.data());
        boolean jpeg = c.get("file").asText().endsWith(".jpg");
        StringBuilder report = new StringBuilder(String.format("%s (%s %dx%d): ToTensor max|diff| %.3g (%.2f/255)",
                name, c.get("mode").asText(), img.getWidth(), img.getHeight(), dT, dT * 255));
        for (boolean aa : new boolean[] {false, true}) {
            Npy.FloatArray ref = Npy.readFloat(dir.resolve(c.get("resize224_antialias_" + aa).asText()));
            assertArrayEquals(new int[] {3, 224, 224}, ref.shape());
            // from our own ToTensor, and (for the JPEG) from Pillow's ToTensor, which isolates the resize itself
            float[] resized = ImageTransform.resize(mine, 3, img.getHeight(), img.getWidth(), 224, 224, aa);
            float[] fromRef = ImageTransform.resize(tt.data(), 3, img.getHeight(), img.getWidth(), 224, 224, aa);
            double d = maxAbsDiff(resized, ref.data());
            double dRef = maxAbsDiff(fromRef, ref.data());
            report.append(String.format("; resize antialias=%s max|diff| %.3g (%.2f/255), from Pillow pixels %.3g",
                    aa, d, d * 255, dRef));
            assertTrue(dRef <= PNG_TOL, name + " resize antialias=" + aa + " of the reference tensor: " + dRef);
            if (jpeg) {
                assertTrue(d <= JPEG_RESIZED_TOL, name + " resize antialias=" + aa + ": " + d);
            } else {
                assertTrue(d <= PNG_TOL, name + " resize antialias=" + aa + ": " + d);
            }
            // the one-call path gives the same floats
            if (aa == false) {
                assertArrayEquals(resized, new ImageTransform().apply(bytes, name));
            } else {
                assertArrayEquals(resized, new ImageTransform(224, 224, true).apply(bytes, name));
            }
        }
        System.out.println("[transform fixtures] " + report);
        if (!jpeg) {
            assertTrue(dT <= PNG_TOL, name + " ToTensor: " + dT);
        }
    }

    @Test
    void identitySizeIsACopy() {
        float[] x = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
        assertArrayEquals(x, ImageTransform.resize(x, 1, 2, 3, 2, 3, false));
        assertArrayEquals(x, ImageTransform.resize(x, 1, 2, 3, 2, 3, true));
    }

    @Test
    void constantImageStaysConstant() {
        float[] x = new float[3 * 37 * 53];
        java.util.Arrays.fill(x, 0.25f);
        for (boolean aa : new boolean[] {false, true}) {
            for (float v : ImageTransform.resize(x, 3, 37, 53, 224, 19, aa)) {
                assertEquals(0.25f, v, 1e-6f);
            }
        }
    }

    @Test
    void undecodableBytesGiveAClearError() {
        IOException e = assertThrows(IOException.class,
                () -> new ImageTransform().apply("not an image".getBytes(), "images/bad.jpg"));
        assertTrue(e.getMessage().contains("images/bad.jpg"), e.getMessage());
        byte[] truncatedPng = new byte[] {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0};
        IOException e2 = assertThrows(IOException.class, () -> new ImageTransform().apply(truncatedPng, "t.png"));
        assertTrue(e2.getMessage().contains("t.png"), e2.getMessage());
        assertThrows(IOException.class, () -> new ImageTransform().apply(new byte[0], "empty.jpg"));
    }

    /** A 160x120 photo-like image (gradients and noise), encoded as {@code format}. */
    static byte[] noisy(String format) throws IOException {
        BufferedImage img = new BufferedImage(160, 120, BufferedImage.TYPE_INT_RGB);
        java.util.Random r = new java.util.Random(5);
        for (int y = 0; y < 120; y++) {
            for (int x = 0; x < 160; x++) {
                img.setRGB(x, y, (x * 3 / 2) << 16 | (y * 2) << 8 | r.nextInt(64));
            }
        }
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        ImageIO.write(img, format, bos);
        return bos.toByteArray();
    }

    @Test
    void truncatedImagesAreRefusedLikePillowsLoadTruncatedImagesFalse() throws IOException {
        for (String format : List.of("jpeg", "png")) {
            byte[] whole = noisy(format);
            assertEquals(160, ImageTransform.decode(whole, "whole." + format).getWidth(), "a whole image decodes");
            // a JPEG without its end-of-image marker; a PNG cut inside its image data (a PNG missing only its IEND
            // trailer has every pixel)
            int first = format.equals("jpeg") ? whole.length - 2 : whole.length * 9 / 10;
            for (int len : new int[] {first, whole.length * 2 / 3, whole.length / 3}) {
                byte[] cut = java.util.Arrays.copyOf(whole, len);
                IOException e = assertThrows(IOException.class, () -> new ImageTransform().apply(cut, "cut." + format),
                        format + " cut to " + len + " of " + whole.length + " bytes");
                assertTrue(e.getMessage().startsWith("cut." + format + ": " + format + " image file is truncated ("), e.getMessage());
                assertTrue(e instanceof ImageTransform.TruncatedImageException, e.toString());
            }
        }
    }

    @Test
    void paletteAndGrayAlphaPngs() throws IOException {
        // palette PNG: values come from the palette, alpha ignored
        byte[] r = {(byte) 255, 0, 10};
        byte[] g = {0, (byte) 128, 20};
        byte[] b = {0, 0, 30};
        byte[] a = {0, (byte) 255, (byte) 100};
        java.awt.image.IndexColorModel icm = new java.awt.image.IndexColorModel(8, 3, r, g, b, a);
        BufferedImage pal = new BufferedImage(2, 1, BufferedImage.TYPE_BYTE_INDEXED, icm);
        pal.getRaster().setSample(0, 0, 0, 0);
        pal.getRaster().setSample(1, 0, 0, 2);
        float[] t = ImageTransform.toTensor(ImageTransform.decode(png(pal), "pal.png"));
        assertArrayEquals(new float[] {1f, 10 / 255f, 0f, 20 / 255f, 0f, 30 / 255f}, t);
        // RGBA with alpha 0 keeps its colour (no blending)
        BufferedImage rgba = new BufferedImage(1, 1, BufferedImage.TYPE_INT_ARGB);
        rgba.setRGB(0, 0, 0x00_40_80_C0);
        assertArrayEquals(new float[] {0x40 / 255f, 0x80 / 255f, 0xC0 / 255f},
                ImageTransform.toTensor(ImageTransform.decode(png(rgba), "rgba.png")));
    }

    @Test
    void rowReadersAgreeAcrossImageTypesAndFusedPathMatches() {
        BufferedImage ref = new BufferedImage(50, 40, BufferedImage.TYPE_INT_RGB);
        java.util.Random rnd = new java.util.Random(5);
        for (int y = 0; y < 40; y++) {
            for (int x = 0; x < 50; x++) {
                ref.setRGB(x, y, rnd.nextInt(1 << 24));
            }
        }
        float[] expected = ImageTransform.toTensor(ref);
        for (int type : new int[] {BufferedImage.TYPE_3BYTE_BGR, BufferedImage.TYPE_4BYTE_ABGR, BufferedImage.TYPE_INT_ARGB}) {
            BufferedImage copy = new BufferedImage(50, 40, type);
            Graphics2D g = copy.createGraphics();
            g.drawImage(ref, 0, 0, null);
            g.dispose();
            assertArrayEquals(expected, ImageTransform.toTensor(copy), "type " + type);
            // a sub-image shares the parent's buffer with a translated raster
            BufferedImage sub = copy.getSubimage(7, 5, 30, 20);
            BufferedImage subRef = ref.getSubimage(7, 5, 30, 20);
            assertArrayEquals(ImageTransform.toTensor(subRef), ImageTransform.toTensor(sub), "sub-image type " + type);
        }
        for (boolean aa : new boolean[] {false, true}) {
            for (int[] size : new int[][] {{224, 224}, {40, 17}, {13, 50}, {40, 50}}) {
                ImageTransform t = new ImageTransform(size[0], size[1], aa);
                assertArrayEquals(ImageTransform.resize(expected, 3, 40, 50, size[0], size[1], aa), t.apply(ref),
                        "fused path " + java.util.Arrays.toString(size) + " aa=" + aa);
            }
        }
    }

    @Test
    void embeddedIccProfileIsIgnoredLikePillow() throws IOException {
        BufferedImage img = new BufferedImage(64, 48, BufferedImage.TYPE_3BYTE_BGR);
        for (int y = 0; y < 48; y++) {
            for (int x = 0; x < 64; x++) {
                img.setRGB(x, y, (x * 4) << 16 | (y * 5) << 8 | 100);
            }
        }
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        assertTrue(ImageIO.write(img, "jpeg", bos));
        byte[] plain = bos.toByteArray();
        // the same JPEG with a linear-RGB ICC profile in an APP2 segment right after SOI
        byte[] prof = java.awt.color.ICC_Profile.getInstance(java.awt.color.ColorSpace.CS_LINEAR_RGB).getData();
        ByteArrayOutputStream withIcc = new ByteArrayOutputStream();
        withIcc.write(plain, 0, 2);
        int len = 2 + 14 + prof.length;
        withIcc.write(new byte[] {(byte) 0xFF, (byte) 0xE2, (byte) (len >> 8), (byte) len});
        withIcc.write("ICC_PROFILE\0".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        withIcc.write(new byte[] {1, 1});
        withIcc.write(prof);
        withIcc.write(plain, 2, plain.length - 2);
        byte[] icc = withIcc.toByteArray();
        assertArrayEquals(plain, ImageTransform.stripJpegIccProfile(icc));
        assertTrue(plain == ImageTransform.stripJpegIccProfile(plain));
        // the readers would colour-convert with the profile; we must not
        float[] expected = ImageTransform.toTensor(ImageTransform.decode(plain, "plain.jpg"));
        assertArrayEquals(expected, ImageTransform.toTensor(ImageTransform.decode(icc, "icc.jpg")));
        BufferedImage converted = ImageIO.read(new java.io.ByteArrayInputStream(icc));
        assertTrue(maxAbsDiff(expected, ImageTransform.toTensor(converted)) > 0.05, "ImageIO itself converts");
    }

    @Test
    void fourChannelJpegDecodes() throws Exception {
        // a 4-channel (CMYK-style) JPEG written from a raw raster: the JDK reader cannot return it as a
        // BufferedImage; the TwelveMonkeys reader (on the classpath) can
        java.awt.image.WritableRaster raster = java.awt.image.Raster.createInterleavedRaster(
                java.awt.image.DataBuffer.TYPE_BYTE, 40, 30, 4, null);
        for (int y = 0; y < 30; y++) {
            for (int x = 0; x < 40; x++) {
                raster.setPixel(x, y, new int[] {x * 6, y * 8, 128, 30});
            }
        }
        javax.imageio.ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (javax.imageio.stream.ImageOutputStream out = ImageIO.createImageOutputStream(bos)) {
            writer.setOutput(out);
            writer.write(new javax.imageio.IIOImage(raster, null, null));
        } finally {
            writer.dispose();
        }
        float[] t = new ImageTransform(16, 16, true).apply(bos.toByteArray(), "cmyk.jpg");
        assertEquals(3 * 16 * 16, t.length);
        for (float v : t) {
            assertTrue(v >= 0f && v <= 1f);
        }
    }

    private static byte[] png(BufferedImage img) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        assertTrue(ImageIO.write(img, "png", bos));
        return bos.toByteArray();
    }

    static BufferedImage drawn(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.ORANGE);
        g.fillRect(0, 0, w, h);
        g.dispose();
        return img;
    }

    @Test
    void normalizationIsPerChannelAfterTheResize() throws Exception {
        // the fixture image as the tutorial transforms it, then (x - mean) / std per channel in float32
        byte[] bytes = Files.readAllBytes(fixtures().resolve("down_png.png"));
        float[] plain = new ImageTransform(224, 224, false).apply(bytes, "down_png.png");
        for (ImageTransform.Normalize n : ImageTransform.Normalize.values()) {
            float[] got = new ImageTransform(224, 224, false, n).apply(bytes, "down_png.png");
            float[] want = plain.clone();
            if (n != ImageTransform.Normalize.NONE) {
                int plane = 224 * 224;
                for (int i = 0; i < want.length; i++) {
                    want[i] = (want[i] - n.mean()[i / plane]) / n.std()[i / plane];
                }
            }
            assertArrayEquals(want, got, n.key());
        }
        // a white and a black pixel against the published constants
        BufferedImage wb = new BufferedImage(2, 1, BufferedImage.TYPE_INT_RGB);
        wb.setRGB(0, 0, 0xFFFFFF);
        float[] clip = new ImageTransform(1, 2, false, ImageTransform.Normalize.CLIP).apply(wb);
        assertEquals((1 - 0.48145466) / 0.26862954, clip[0], 1e-5, "CLIP red of white");
        assertEquals(-0.40821073 / 0.27577711, clip[5], 1e-5, "CLIP blue of black");
        float[] imagenet = new ImageTransform(1, 2, false, ImageTransform.Normalize.IMAGENET).apply(wb);
        assertEquals(-0.485 / 0.229, imagenet[1], 1e-5, "ImageNet red of black");
        assertEquals((1 - 0.406) / 0.225, imagenet[4], 1e-5, "ImageNet blue of white");

        assertEquals(ImageTransform.Normalize.CLIP, ImageTransform.Normalize.parse("CLIP"));
        assertEquals(ImageTransform.Normalize.NONE, ImageTransform.Normalize.parse(null));
        var e = assertThrows(IllegalArgumentException.class, () -> ImageTransform.Normalize.parse("openai"));
        assertEquals("normalize must be none, clip or imagenet, got 'openai'", e.getMessage());
    }

    /** A PNG whose header says {@code w x h} (8-bit RGB) followed by a tiny, truncated IDAT: decoding it would
     * allocate the whole raster first. */
    static byte[] pngHeaderOnly(int w, int h) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        java.nio.ByteBuffer ihdr = java.nio.ByteBuffer.allocate(13).putInt(w).putInt(h).put((byte) 8).put((byte) 2)
                .put((byte) 0).put((byte) 0).put((byte) 0);
        chunk(out, "IHDR", ihdr.array());
        chunk(out, "IDAT", new byte[] {0x78, (byte) 0x9c, 0x63, 0x60});
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, String type, byte[] data) throws IOException {
        java.io.DataOutputStream d = new java.io.DataOutputStream(out);
        d.writeInt(data.length);
        byte[] t = type.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        d.write(t);
        d.write(data);
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(t);
        crc.update(data);
        d.writeInt((int) crc.getValue());
    }

    @Test
    void refusesImagesOverTwicePillowsPixelLimitBeforeDecoding() throws IOException {
        assertEquals(89_478_485L, ImageTransform.DEFAULT_MAX_IMAGE_PIXELS); // PIL.Image.MAX_IMAGE_PIXELS
        // 20000 x 20000 = 400 MP in a few bytes: before, decoding allocated a 1.2 GB raster first
        byte[] bomb = pngHeaderOnly(20_000, 20_000);
        long before = allocated();
        ImageTransform.ImageTooLargeException e = assertThrows(ImageTransform.ImageTooLargeException.class,
                () -> new ImageTransform().apply(bomb, "bomb.png"));
        assertTrue(allocated() - before < 50_000_000, "refused without allocating the raster");
        assertTrue(e.getMessage().startsWith("bomb.png: png image of 20000x20000 = 400,000,000 pixels is over the limit of "
                + "178,956,970"), e.getMessage());
        // the limit is a setting; twice the setting is refused, the setting itself only warns
        BufferedImage img = new BufferedImage(30, 20, BufferedImage.TYPE_INT_RGB);
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        ImageIO.write(img, "png", bos);
        assertEquals(3 * 4 * 4, new ImageTransform(4, 4, false).withMaxImagePixels(300).apply(bos.toByteArray(), "ok.png").length);
        assertThrows(ImageTransform.ImageTooLargeException.class,
                () -> new ImageTransform(4, 4, false).withMaxImagePixels(299).apply(bos.toByteArray(), "big.png"));
        assertEquals(48, new ImageTransform(4, 4, false).withMaxImagePixels(0).apply(bos.toByteArray(), "nolimit.png").length);
    }

    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean())
                .getCurrentThreadAllocatedBytes();
    }
}
