package dev.mm4j.cli;

import dev.mm4j.flava.FlavaConfig;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options that pick a FLAVA configuration, shared by the commands that build a model (a picocli mixin). */
public final class ModelOptions {
    @Option(names = "--config", paramLabel = "FILE",
            description = "FLAVA config: YAML/JSON of TorchMultimodal's kwargs (image_hidden_size, num_classes, ...); "
                    + "keys not given take FLAVA's full-size defaults")
    Path config;

    @Option(names = "--num-classes", paramLabel = "N", description = "overrides num_classes (default: "
            + FlavaConfig.TEXTVQA_CLASSES + ", TextVQA's answer vocabulary)")
    Integer numClasses;

    public FlavaConfig load() throws IOException {
        return load(FlavaConfig.fullSize(FlavaConfig.TEXTVQA_CLASSES));
    }

    /** The --config file (else {@code defaults}) with --num-classes applied. */
    public FlavaConfig load(FlavaConfig defaults) throws IOException {
        FlavaConfig c = config != null ? FlavaConfig.load(config) : defaults.copy();
        if (numClasses != null) {
            c.numClasses = numClasses;
        }
        return c.validate();
    }
}
