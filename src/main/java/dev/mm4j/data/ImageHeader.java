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

    /** Reads the header of {@code encoded}; {@code name} is used in messages. */
    public static ImageHeader read(byte[] encoded, String name) throws RejectedImageException {
        if (encoded == null || encoded.length == 0) {
            throw new RejectedImageException(Problem.NOT_AN_IMAGE, name + ": empty image data");
        }
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(encoded))) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                throw new RejectedImageException(Problem.NOT_AN_IMAGE,
                        name + ": not a recognised image format (" + encoded.length + " bytes)");
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                return new ImageHeader(reader.getFormatName().toLowerCase(java.util.Locale.ROOT), reader.getWidth(0),
                        reader.getHeight(0));
            } catch (IOException | RuntimeException e) {
                throw new RejectedImageException(Problem.UNDECODABLE,
                        name + ": cannot read the " + reader.getFormatName() + " header: " + e.getMessage());
            } finally {
                reader.dispose();
            }
        } catch (RejectedImageException e) {
            throw e;
        } catch (IOException e) {
            throw new RejectedImageException(Problem.UNDECODABLE, name + ": " + e.getMessage());
        }
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
