package dev.mm4j.nn;

import ai.djl.Device;
import dev.mm4j.util.Hardware;
import java.util.Locale;

/**
 * The arithmetic of the model's matrix products: float32 throughout, or bfloat16 products with float32
 * master weights, layer norms, residual sums and loss ({@code torch.autocast(dtype=torch.bfloat16)}'s
 * semantics, see {@link TorchOps}). The run's {@code precision} setting: {@code fp32}, {@code bf16} or
 * {@code auto} (bfloat16 where the hardware multiplies it natively, float32 elsewhere).
 */
public enum Precision {
    FP32,
    BF16,
    /**
     * Inference only: the linear layers' products in int8 (oneDNN's int8 products through libtorch, dynamic
     * quantization: each weight quantized once, per output row, on first use; each input quantized per call, per
     * tensor, from its range), the rest in float32.
     */
    INT8;

    /** The setting's name, also the suffix of the op library's methods. */
    public String code() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The settings' values: fp32, bf16, int8 (inference only), auto. */
    public static final String CHOICES = "fp32, bf16, int8, auto";

    /**
     * The precision named by {@code setting} on {@code device}: {@code auto} is bf16 on a GPU and on a CPU with
     * bfloat16 instructions (avx512_bf16 or AMX), else fp32 (a CPU that would emulate bfloat16 runs slower).
     */
    public static Precision resolve(String setting, Device device) {
        String s = setting == null ? "fp32" : setting.trim().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "fp32", "float32" -> FP32;
            case "bf16", "bfloat16" -> BF16;
            case "int8" -> {
                if (device.isGpu()) {
                    throw new IllegalArgumentException("precision int8 runs on the CPU only (oneDNN's int8 kernels), not on "
                            + device + ": use bf16 there");
                }
                yield INT8;
            }
            case "auto" -> nativeBf16(device) ? BF16 : FP32;
            default -> throw new IllegalArgumentException("unknown precision '" + setting + "' (" + CHOICES + ")");
        };
    }

    /** Whether {@code device} multiplies bfloat16 natively: a GPU, or a CPU with avx512_bf16 or AMX. */
    public static boolean nativeBf16(Device device) {
        return device.isGpu() || Hardware.cpuHasBf16();
    }

    /**
     * A precision chosen for a trained model, and why (printed: the choice is never silent).
     *
     * @param precision what the matrix products run in
     * @param why how it was chosen, e.g. "trained in bf16"
     */
    public record Choice(Precision precision, String why) {
        @Override
        public String toString() {
            return "precision: " + precision.code() + " (" + why + ")";
        }
    }

    /**
     * The precision a model trained in {@code trained} runs in on {@code device}: {@code asked} (fp32, bf16 or auto)
     * when given, else the one it was trained in, where bf16 resolves like auto: fp32 on a CPU without bfloat16
     * instructions, which would run it slower. {@code trained} null (a model that records none): fp32.
     */
    public static Choice choose(String asked, Precision trained, Device device) {
        return choose(asked, trained, device, nativeBf16(device));
    }

    /** As {@link #choose(String, Precision, Device)} with {@code nativeBf16} telling whether the device has bf16. */
    static Choice choose(String asked, Precision trained, Device device, boolean nativeBf16) {
        if (asked != null) {
            boolean auto = asked.trim().equalsIgnoreCase("auto");
            Precision p = auto ? (nativeBf16 ? BF16 : FP32) : resolve(asked, device);
            return new Choice(p, auto ? "auto chose it on " + device : "asked for");
        }
        if (trained == null) {
            return new Choice(FP32, "none recorded, so trained in fp32");
        }
        if (trained == BF16 && !nativeBf16) {
            return new Choice(FP32, "trained in bf16, but " + device + " has no bfloat16 instructions (avx512_bf16, AMX), "
                    + "where bf16 runs slower; asking for bf16 forces it");
        }
        return new Choice(trained, "trained in " + trained.code());
    }
}
