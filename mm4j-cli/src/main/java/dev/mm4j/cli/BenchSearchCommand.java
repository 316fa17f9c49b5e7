package dev.mm4j.cli;

import dev.mm4j.bench.SearchBench;
import dev.mm4j.search.ImageIndex;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mm4j bench-search}: embedding throughput, HNSW vs exact recall, index build and query latency at scale. */
@Command(name = "bench-search", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Search figures: (1) embedding throughput (images/s including JPEG decode and resize, texts/s "
                + "including tokenization) of a model on captioned images; (2) text -> image recall@1/@5 of those captions "
                + "through the Lucene index's HNSW search next to exact brute force; (3) at scale, for indexes of two "
                + "sets, random unit vectors of the model's dimension and clustered vectors (--clustered-dimension), each "
                + "stored as float32 and as int8 (--quantization): build time, size on disk, the time to open the index "
                + "and to verify its checksums, query latency p50/p99 of HNSW (--candidates) and of exact search, and "
                + "HNSW's recall@k against exact search.",
                "Without --model: the demo-sized FLAVA, untrained (speed only; its recall is chance). Without --data: "
                        + "--images demo-look signs are generated."})
public final class BenchSearchCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "a model bundle (e.g. runs/retrieval/model) or checkpoint")
    Path model;

    @Option(names = "--data", paramLabel = "PATH", description = "captioned images: a .jsonl/.csv manifest or a synth folder "
            + "(its --split's captions_SPLIT.jsonl)")
    Path data;

    @Option(names = "--split", description = "split of --data (default: ${DEFAULT-VALUE})")
    String split = "val";

    @Option(names = "--images", description = "signs to generate without --data (default: ${DEFAULT-VALUE})")
    int images = 512;

    @Option(names = "--sizes", split = ",", paramLabel = "N", description = "index sizes of the scale part (default: ${DEFAULT-VALUE})")
    List<Integer> sizes = List.of(10_000, 100_000);

    @Option(names = "--queries", description = "timed queries per index size (default: ${DEFAULT-VALUE})")
    int queries = 500;

    @Option(names = "-k", description = "hits per query in the scale part (default: ${DEFAULT-VALUE})")
    int k = 10;

    @Option(names = "--candidates", split = ",", paramLabel = "N", description = "HNSW candidate counts of the scale part "
            + "(default: ${DEFAULT-VALUE})")
    List<Integer> candidates = List.of(100, 400);

    @Option(names = "--quantization", split = ",", paramLabel = "none|int8", description = "vector encodings of the scale "
            + "part (default: ${DEFAULT-VALUE})")
    List<String> quantization = List.of("none", "int8");

    @Option(names = "--sets", split = ",", paramLabel = "random|clustered", description = "vector sets of the scale part "
            + "(default: ${DEFAULT-VALUE})")
    List<String> sets = SearchBench.SETS;

    @Option(names = "--clustered-dimension", paramLabel = "D", description = "dimension of the clustered set (default: ${DEFAULT-VALUE})")
    int clusteredDimension = 768;

    @Option(names = "--hnsw-m", paramLabel = "M", description = "HNSW neighbours per node (default: ${DEFAULT-VALUE})")
    int hnswM = ImageIndex.Settings.DEFAULT.hnswM();

    @Option(names = "--beam-width", paramLabel = "N", description = "HNSW beam width while building (default: ${DEFAULT-VALUE})")
    int beamWidth = ImageIndex.Settings.DEFAULT.beamWidth();

    @Option(names = "--threads", description = "libtorch threads (default: all cores)")
    int threads;

    @Option(names = "--seed", description = "(default: ${DEFAULT-VALUE})")
    long seed = 1;

    @Override
    public Integer call() throws Exception {
        if (k < 1 || queries < 1 || images < 2 || clusteredDimension < 1 || sizes.stream().anyMatch(n -> n < 1)
                || candidates.stream().anyMatch(n -> n < 1) || !SearchBench.SETS.containsAll(sets)) {
            throw new IllegalArgumentException("-k, --queries, --sizes, --candidates, --clustered-dimension must be positive, "
                    + "--images at least 2 and --sets among " + SearchBench.SETS);
        }
        new ImageIndex.Settings(hnswM, beamWidth, ImageIndex.Quantization.NONE); // checks the ranges
        new SearchBench(new SearchBench.Options(model, data, split, images, sizes, queries, k, threads, seed, candidates,
                quantization.stream().map(ImageIndex.Quantization::parse).toList(), clusteredDimension, hnswM, beamWidth, sets),
                System.out).run();
        return 0;
    }
}
