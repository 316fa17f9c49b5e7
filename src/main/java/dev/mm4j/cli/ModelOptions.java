package dev.mm4j.cli;

import dev.mm4j.flava.FlavaConfig;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options that pick a FLAVA configuration, shared by the commands that build a model. */
public final class ModelOptions {
    @Option(names = "--config", paramLabel = "FILE",
            description = "FLAVA config: YAML/JSON of TorchMultimodal's kwargs (image_hidden_size, num_classes, ...); "
                    + "keys not given take FLAVA's full-size defaults")
    Path config;

    @Option(names = "--num-classes", paramLabel = "N", description = "overrides num_classes (default: 3997, TextVQA's answer vocabulary)")
    Integer numClasses;

    @Option(names = "--device", paramLabel = "DEV", description = "cpu, gpu, gpu:N or auto (default: MM4J_DEVICE, else cpu)")
    String device;

    public FlavaConfig load() throws IOException {
        return load(FlavaConfig.fullSize(3997));
    }

    /** The --config file (else {@code defaults}) with --num-classes applied. */
    public FlavaConfig load(FlavaConfig defaults) throws IOException {
        FlavaConfig c = config != null ? FlavaConfig.load(config) : defaults.copy();
        if (numClasses != null) {
            c.numClasses = numClasses;
        }
        return c.validate();
    }

    public String device() {
        return device;
    }
}
