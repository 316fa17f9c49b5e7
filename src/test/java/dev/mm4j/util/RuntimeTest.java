package dev.mm4j.util;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class RuntimeTest {
    @Test
    void aGpuIsAskedForOnlyByDeviceSettings() {
        assertFalse(Runtime.gpuAskedFor(new String[] {"evaluate", "--model", "m", "--data", "gpu-data"}, null, null));
        assertFalse(Runtime.gpuAskedFor(new String[] {"finetune", "--device", "cpu"}, "cpu", "cpu"));
        assertTrue(Runtime.gpuAskedFor(new String[] {"finetune", "--device", "gpu:1"}, null, null));
        assertTrue(Runtime.gpuAskedFor(new String[] {"finetune", "--device=cuda"}, null, null));
        assertTrue(Runtime.gpuAskedFor(new String[] {"finetune", "--set", "device=auto"}, null, null));
        assertTrue(Runtime.gpuAskedFor(new String[] {"predict"}, "gpu", null));
        assertTrue(Runtime.gpuAskedFor(new String[] {"predict"}, null, "GPU"));
    }
}
