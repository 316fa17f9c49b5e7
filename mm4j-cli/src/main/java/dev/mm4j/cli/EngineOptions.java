package dev.mm4j.cli;

import ai.djl.Device;
import dev.mm4j.util.Hardware;
import picocli.CommandLine.Option;

/** Where the model runs: the options every command that runs a model shares (a picocli mixin). */
public final class EngineOptions {
    @Option(names = "--device", paramLabel = "DEV", description = "cpu, gpu, gpu:N or auto (default: MM4J_DEVICE, else cpu)")
    String device;

    @Option(names = "--threads", paramLabel = "N", description = "libtorch intra-op threads; 0 = all cores (default: ${DEFAULT-VALUE})")
    int threads = 0;

    /** The device asked for (a clear error when it is not there). */
    public Device device() {
        return Hardware.device(device);
    }

    /** The device spec as given (null: the default). */
    public String deviceSpec() {
        return device;
    }

    /** Sets libtorch's threads; returns how many. */
    public int configureThreads() {
        return Hardware.configureThreads(threads);
    }
}
