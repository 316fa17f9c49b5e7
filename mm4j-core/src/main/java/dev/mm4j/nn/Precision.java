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
    BF16;

    /** The setting's name, also the suffix of the op library's methods. */
    public String code() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The settings' values: fp32, bf16, auto. */
    public static final String CHOICES = "fp32, bf16, auto";

    /**
     * The precision named by {@code setting} on {@code device}: {@code auto} is bf16 on a GPU and on a CPU with
     * bfloat16 instructions (avx512_bf16 or AMX), else fp32 (a CPU that would emulate bfloat16 runs slower).
     */
    public static Precision resolve(String setting, Device device) {
        String s = setting == null ? "fp32" : setting.trim().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "fp32", "float32" -> FP32;
            case "bf16", "bfloat16" -> BF16;
            case "auto" -> device.isGpu() || Hardware.cpuHasBf16() ? BF16 : FP32;
            default -> throw new IllegalArgumentException("unknown precision '" + setting + "' (" + CHOICES + ")");
        };
    }
}
