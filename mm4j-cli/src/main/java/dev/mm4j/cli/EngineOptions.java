package dev.mm4j.cli;

import ai.djl.Device;
import dev.mm4j.nn.Precision;
import dev.mm4j.nn.TorchOps;
import dev.mm4j.util.Hardware;
import java.util.List;
import picocli.CommandLine.Option;

/** Where the model runs: the options every command that runs a model shares (a picocli mixin). */
public final class EngineOptions {
    @Option(names = "--device", paramLabel = "DEV", description = "cpu, gpu, gpu:N or auto (default: MM4J_DEVICE, else cpu)")
    String device;

    @Option(names = "--threads", paramLabel = "N", description = "libtorch intra-op threads; 0 = all cores (default: ${DEFAULT-VALUE})")
    int threads = 0;

    @Option(names = "--precision", paramLabel = "P", split = ",", description = "fp32, bf16 (bfloat16 matrix products, "
            + "float32 weights, as torch.autocast), int8 (inference only: the linear layers in int8, oneDNN's kernels in libtorch, dynamic "
            + "quantization, weights quantized once) or auto (bf16 where the CPU has avx512_bf16/AMX or on a GPU, else fp32); "
            + "bench and bench-serve take a list, e.g. fp32,bf16 (default: a trained model's own, recorded in its bundle.json, "
            + "where a bf16 model runs in fp32 on a CPU without avx512_bf16/AMX; finetune: the preset's; bench, bench-serve: fp32). "
            + "bf16 asked for on a CPU without AVX-512 runs libtorch's fallback, about 100x slower than fp32 (a warning "
            + "says so; bench leaves it out)")
    List<String> precision;

    /**
     * For a command that runs a trained model: the one precision asked for (fp32, bf16, int8, auto), or null for the
     * model's own ({@code ModelBundle.load} chooses it and logs its choice).
     */
    public String modelPrecision() {
        if (precision != null && precision.size() > 1) {
            throw new IllegalArgumentException("--precision takes one value here, got " + precision);
        }
        String spec = precisionSpec();
        if (spec != null) {
            Precision.resolve(spec, Device.cpu()); // an unknown name fails here, in one line
        }
        return spec;
    }

    /** An embedding model in the precision asked for (--precision: fp32, bf16, int8, auto), else as loaded (fp32). */
    dev.mm4j.inference.Embedder withAskedPrecision(dev.mm4j.inference.Embedder e) {
        String p = precisionSpec();
        return p == null ? e : e.withPrecision(Precision.resolve(p, device()));
    }

    /** The precision setting as given (null: the default). */
    public String precisionSpec() {
        return precision == null || precision.isEmpty() ? null : String.join(",", precision);
    }

    /** Every precision of a list (bench compares them side by side), each resolved on {@code device}; fp32 by default. */
    public List<Precision> precisions(Device device) {
        return precisions(device, List.of("fp32"));
    }

    /**
     * Every precision of the list asked for, else of {@code defaults}, each resolved on {@code device}, for a bench: bf16
     * is left out, with a line saying why, where libtorch has no fast bfloat16 products ({@link TorchOps#fastBf16}: an
     * AVX2-only CPU, where one full-size bf16 step would take minutes).
     */
    public List<Precision> precisions(Device device, List<String> defaults) {
        List<String> specs = precision == null || precision.isEmpty() ? defaults : precision;
        List<Precision> all = specs.stream().map(p -> Precision.resolve(p, device)).distinct().toList();
        if (all.contains(Precision.BF16) && !TorchOps.fastBf16(device)) {
            String why = device + " has no fast bfloat16 products (libtorch's oneDNN runs bfloat16 only with AVX-512 or "
                    + "AVX-NE-CONVERT; its fallback is about 100x slower than fp32)";
            List<Precision> rest = all.stream().filter(p -> p != Precision.BF16).toList();
            if (rest.isEmpty()) {
                throw new IllegalArgumentException("--precision bf16: " + why + "; bench fp32 or int8 here");
            }
            System.out.println("bf16: left out, " + why);
            return rest;
        }
        return all;
    }

    /** The device asked for (a clear error when it is not there). */
    public Device device() {
        return Hardware.device(device);
    }

    /** The device spec as given (null: the default). */
    public String deviceSpec() {
        return device;
    }

    /**
     * For serving: sets libtorch's threads, with 0 meaning half the cores (at least 1): the other half decode
     * images and answer HTTP beside the forward passes, and libtorch's threads do not fight other processes for
     * every core (all cores lost 2-3x under a competing load on 2 cores; README, Serve). Returns how many.
     */
    public int configureServingThreads() {
        return Hardware.configureThreads(threads > 0 ? threads : Math.max(1, Runtime.getRuntime().availableProcessors() / 2));
    }

    /** Sets libtorch's threads; returns how many. */
    public int configureThreads() {
        return Hardware.configureThreads(threads);
    }
}
