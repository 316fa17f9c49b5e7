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
    void aDeviceSettingAloneQuietsTheCudaProbeUnlessItNamesAGpu() {
        String before = System.getProperty(Hardware.CUDA_PROBE_LOG_KEY);
        try {
            System.clearProperty(Hardware.CUDA_PROBE_LOG_KEY);
            Hardware.quietGpuProbeUnlessAsked("gpu:0");
            assertNull(System.getProperty(Hardware.CUDA_PROBE_LOG_KEY), "a GPU asked for keeps CUDA's reason");
            Hardware.quietGpuProbeUnlessAsked("cpu");
            assertEquals("error", System.getProperty(Hardware.CUDA_PROBE_LOG_KEY));
            System.clearProperty(Hardware.CUDA_PROBE_LOG_KEY);
            Hardware.quietGpuProbeUnlessAsked((String) null);
            assertEquals("error", System.getProperty(Hardware.CUDA_PROBE_LOG_KEY));
        } finally {
            if (before == null) {
                System.clearProperty(Hardware.CUDA_PROBE_LOG_KEY);
            } else {
                System.setProperty(Hardware.CUDA_PROBE_LOG_KEY, before);
            }
        }
    }

    @Test
    void bf16InstructionsAreReadFromTheCpuFlags() {
        assertTrue(Hardware.hasBf16Flag("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni"));
        assertTrue(Hardware.hasBf16Flag("flags\t\t: fpu amx_bf16 amx_tile"));
        assertFalse(Hardware.hasBf16Flag("flags\t\t: fpu avx2 avx512f avx512_vnni"));
        assertFalse(Hardware.hasBf16Flag("flags\t\t: fpu avx512_bf16x"));
    }

    /** int8 inputs take 8 bits only where the CPU sums int8 products in 32 bits (VNNI or AMX): see TorchOps. */
    @Test
    void int8DotProductsAreReadFromTheCpuFlags() {
        assertTrue(Hardware.hasFlag("flags\t\t: fpu avx2 avx512f avx512_vnni", Hardware.INT8_DOT_FLAGS));
        assertTrue(Hardware.hasFlag("flags\t\t: fpu avx2 avx_vnni", Hardware.INT8_DOT_FLAGS));
        assertTrue(Hardware.hasFlag("flags\t\t: fpu amx_int8 amx_tile", Hardware.INT8_DOT_FLAGS));
        assertFalse(Hardware.hasFlag("flags\t\t: fpu avx2 avx512f avx512bw", Hardware.INT8_DOT_FLAGS));
        assertFalse(Hardware.hasFlag("", Hardware.INT8_DOT_FLAGS));
    }
}
