package dev.mm4j.util;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class HardwareTest {
    @Test
    void aGpuIsAskedForOnlyByDeviceSettings() {
        assertFalse(Hardware.gpuAskedFor(new String[] {"evaluate", "--model", "m", "--data", "gpu-data"}, null, null));
        assertFalse(Hardware.gpuAskedFor(new String[] {"finetune", "--device", "cpu"}, "cpu", "cpu"));
        assertTrue(Hardware.gpuAskedFor(new String[] {"finetune", "--device", "gpu:1"}, null, null));
        assertTrue(Hardware.gpuAskedFor(new String[] {"finetune", "--device=cuda"}, null, null));
        assertTrue(Hardware.gpuAskedFor(new String[] {"finetune", "--set", "device=auto"}, null, null));
        assertTrue(Hardware.gpuAskedFor(new String[] {"predict"}, "gpu", null));
        assertTrue(Hardware.gpuAskedFor(new String[] {"predict"}, null, "GPU"));
    }

    @Test
    void bf16InstructionsAreReadFromTheCpuFlags() {
        assertTrue(Hardware.hasBf16Flag("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni"));
        assertTrue(Hardware.hasBf16Flag("flags\t\t: fpu amx_bf16 amx_tile"));
        assertFalse(Hardware.hasBf16Flag("flags\t\t: fpu avx2 avx512f avx512_vnni"));
        assertFalse(Hardware.hasBf16Flag("flags\t\t: fpu avx512_bf16x"));
    }
}
