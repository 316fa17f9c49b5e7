package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import java.io.IOException;
import java.nio.file.Path;

/** Test helper: two exported models' weights compared tensor by tensor (data-parallel against one process). */
public final class ModelWeights {
    private ModelWeights() {}

    /**
     * The floating-point tensors of the bundles in {@code modelDir} and {@code referenceDir} (the same names) are equal
     * within {@code rel} relative (against max(|reference|, 1e-3)); at least {@code minTensors} of them.
     */
    public static void assertClose(Path modelDir, Path referenceDir, double rel, int minTensors, String what)
            throws IOException {
        try (StateDict a = SafeTensors.read(modelDir.resolve(ModelBundle.WEIGHTS));
                StateDict b = SafeTensors.read(referenceDir.resolve(ModelBundle.WEIGHTS))) {
            assertEquals(b.names(), a.names());
            double worst = 0;
            String where = "";
            int compared = 0;
            for (String name : b.names()) {
                if (!b.get(name).isFloating()) {
                    continue;
                }
                float[] x = a.get(name).toFloatArray();
                float[] y = b.get(name).toFloatArray();
                assertEquals(y.length, x.length, name);
                for (int i = 0; i < y.length; i++) {
                    double r = Math.abs(x[i] - y[i]) / Math.max(Math.abs(y[i]), 1e-3);
                    if (r > worst) {
                        worst = r;
                        where = name + "[" + i + "]";
                    }
                }
                compared++;
            }
            assertTrue(compared > minTensors, "compared " + compared + " tensors");
            assertTrue(worst <= rel, what + ": max relative difference " + worst + " at " + where);
        }
    }
}
