package dev.mm4j.cli;

import dev.mm4j.bench.LoadBench;
import dev.mm4j.flava.FlavaConfig;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j bench-load}: checkpoint loading of the full-size model, .pt and .safetensors side by side. */
@Command(
        name = "bench-load",
        mixinStandardHelpOptions = true,
        description = "Write the full-size FLAVA model's random weights as .pt and/or .safetensors, then load each into a "
                + "fresh model: file size, write / parse / load times, MB/s, RSS and peak RSS, and a check of a few tensors.")
public final class BenchLoadCommand implements Callable<Integer> {

    @Option(names = "--format", description = "pt, safetensors or both (default: ${DEFAULT-VALUE})")
    LoadBench.Format format = LoadBench.Format.both;

    @Option(names = "--dir", description = "where to write the checkpoints (default: a temp dir)")
    Path dir;

    @Option(names = "--keep", description = "keep the checkpoint files (default: deleted afterwards)")
    boolean keep;

    @Option(names = "--classes", description = "answer classes of the classifier (default: ${DEFAULT-VALUE})")
    int classes = FlavaConfig.TEXTVQA_CLASSES;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        engine.configureThreads();
        return new LoadBench(format, dir, keep, classes, System.out).run() ? 0 : 1;
    }
}
