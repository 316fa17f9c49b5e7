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
                + "(same bytes, by SHA-256) are skipped, a changed file replaces its old entry. A file that cannot be read "
                + "or decoded (empty, truncated, not an image, a decompression bomb) is skipped with a warning naming it and "
                + "counted. The work is committed every --commit-every images: a run that is stopped (even kill -9) keeps "
                + "what it committed, and the next run embeds only the rest. An existing index is verified against its "
                + "checksums first.",
                "The HNSW settings and the quantization are recorded in the index: a later run keeps them (leave the "
                        + "options out) and refuses different ones."})
public final class IndexCommand implements Callable<Integer> {
    @Mixin SearchModelOptions model = new SearchModelOptions();

    @Option(names = "--images", required = true, paramLabel = "DIR|MANIFEST",
            description = "a folder of images (recursively), or a .jsonl/.csv manifest of {image, text}")
    Path images;

    @Option(names = "--out", required = true, paramLabel = "INDEX", description = "index folder (created, or added to)")
    Path out;

    @Option(names = "--commit-every", paramLabel = "N", description = "commit after every N added images: what an "
            + "interrupted run can lose at most (default: ${DEFAULT-VALUE})")
    int commitEvery = ImageIndex.DEFAULT_COMMIT_EVERY;

    @Option(names = "--hnsw-m", paramLabel = "M", description = "HNSW neighbours per node (Lucene's maxConn, OpenSearch's m): "
            + "more is better recall, a bigger index and slower indexing (a new index: 16; else what it records)")
    Integer hnswM;

    @Option(names = "--beam-width", paramLabel = "N", description = "candidates per insertion while building the graph "
            + "(OpenSearch's ef_construction): more is a better graph, slower indexing (a new index: 100; else what it records)")
    Integer beamWidth;

    @Option(names = "--quantization", paramLabel = "none|int8", description = "int8: scalar-quantized vectors for the graph "
            + "(Lucene99HnswScalarQuantizedVectorsFormat; float32 kept beside them) (a new index: none; else what it records)")
    String quantization;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        if (commitEvery < 1) {
            throw new IllegalArgumentException("--commit-every must be at least 1, got " + commitEvery);
        }
        ImageIndex.Requested requested = new ImageIndex.Requested(hnswM, beamWidth,
                quantization == null ? null : ImageIndex.Quantization.parse(quantization));
        List<ImageIndex.Source> sources = ImageIndex.sources(images);
        engine.modelPrecision(); // one known value, checked before loading
        engine.configureThreads();
        long t0 = System.nanoTime();
        try (Embedder e = engine.withAskedPrecision(model.open(engine.device()))) {
            ImageIndex.Stats s = ImageIndex.build(out, e, sources, model.model.toAbsolutePath().toString(),
                    model.config == null ? null : model.config.toAbsolutePath().toString(), requested, commitEvery);
            System.out.printf("indexed %s: %d added, %d replaced, %d unchanged (skipped); %d images in %s (%s; %.1f s)%n",
                    images, s.added(), s.replaced(), s.unchanged(), s.total(), out, s.settings(), (System.nanoTime() - t0) / 1e9);
            if (!s.skipped().isEmpty()) {
                System.out.printf("skipped %d file(s) that could not be used %s:%n", s.skipped().size(), s.skippedByReason());
                s.skipped().stream().limit(20).forEach(k -> System.out.println("  " + k.path() + ": " + k.reason()));
                if (s.skipped().size() > 20) {
                    System.out.printf("  ... and %d more (each named in the warnings above)%n", s.skipped().size() - 20);
                }
            }
        }
        return 0;
    }
}
