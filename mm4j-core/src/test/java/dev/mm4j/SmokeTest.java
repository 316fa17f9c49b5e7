package dev.mm4j;

import ai.djl.engine.Engine;
import ai.djl.ndarray.*;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

class SmokeTest {
    @Test
    void engineWorks() {
        System.out.println(Engine.getInstance().getEngineName() + " " + Engine.getInstance().getVersion());
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w = m.randomNormal(new Shape(4, 3));
            w.setRequiresGradient(true);
            NDArray x = m.ones(new Shape(2, 3));
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y = ai.djl.nn.core.Linear.linear(x, w, null).get(0);
                NDArray loss = y.sum();
                gc.backward(loss);
            }
            System.out.println(w.getGradient());
        }
    }
}
