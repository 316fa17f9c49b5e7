package dev.mm4j.serve;

import ai.djl.Device;
import dev.mm4j.inference.Embedder;
import dev.mm4j.inference.TinyBundle;
import dev.mm4j.search.ImageIndex;
import java.nio.file.Files;
import java.nio.file.Path;

/** An index of generated images ({@link TinyBundle#png}) for the search endpoints' tests. */
public final class TinyIndex {
    private TinyIndex() {}

    /**
     * Writes {@code n} generated images ({@code png(seed, 320, 200)}, seeds 100.., as {@code img<seed>.png}) to
     * {@code dir/images} and indexes them with {@code model} into {@code dir/index}; returns the index folder.
     */
    public static Path build(Path dir, Path model, int n) throws Exception {
        Path images = Files.createDirectories(dir.resolve("images"));
        for (int i = 0; i < n; i++) {
            Files.write(images.resolve("img" + (100 + i) + ".png"), TinyBundle.png(100 + i, 320, 200));
        }
        Path index = dir.resolve("index");
        try (Embedder e = Embedder.open(model, null, Device.cpu())) {
            ImageIndex.build(index, e, ImageIndex.sources(images), model.toAbsolutePath().toString(), null);
        }
        return index;
    }
}
