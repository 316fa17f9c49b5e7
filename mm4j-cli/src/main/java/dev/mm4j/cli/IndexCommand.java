package dev.mm4j.cli;

import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j index}: image embeddings into a Lucene HNSW index, incrementally. */
@Command(name = "index", mixinStandardHelpOptions = true,
        description = {"Embeds images with FLAVA (image encoder + image_projection, L2-normalised) into a Lucene index "
                + "(HNSW, cosine; fields vector, path, sha256, text: see README). Incremental: images already indexed "
                + "(same bytes, by SHA-256) are skipped, a changed file replaces its old entry."})
public final class IndexCommand implements Callable<Integer> {
    @Mixin SearchModelOptions model = new SearchModelOptions();

    @Option(names = "--images", required = true, paramLabel = "DIR|MANIFEST",
            description = "a folder of images (recursively), or a .jsonl/.csv manifest of {image, text}")
    Path images;

    @Option(names = "--out", required = true, paramLabel = "INDEX", description = "index folder (created, or added to)")
    Path out;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        List<ImageIndex.Source> sources = ImageIndex.sources(images);
        engine.configureThreads();
        long t0 = System.nanoTime();
        try (Embedder e = model.open(engine.device())) {
            ImageIndex.Stats s = ImageIndex.build(out, e, sources, model.model.toAbsolutePath().toString(),
                    model.config == null ? null : model.config.toAbsolutePath().toString());
            System.out.printf("indexed %s: %d added, %d replaced, %d unchanged (skipped); %d images in %s (%.1f s)%n",
                    images, s.added(), s.replaced(), s.unchanged(), s.total(), out, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }
}
