package dev.mm4j.cli;

import dev.mm4j.bench.LoaderBench;
import dev.mm4j.data.Padding;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mm4j bench-loader}: the data pipeline alone (decode + RGB + ToTensor + resize + tokenize + collate). */
@Command(
        name = "bench-loader",
        mixinStandardHelpOptions = true,
        description = "Generate a synthetic TextVQA of N questions on photo-size JPEGs (~1024x768) and time the "
                + "DataLoader over them (decode, to-tensor + resize, tokenize, collate).")
public final class BenchLoaderCommand implements Callable<Integer> {

    @Option(names = {"-n", "--count"}, description = "number of questions (default ${DEFAULT-VALUE})")
    int count = 200;

    @Option(names = "--dir", description = "where to write the dataset (default: a temp dir, deleted afterwards)")
    Path dir;

    @Option(names = "--image-width", description = "generated width (default ${DEFAULT-VALUE})")
    int imageWidth = 1024;

    @Option(names = "--image-height", description = "generated height (default ${DEFAULT-VALUE})")
    int imageHeight = 768;

    @Option(names = {"-w", "--workers"}, description = "loader threads (default ${DEFAULT-VALUE})")
    int workers = 2;

    @Option(names = {"-b", "--batch-size"}, description = "batch size (default ${DEFAULT-VALUE})")
    int batchSize = 2;

    @Option(names = "--prefetch", description = "batches decoded ahead (default ${DEFAULT-VALUE})")
    int prefetch = 4;

    @Option(names = "--size", description = "output image size (default ${DEFAULT-VALUE})")
    int size = 224;

    @Option(names = "--antialias", description = "antialiased resize (torchvision >= 0.17)")
    boolean antialias;

    @Option(names = "--padding", description = "fixed (to --max-length, the tutorial) or dynamic (default ${DEFAULT-VALUE})")
    String padding = "fixed";

    @Option(names = "--max-length", description = "question max length (default ${DEFAULT-VALUE})")
    int maxLength = 512;

    @Option(names = "--warmup", description = "samples run first and not timed (JIT warm-up; default ${DEFAULT-VALUE})")
    int warmup = 20;

    @Option(names = "--seed", description = "generator seed (default ${DEFAULT-VALUE})")
    long seed = 1;

    @Override
    public Integer call() throws Exception {
        new LoaderBench(new LoaderBench.Options(count, dir, imageWidth, imageHeight, workers, batchSize, prefetch, size,
                antialias, Padding.parse(padding), maxLength, warmup, seed), System.out).run();
        return 0;
    }
}
