package dev.mm4j.nn;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import org.junit.jupiter.api.Test;

/** How a trained model's precision is chosen: its own, unless asked otherwise or bf16 would be emulated. */
class PrecisionTest {
    static final Device CPU = Device.cpu();

    @Test
    void aModelRunsInThePrecisionItWasTrainedInWhereTheHardwareHasIt() {
        assertEquals(Precision.BF16, Precision.choose(null, Precision.BF16, CPU, true).precision());
        assertEquals("precision: bf16 (trained in bf16)", Precision.choose(null, Precision.BF16, CPU, true).toString());
        assertEquals(Precision.FP32, Precision.choose(null, Precision.FP32, CPU, true).precision());
        assertEquals(Precision.FP32, Precision.choose(null, Precision.FP32, CPU, false).precision());
    }

    @Test
    void aBf16ModelOnACpuWithoutBf16InstructionsRunsInFp32AndSaysWhy() {
        Precision.Choice c = Precision.choose(null, Precision.BF16, CPU, false);
        assertEquals(Precision.FP32, c.precision());
        assertTrue(c.toString().startsWith("precision: fp32 (trained in bf16, but cpu() has no bfloat16 instructions"), c.toString());
    }

    @Test
    void aModelThatRecordsNoPrecisionRunsInFp32() {
        assertEquals(Precision.FP32, Precision.choose(null, null, CPU, true).precision());
    }

    @Test
    void whatIsAskedForWinsAndAutoFollowsTheHardware() {
        assertEquals(Precision.BF16, Precision.choose("bf16", Precision.FP32, CPU, false).precision(), "bf16 forced, even emulated");
        assertEquals(Precision.FP32, Precision.choose("fp32", Precision.BF16, CPU, true).precision());
        assertEquals(Precision.BF16, Precision.choose("auto", Precision.FP32, CPU, true).precision());
        assertEquals(Precision.FP32, Precision.choose("auto", Precision.BF16, CPU, false).precision());
        assertEquals("precision: bf16 (auto chose it on cpu())", Precision.choose("AUTO", null, CPU, true).toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Precision.choose("fp16", null, CPU, true));
        assertEquals("unknown precision 'fp16' (fp32, bf16, int8, auto)", e.getMessage());
    }

    /** int8 is asked for by name only (auto never picks it), and on the CPU only: its kernels are oneDNN's CPU ones. */
    @Test
    void int8IsAskedForAndRunsOnTheCpuOnly() {
        assertEquals(Precision.INT8, Precision.choose("int8", Precision.BF16, CPU, true).precision());
        assertEquals(Precision.INT8, Precision.resolve(" INT8 ", CPU));
        assertNotEquals(Precision.INT8, Precision.choose("auto", null, CPU, true).precision());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Precision.resolve("int8", ai.djl.Device.gpu()));
        assertTrue(e.getMessage().startsWith("precision int8 runs on the CPU only"), e.getMessage());
    }
}
