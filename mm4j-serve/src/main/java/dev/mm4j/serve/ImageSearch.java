package dev.mm4j.serve;

import dev.mm4j.inference.InvalidInputException;
import dev.mm4j.inference.VqaModel;
import ai.djl.Device;
import dev.mm4j.data.ImageHeader;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import dev.mm4j.util.Hardware;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.locks.ReentrantLock;
import javax.imageio.ImageIO;

/**
 * What the server's search endpoints do, without HTTP: FLAVA embeddings of images and texts ({@link Embedder}) and,
 * with an index, the nearest indexed images ({@link ImageIndex}) and the indexed images themselves, looked up by the
 * SHA-256 of their bytes (so only images in the index are ever read, never a path a client names).
 *
 * <p>Thread-safe: images are checked and decoded on the calling thread, forward passes run one at a time.
 */
public final class ImageSearch implements AutoCloseable {
    /** Thumbnail sizes accepted (the longer side, in pixels). */
    public static final int MIN_THUMBNAIL = 16;
    public static final int MAX_THUMBNAIL = 1024;

    /** An indexed image's bytes and their media type. */
    public record Picture(byte[] bytes, String contentType) {}

    /** The default bound on an indexed image file read by {@link #picture} (the server's body limit by default). */
    public static final long DEFAULT_MAX_IMAGE_BYTES = 10L << 20;

    /** An indexed image file over the read bound ({@link #picture}). */
    public static final class TooLargeException extends RuntimeException {
        public TooLargeException(String message) {
            super(message);
        }
    }

    /** Thumbnails kept (JPEG bytes), at most this many bytes in all. */
    static final long THUMBNAIL_CACHE_BYTES = 32L << 20;

    private final Embedder embedder;
    private final ImageIndex index;
    private final long maxPixels;
    private final String name;
    private final ReentrantLock lock = new ReentrantLock();
    private final ThumbnailCache thumbnails = new ThumbnailCache(THUMBNAIL_CACHE_BYTES);
    private boolean closed;

    private ImageSearch(Embedder embedder, ImageIndex index, long maxPixels, String name) {
        this.embedder = embedder;
        this.index = index;
        this.maxPixels = maxPixels;
        this.name = name;
    }

    /** Runs the embedding model in {@code precision} from now on (see {@link Embedder#withPrecision}); returns this. */
    public ImageSearch withPrecision(dev.mm4j.nn.Precision precision) {
        embedder.withPrecision(precision);
        return this;
    }

    /**
     * Opens the embedding model and, if {@code indexDir} is given, the index. {@code model} null: the model the index
     * was built with; else a bundle or a checkpoint (with {@code config}, as {@link Embedder#open}), whose vectors
     * must have the index's dimension.
     *
     * @param maxPixels images declaring more pixels are refused before decoding (queries and thumbnails)
     */
    public static ImageSearch open(Path indexDir, Path model, FlavaConfig config, Device device, long maxPixels)
            throws IOException {
        if (indexDir == null && model == null) {
            throw new IllegalArgumentException("an index or an embedding model is needed");
        }
        ImageIndex index = indexDir == null ? null : ImageIndex.open(indexDir);
        Embedder embedder = null;
        try {
            embedder = model == null ? index.embedder(device) : Embedder.open(model, config, device);
            if (index != null) {
                String d = index.userData().get(ImageIndex.DIMENSION);
                if (d != null && Integer.parseInt(d) != embedder.dimension()) {
                    throw new IllegalArgumentException(indexDir + " holds vectors of " + d + " dimensions, the model "
                            + model + " gives " + embedder.dimension());
                }
            }
            return new ImageSearch(embedder, index, maxPixels, VqaModel.displayName(Path.of(embedder.source())));
        } catch (IOException | RuntimeException e) {
            if (embedder != null) {
                embedder.close();
            }
            if (index != null) {
                index.close();
            }
            throw e;
        }
    }

    /** A short name for the embedding model (its folder). */
    public String name() {
        return name;
    }

    /** Length of every vector. */
    public int dimension() {
        return embedder.dimension();
    }

    /** Whether an index is open ({@link #search}, {@link #picture}). */
    public boolean indexed() {
        return index != null;
    }

    /** Whether the index can be read now (true without one): false while its folder is gone. */
    public boolean available() {
        return index == null || index.available();
    }

    /** Thumbnails cached now ({@link #picture}). */
    public int thumbnailsCached() {
        return thumbnails.size();
    }

    /** Images in the index (0 without one). */
    public int size() throws IOException {
        return index == null ? 0 : index.size();
    }

    /**
     * The L2-normalised embedding of an encoded image, as {@link Embedder#images} gives it.
     *
     * @throws InvalidInputException bytes that are not an image, do not decode, or declare more than the pixel limit
     */
    public float[] embedImage(byte[] image) {
        return embedPixels(List.of(pixels(image)))[0];
    }

    /** The L2-normalised embedding of a text, as {@link Embedder#texts} gives it. */
    public float[] embedText(String text) {
        return embedTexts(List.of(textIds(text)))[0];
    }

    /**
     * An encoded image checked and transformed for {@link #embedPixels}, on the calling thread (no lock).
     *
     * @throws InvalidInputException bytes that are not an image, do not decode, or declare more than the pixel limit
     */
    public float[] pixels(byte[] image) {
        VqaModel.checkImage(image, "image", maxPixels);
        try {
            return embedder.transform().apply(image, "image");
        } catch (IOException | RuntimeException e) {
            throw new InvalidInputException(InvalidInputException.Kind.UNDECODABLE_IMAGE, e.getMessage());
        }
    }

    /**
     * A text's token ids for {@link #embedTexts}, on the calling thread (no lock); a huge text is cut before it is
     * tokenized ({@link dev.mm4j.data.QuestionTokenizer#maxChars()}).
     */
    public long[] textIds(String text) {
        if (text == null || text.isBlank()) {
            throw new InvalidInputException(InvalidInputException.Kind.MISSING_TEXT, "text: missing or empty");
        }
        return embedder.textIds(text);
    }

    /**
     * Embeds a blank image and a short text once, as {@link VqaModel#warmUp} answers one question: the first request
     * then does not pay for what a first forward pass prepares. Returns the seconds it took.
     */
    public double warmUp() {
        long t0 = System.nanoTime();
        embedPixels(List.of(embedder.transform().blank()));
        embedTexts(List.of(textIds("a photo")));
        return (System.nanoTime() - t0) / 1e9;
    }

    /** Embeddings of images from {@link #pixels}, in forward passes run one at a time. */
    public float[][] embedPixels(List<float[]> pixels) {
        return forward(() -> embedder.pixels(pixels));
    }

    /** Embeddings of texts from {@link #textIds}, in forward passes run one at a time. */
    public float[][] embedTexts(List<long[]> ids) {
        return forward(() -> embedder.textEmbeddings(ids));
    }

    private float[][] forward(java.util.function.Supplier<float[][]> pass) {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("embedding model " + name + " is closed");
            }
            Hardware.noGradOnThisThread();
            return pass.get();
        } finally {
            lock.unlock();
        }
    }

    /** The {@code k} indexed images nearest to an embedding, best first (HNSW, cosine). */
    public List<ImageIndex.Hit> search(float[] query, int k) throws IOException {
        requireIndex();
        return index.search(query, k);
    }

    /** {@link ImageIndex#search(float[], int, int, boolean)}: HNSW with {@code candidates}, or {@code exact}. */
    public List<ImageIndex.Hit> search(float[] query, int k, int candidates, boolean exact) throws IOException {
        requireIndex();
        return index.search(query, k, candidates, exact);
    }

    /** {@link #picture(String, int, long)} with files read up to {@link #DEFAULT_MAX_IMAGE_BYTES}. */
    public Picture picture(String sha256, int size) throws IOException {
        return picture(sha256, size, DEFAULT_MAX_IMAGE_BYTES);
    }

    /**
     * The indexed image whose bytes have this SHA-256: as stored ({@code size} 0) or a JPEG thumbnail whose longer side
     * is at most {@code size} pixels. Only paths recorded in the index are read, only regular files, at most
     * {@code maxBytes} of them, and only while their bytes still have the indexed hash. Thumbnails are cached (bounded)
     * while the file's size and modification time stay as they were.
     *
     * @throws NoSuchElementException no such image in the index, or its file changed, went or is not a regular file
     * @throws TooLargeException the file holds more than {@code maxBytes}
     * @throws ImageIndex.UnavailableException the index folder went
     */
    public Picture picture(String sha256, int size, long maxBytes) throws IOException {
        requireIndex();
        if (size != 0 && (size < MIN_THUMBNAIL || size > MAX_THUMBNAIL)) {
            throw new IllegalArgumentException("size: must be from " + MIN_THUMBNAIL + " to " + MAX_THUMBNAIL + ", got " + size);
        }
        if (sha256 == null || !sha256.matches("[0-9a-f]{64}")) {
            throw new NoSuchElementException("no indexed image has SHA-256 '" + sha256 + "' (64 lower-case hex digits)");
        }
        ImageIndex.Stored e = index.find(sha256).orElseThrow(() -> new NoSuchElementException("no indexed image has SHA-256 " + sha256));
        Path file = Path.of(e.path());
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException ex) {
            throw new NoSuchElementException("image " + sha256 + " is no longer readable where it was indexed (re-run mm4j index)");
        }
        if (!attrs.isRegularFile()) {
            throw new NoSuchElementException("image " + sha256 + " is no longer a regular file where it was indexed (re-run mm4j index)");
        }
        String key = sha256 + "/" + size;
        if (size != 0) {
            byte[] cached = thumbnails.get(key, attrs);
            if (cached != null) {
                return new Picture(cached, "image/jpeg");
            }
        }
        byte[] bytes = readBounded(file, maxBytes, sha256);
        if (!sha256.equals(ImageIndex.sha256(bytes))) {
            throw new NoSuchElementException("image " + sha256 + " changed since it was indexed (re-run mm4j index)");
        }
        ImageHeader header;
        try {
            header = VqaModel.checkImage(bytes, sha256, maxPixels);
        } catch (InvalidInputException ex) {
            throw new NoSuchElementException("indexed image " + sha256 + " cannot be served: " + ex.getMessage());
        }
        if (size == 0) {
            return new Picture(bytes, "image/" + header.format());
        }
        BufferedImage img = ImageTransform.decode(bytes, sha256, maxPixels);
        double scale = Math.min(1.0, (double) size / Math.max(img.getWidth(), img.getHeight()));
        int w = Math.max(1, (int) Math.round(img.getWidth() * scale));
        int h = Math.max(1, (int) Math.round(img.getHeight() * scale));
        BufferedImage thumb = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = thumb.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
            g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
            g.drawImage(img, 0, 0, w, h, java.awt.Color.WHITE, null);
        } finally {
            g.dispose();
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(thumb, "jpeg", out);
        thumbnails.put(key, out.toByteArray(), attrs);
        return new Picture(out.toByteArray(), "image/jpeg");
    }

    /** At most {@code maxBytes} of a file (whatever it claims its size is: a device has none). */
    private static byte[] readBounded(Path file, long maxBytes, String sha256) {
        int limit = (int) Math.min(Integer.MAX_VALUE - 16, maxBytes);
        try (InputStream in = Files.newInputStream(file)) {
            byte[] bytes = in.readNBytes(limit);
            if (bytes.length == limit && in.read() >= 0) {
                throw new TooLargeException("indexed image " + sha256 + " is over the limit of " + maxBytes + " bytes");
            }
            return bytes;
        } catch (IOException ex) {
            throw new NoSuchElementException("image " + sha256 + " is no longer readable where it was indexed (re-run mm4j index)");
        }
    }

    private void requireIndex() {
        if (index == null) {
            throw new IllegalStateException("no index open: start the server with an index");
        }
    }

    /** Closes the model and the index; waits for a forward pass in progress. */
    @Override
    public void close() throws IOException {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            embedder.close();
            if (index != null) {
                index.close();
            }
        } finally {
            lock.unlock();
        }
    }
}
