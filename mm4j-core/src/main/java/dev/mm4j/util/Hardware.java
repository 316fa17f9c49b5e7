package dev.mm4j.util;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.engine.StandardCapabilities;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Engine settings in one place: the device (CPU by default, a GPU when the CUDA libtorch is present
 * and asked for) and libtorch's thread pools.
 */
public final class Hardware {
    private Hardware() {}

    /**
     * The device named by {@code spec}: {@code cpu}, {@code gpu}/{@code cuda} (first GPU),
     * {@code gpu:N}, or {@code auto} (a GPU when the engine sees one, else the CPU). Null reads
     * {@code -Dmm4j.device}, then {@code MM4J_DEVICE}, then defaults to {@code cpu}.
     */
    public static Device device(String spec) {
        if (spec == null) {
            spec = System.getProperty("mm4j.device", System.getenv().getOrDefault("MM4J_DEVICE", "cpu"));
        }
        String s = spec.trim().toLowerCase();
        if (s.equals("auto")) {
            return Engine.getInstance().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        }
        if (s.equals("cpu")) {
            return Device.cpu();
        }
        if (s.startsWith("gpu") || s.startsWith("cuda")) {
            int id = s.contains(":") ? Integer.parseInt(s.substring(s.indexOf(':') + 1)) : 0;
            int gpus = Engine.getInstance().getGpuCount();
            if (id >= gpus) {
                boolean cuda = Engine.getInstance().hasCapability(StandardCapabilities.CUDA);
                throw new IllegalArgumentException("device " + spec + ": " + (cuda
                        ? "libtorch has CUDA but sees " + gpus + " GPU(s) (driver, CUDA_VISIBLE_DEVICES?); use --device cpu"
                        : "the libtorch in use is CPU-only and sees no GPU; for a GPU build with -Pgpu and run once with "
                                + "MM4J_OFFLINE=false on a CUDA 12.8 machine (README, Scaling), or use --device cpu"));
            }
            return Device.gpu(id);
        }
        throw new IllegalArgumentException("unknown device '" + spec + "' (cpu, gpu, gpu:N, auto)");
    }

    /** The slf4j-simple level key of DJL's CUDA probe logger. */
    static final String CUDA_PROBE_LOG_KEY = "org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils";

    /**
     * DJL probes for CUDA whenever the engine starts and, on a machine with a CUDA library but no usable GPU, warns
     * "Failed to detect GPU count" two to four times per command. Unless a GPU was asked for, this keeps that probe
     * quiet (its logger at error level); when one was asked for, the warning (with CUDA's reason) stays, and
     * {@link #device} says clearly when none is usable. Call before anything starts the engine; a level the user set
     * for that logger wins.
     */
    public static void quietGpuProbeUnlessAsked(String[] args) {
        if (System.getProperty(CUDA_PROBE_LOG_KEY) == null
                && !gpuAskedFor(args, System.getenv("MM4J_DEVICE"), System.getProperty("mm4j.device"))) {
            System.setProperty(CUDA_PROBE_LOG_KEY, "error");
        }
    }

    /**
     * {@link #quietGpuProbeUnlessAsked(String[])} for a device setting alone, where no command line runs (a Spark
     * executor's tasks: their JVMs start the engine themselves).
     */
    public static void quietGpuProbeUnlessAsked(String device) {
        quietGpuProbeUnlessAsked(device == null ? new String[0] : new String[] {"--device", device});
    }

    /**
     * Whether a command line ({@code --device X}, {@code --device=X}, {@code --set device=X}), the environment
     * ({@code MM4J_DEVICE}) or {@code -Dmm4j.device} asks for a GPU ({@code gpu}, {@code gpu:N}, {@code cuda},
     * {@code auto}).
     */
    static boolean gpuAskedFor(String[] args, String env, String property) {
        if (isGpu(env) || isGpu(property)) {
            return true;
        }
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if ((a.equals("--device") && i + 1 < args.length && isGpu(args[i + 1]))
                    || (a.startsWith("--device=") && isGpu(a.substring("--device=".length())))
                    || (a.startsWith("device=") && isGpu(a.substring("device=".length())))) {
                return true;
            }
        }
        return false;
    }

    private static boolean isGpu(String spec) {
        if (spec == null) {
            return false;
        }
        String s = spec.trim().toLowerCase(java.util.Locale.ROOT);
        return s.startsWith("gpu") || s.startsWith("cuda") || s.equals("auto");
    }

    /**
     * Sets libtorch's intra-op threads (matrix multiplies) to {@code threads}, or to the number of
     * cores when 0; inter-op parallelism is 1 since our graphs are sequential.
     */
    public static int configureThreads(int threads) {
        Engine.getInstance(); // loads libtorch
        int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        JniUtils.setNumThreads(n);
        return n;
    }

    /**
     * Turns autograd off on the calling thread (libtorch's grad mode is per thread and on by default in
     * threads the engine did not start): inference threads build no backward graph.
     */
    public static void noGradOnThisThread() {
        JniUtils.setGradMode(false);
    }

    /** Peak resident set size of this process so far, in bytes (Linux {@code VmHWM}), or -1. */
    public static long peakRssBytes() {
        return procStatus("VmHWM:");
    }

    /** Current resident set size in bytes (Linux {@code VmRSS}), or -1. */
    public static long rssBytes() {
        return procStatus("VmRSS:");
    }

    private static long procStatus(String key) {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux
        }
        return -1;
    }

    /** The CPU instruction flags that multiply bfloat16 natively. */
    static final java.util.Set<String> BF16_FLAGS = java.util.Set.of("avx512_bf16", "amx_bf16");
    /** The CPU instruction flags with int8 dot products (8-bit products summed in 32 bits, no 16-bit saturation). */
    static final java.util.Set<String> INT8_DOT_FLAGS = java.util.Set.of("avx512_vnni", "avx_vnni", "amx_int8");

    /** Whether this CPU multiplies bfloat16 natively: avx512_bf16 or AMX (amx_bf16) in {@code /proc/cpuinfo}'s flags. */
    public static boolean cpuHasBf16() {
        return hasFlag(cpuFlagsLine(), BF16_FLAGS);
    }

    /** Whether this CPU has int8 dot products: avx512_vnni, avx_vnni or AMX (amx_int8) in {@code /proc/cpuinfo}'s flags. */
    public static boolean cpuHasInt8Dot() {
        return hasFlag(cpuFlagsLine(), INT8_DOT_FLAGS);
    }

    /** {@code /proc/cpuinfo}'s first flags line, or "" where there is none (not Linux: no way to tell). */
    private static String cpuFlagsLine() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) {
                    return line;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux
        }
        return "";
    }

    /** Whether a {@code /proc/cpuinfo} flags line names avx512_bf16 or amx_bf16. */
    static boolean hasBf16Flag(String flagsLine) {
        return hasFlag(flagsLine, BF16_FLAGS);
    }

    /** Whether a {@code /proc/cpuinfo} flags line names one of {@code flags}. */
    static boolean hasFlag(String flagsLine, java.util.Set<String> flags) {
        for (String f : flagsLine.substring(flagsLine.indexOf(':') + 1).trim().split("\\s+")) {
            if (flags.contains(f)) {
                return true;
            }
        }
        return false;
    }
}
