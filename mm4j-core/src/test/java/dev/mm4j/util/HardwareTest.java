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
}
