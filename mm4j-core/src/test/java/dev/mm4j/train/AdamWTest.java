package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.mm4j.nn.Init;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import java.util.Map;
import org.junit.jupiter.api.Test;

class AdamWTest {

    /** One 3x4 weight, loss = sum(w * c): gradient c. */
    static final class One extends Module {
        final Parameter w = parameter("w", Init.zeros(), 3, 4);
    }

    /**
     * The one-pass update writes into the parameters' own memory, so a parameter must be updated wherever
     * its values came from — also a checkpoint tensor stored with column-major strides (the fixture's
     * "views" variant), which a plain clone would keep non-contiguous. Both optimizer modes must agree
     * with PyTorch's AdamW step written out by hand.
     */
    @Test
    void updatesParametersLoadedFromNonContiguousTensors() {
        float[] c = new float[12];
        for (int i = 0; i < 12; i++) {
            c[i] = (i - 5) * 0.25f;
        }
        for (AdamW.Mode mode : AdamW.Mode.values()) {
            try (NDManager m = NDManager.newBaseManager()) {
                One model = new One();
                model.allocate(m);
                float[] start = new float[12];
                for (int i = 0; i < 12; i++) {
                    start[i] = 0.1f * i;
                }
                // (4,3) transposed: a (3,4) view with strides (1,3), as torch.save stores a transposed weight
                NDArray transposed = m.create(start, new Shape(4, 3)).transpose();
                float[] rowMajor = transposed.toFloatArray();
                model.w.copyFrom(transposed);
                NDArray coef = m.create(c, new Shape(3, 4)).duplicate();
                try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m, mode)) {
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        gc.backward(model.w.array().mul(coef).sum());
                    }
                    opt.step(1e-3, 1.0);
                }
                float[] got = model.w.array().toFloatArray();
                for (int i = 0; i < 12; i++) {
                    // step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected: w - lr * g / (|g| + eps) after decay
                    double g = c[i];
                    double expected = rowMajor[i] * (1 - 1e-3 * 1e-2) - (g == 0 ? 0 : 1e-3 * g / (Math.abs(g) + 1e-8));
                    assertEquals(expected, got[i], 1e-6, mode + " element " + i);
                }
            }
        }
    }
}
