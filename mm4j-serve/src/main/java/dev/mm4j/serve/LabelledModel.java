package dev.mm4j.serve;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.LabelledExamples;
import dev.mm4j.eval.LabelledClassifier;
import dev.mm4j.flava.RequiredEmbedding;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A labelled-classification bundle ({@code finetune} on text, images or both: {@code bundle.json} task
 * classification) loaded for serving: its {@link LabelledClassifier} and the native memory it lives in, closed
 * together. Used by one thread at a time (the server's batcher).
 */
public final class LabelledModel implements AutoCloseable {
    private final String name;
    private final NDManager manager;
    private final ModelBundle.Loaded bundle;
    private final LabelledClassifier classifier;
    private final long maxPixels;

    private LabelledModel(String name, NDManager manager, ModelBundle.Loaded bundle, long maxPixels) {
        this.name = name;
        this.manager = manager;
        this.bundle = bundle;
        this.classifier = LabelledClassifier.of(bundle);
        this.maxPixels = maxPixels;
    }

    /**
     * Loads {@code dir} on {@code device} in {@code precision} (null: the one it was trained in); images declaring more
     * than {@code maxPixels} are refused before decoding.
     */
    public static LabelledModel load(Path dir, Device device, String precision, long maxPixels) throws IOException {
        NDManager manager = NDManager.newBaseManager(device);
        ModelBundle.Loaded b = null;
        try {
            b = ModelBundle.load(dir, manager, precision);
            return new LabelledModel(dir.toAbsolutePath().normalize().getFileName().toString(), manager, b, maxPixels);
        } catch (IOException | RuntimeException e) {
            if (b != null) {
                b.close();
            }
            manager.close();
            throw e;
        }
    }

    public String name() {
        return name;
    }

    public LabelledClassifier classifier() {
        return classifier;
    }

    /** Images declaring more pixels are refused before decoding. */
    public long maxPixels() {
        return maxPixels;
    }

    /** Whether the head reads an image (image or mm). */
    public boolean readsImage() {
        return classifier.head() != RequiredEmbedding.TEXT;
    }

    /** Whether the head reads a text (text or mm). */
    public boolean readsText() {
        return classifier.head() != RequiredEmbedding.IMAGE;
    }

    /**
     * Classifies one blank example (a mid-gray image and/or a short text, as the head reads them) once, as
     * {@link dev.mm4j.inference.VqaModel#warmUp} answers one question: the first request then does not pay for what a
     * first forward pass prepares. Returns the seconds it took.
     */
    public double warmUp() throws IOException {
        long t0 = System.nanoTime();
        LabelledExamples.Example e = new LabelledExamples.Example("warm-up", readsText() ? "a photo" : null, null, null,
                null, "warm-up");
        List<float[]> pixels = new ArrayList<>();
        pixels.add(readsImage() ? classifier.transform().blank() : null);
        classifier.predict(List.of(e), pixels, 0);
        return (System.nanoTime() - t0) / 1e9;
    }

    @Override
    public void close() {
        bundle.close();
        manager.close();
    }
}
