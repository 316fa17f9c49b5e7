package dev.mm4j.flava;

import ai.djl.ndarray.NDManager;
import dev.mm4j.nn.Module;

/**
 * What every FLAVA task model shares: its validated config and the FLAVA model under {@code model.*} (the first
 * child, so parameter names and order are TorchMultimodal's); the subclass adds its head.
 */
public abstract class FlavaWithHead extends Module {
    protected final FlavaConfig config;
    protected final FlavaModel model;

    protected FlavaWithHead(FlavaConfig config) {
        this.config = config.validate();
        this.model = child("model", new FlavaModel(config));
    }

    /** {@code m} with its parameters allocated, randomly initialized, on {@code manager}'s device. */
    protected static <M extends FlavaWithHead> M allocated(M m, NDManager manager) {
        m.allocate(manager);
        return m;
    }

    public FlavaConfig config() {
        return config;
    }

    public FlavaModel flava() {
        return model;
    }

    /** See {@link LossModel#layerByLayer}: every task model's layers are FLAVA's. */
    public void layerByLayer(boolean on) {
        model.layerByLayer(on);
    }
}
