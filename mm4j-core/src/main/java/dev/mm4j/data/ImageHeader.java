package dev.mm4j.data;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Iterator;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * An encoded image's format and size, read from its header without decoding the pixels: the guard
 * against decompression bombs (a 1 MB PNG can declare 20000 x 20000 pixels, 1.6 GB once decoded).
 *
 * @param format the decoder's format name (png, jpeg, ...)
 */
public record ImageHeader(String format, int width, int height) {

    /** Why encoded bytes were refused. */
    public enum Problem { NOT_AN_IMAGE, UNDECODABLE, TOO_MANY_PIXELS }

    /** An image refused before decoding; {@link #problem()} says why. */
    public static final class RejectedImageException extends IOException {
        private final Problem problem;

        public RejectedImageException(Problem problem, String message) {
            super(message);
            this.problem = problem;
        }

        public Problem problem() {
            return problem;
        }
    }

    public long pixels() {
        return (long) width * height;
    }

    /** What to do with a decoder set on an image's bytes (its header is read on demand). */
    @FunctionalInterface
    public interface ReaderAction<T> {
        T apply(ImageReader reader) throws IOException;
    }

    /**
     * Sets a decoder on {@code encoded}, read from memory, and runs {@code action} with it: the one place that
     * opens decoders, for the header check and for decoding. Empty data and bytes no decoder recognises are
     * refused ({@link Problem#NOT_AN_IMAGE}); what {@code action} throws passes through unchanged.
     *
     * @param name used in messages
     */
    public static <T> T withReader(byte[] encoded, String name, ReaderAction<T> action) throws IOException {
        if (encoded == null || encoded.length == 0) {
            throw new RejectedImageException(Problem.NOT_AN_IMAGE, name + ": empty image data");
        }
        // an in-memory stream: ImageIO.createImageInputStream would spool the bytes to a temp file
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(encoded))) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                throw new RejectedImageException(Problem.NOT_AN_IMAGE, name + ": not a recognised image format ("
                        + encoded.length + " bytes, starts with " + hexPrefix(encoded) + ")");
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                return action.apply(reader);
            } finally {
                reader.dispose();
            }
        }
    }

    /** Reads the header of {@code encoded}; {@code name} is used in messages. */
    public static ImageHeader read(byte[] encoded, String name) throws RejectedImageException {
        try {
            return withReader(encoded, name, reader -> {
                try {
                    return new ImageHeader(reader.getFormatName().toLowerCase(java.util.Locale.ROOT), reader.getWidth(0),
                            reader.getHeight(0));
                } catch (IOException | RuntimeException e) {
                    throw new RejectedImageException(Problem.UNDECODABLE,
                            name + ": cannot read the " + reader.getFormatName() + " header: " + e.getMessage());
                }
            });
        } catch (RejectedImageException e) {
            throw e;
        } catch (IOException e) {
            throw new RejectedImageException(Problem.UNDECODABLE, name + ": " + e.getMessage());
        }
    }

    private static String hexPrefix(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(8, b.length); i++) {
            sb.append(String.format("%02x", b[i] & 0xff));
        }
        return sb.toString();
    }

    /** {@link #read}, refusing images of more than {@code maxPixels} pixels. */
    public static ImageHeader check(byte[] encoded, String name, long maxPixels) throws RejectedImageException {
        ImageHeader h = read(encoded, name);
        if (h.width <= 0 || h.height <= 0) {
            throw new RejectedImageException(Problem.UNDECODABLE, name + ": image size " + h.width + "x" + h.height);
        }
        if (h.pixels() > maxPixels) {
            throw new RejectedImageException(Problem.TOO_MANY_PIXELS, name + ": " + h.width + "x" + h.height + " = "
                    + h.pixels() + " pixels, over the limit of " + maxPixels);
        }
        return h;
    }
}
