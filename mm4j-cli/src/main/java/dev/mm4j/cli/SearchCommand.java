package dev.mm4j.cli;

import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import dev.mm4j.util.FileTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mm4j search}: text -> image or image -> image search in an index built by {@code index}. */
@Command(name = "search", mixinStandardHelpOptions = true,
        description = {"Searches an index built by 'mm4j index': the images nearest to a text (text -> image) or to an "
                + "image (--image, image -> image), by cosine similarity of FLAVA embeddings, with the index's model."})
public final class SearchCommand implements Callable<Integer> {
    @Option(names = "--index", required = true, paramLabel = "INDEX", description = "index folder")
    Path index;

    @Parameters(arity = "0..1", paramLabel = "TEXT", description = "the query text")
    String text;

    @Option(names = "--image", paramLabel = "FILE", description = "query by an image instead of a text")
    Path image;

    @Option(names = {"-k", "--top-k"}, description = "hits, 1 to " + ImageIndex.MAX_K + " (default: ${DEFAULT-VALUE})")
    int k = 5;

    @Option(names = "--candidates", paramLabel = "N", description = "nearest images the HNSW graph search collects before "
            + "keeping the best k: more is closer to exact and slower; 1 to " + ImageIndex.MAX_K + " (default: ${DEFAULT-VALUE})")
    int candidates = ImageIndex.DEFAULT_CANDIDATES;

    @Option(names = "--exact", description = "exact search: the cosine to every image in the index (brute force) instead of HNSW")
    boolean exact;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        if ((text == null) == (image == null)) {
            throw new IllegalArgumentException("give a query text or --image FILE (one of them)");
        }
        if (text != null && text.isBlank()) {
            throw new IllegalArgumentException("the query text is empty: give the words to search for (or --image FILE)");
        }
        if (image != null) {
            FileTrees.readableFile(image, "image");
        }
        if (k < 1 || k > ImageIndex.MAX_K || candidates < 1 || candidates > ImageIndex.MAX_K) {
            throw new IllegalArgumentException("-k and --candidates must be from 1 to " + ImageIndex.MAX_K + ", got " + k
                    + " and " + candidates);
        }
        engine.modelPrecision(); // one known value, checked before loading
        engine.configureThreads();
        try (ImageIndex idx = ImageIndex.open(index)) {
            try (Embedder e = engine.withAskedPrecision(idx.embedder(engine.device()))) {
                float[] q = text != null ? e.texts(List.of(text))[0]
                        : e.images(List.of(Files.readAllBytes(image)), List.of(image.toString()))[0];
                List<ImageIndex.Hit> hits;
                try (ImageIndex.Searcher s = idx.searcher()) {
                    hits = exact ? s.exact(q, k) : s.search(q, k, candidates);
                }
                for (ImageIndex.Hit h : hits) {
                    System.out.printf("%.4f  %s%s%n", h.score(), h.path(), h.text() == null ? "" : "  \"" + h.text() + "\"");
                }
            }
        }
        return 0;
    }
}
