package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

/**
 * TorchMultimodal's {@code MLP}: for each hidden width {@code Linear -> activation -> Dropout (only if
 * dropout > 0)}, then a final {@code Linear}. Children are named by their position in that sequence
 * under {@code model.} ({@code model.0}, {@code model.3}, ...), as in the PyTorch state dict.
 */
public final class Mlp extends Module {
    private final List<Linear> linears = new ArrayList<>();
    private final Activation activation;
    private final float dropout;

    /**
     * @param linearFactory makes a Linear for (in, out): the init differs between the encoders'
     *     feed-forwards (normal 0.02) and the classifier head (PyTorch default)
     */
    public Mlp(long in, long out, List<Long> hidden, Activation activation, double dropout,
            BiFunction<Long, Long, Linear> linearFactory) {
        this.activation = activation;
        this.dropout = (float) dropout;
        Sequential model = child("model", new Sequential());
        int index = 0;
        long dim = in;
        for (long h : hidden) {
            linears.add(model.add(index, linearFactory.apply(dim, h)));
            index += dropout > 0 ? 3 : 2; // Linear, activation[, Dropout]
            dim = h;
        }
        linears.add(model.add(index, linearFactory.apply(dim, out)));
    }

    public NDArray forward(NDArray x) {
        if (precision() != Precision.FP32 && linears.size() == 2 && activation == Activation.GELU
                && !(dropout > 0 && isTraining())) {
            // one op: the (B, L, intermediate) activation stays in bfloat16, half the memory of float32
            Linear a = linears.get(0);
            Linear b = linears.get(1);
            return TorchOps.on(x).mlpGelu(precision(), x, a.weight(), a.bias(), b.weight(), b.bias());
        }
        NDArray h = x;
        for (int i = 0; i < linears.size(); i++) {
            h = linears.get(i).forward(h);
            if (i < linears.size() - 1) {
                h = activation.apply(h);
                if (dropout > 0 && isTraining()) {
                    h = ai.djl.nn.norm.Dropout.dropout(h, dropout, true).singletonOrThrow();
                }
            }
        }
        return h;
    }

    /** A container whose children are named by index, like {@code nn.Sequential}. */
    private static final class Sequential extends Module {
        <M extends Module> M add(int index, M m) {
            return child(Integer.toString(index), m);
        }
    }
}
