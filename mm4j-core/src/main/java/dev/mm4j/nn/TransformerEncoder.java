package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.List;

/** A stack of {@link TransformerEncoderLayer}s, named {@code layer.0 ... layer.N-1}. */
public final class TransformerEncoder extends Module {
    private final List<TransformerEncoderLayer> layers = new ArrayList<>();
    private final ActivationCheckpointing checkpointing;
    private final long dim;
    private final int heads;
    private final long intermediate;

    /**
     * @param checkpointing where the layers record when checkpointed (it decides which), or null to keep all
     *     activations
     */
    public TransformerEncoder(int numLayers, long dim, int heads, long intermediate, Activation activation,
            double eps, double initStd, ActivationCheckpointing checkpointing) {
        this.checkpointing = checkpointing;
        this.dim = dim;
        this.heads = heads;
        this.intermediate = intermediate;
        LayerList list = child("layer", new LayerList());
        for (int i = 0; i < numLayers; i++) {
            layers.add(list.add(i, new TransformerEncoderLayer(dim, heads, intermediate, activation, eps, initStd)));
        }
    }

    /** Returns the last layer's output (before any final layer norm). */
    public NDArray forward(NDArray x, NDArray additiveMask) {
        return forward(x, additiveMask, false);
    }

    /**
     * The same; {@code stacked}: the batch stacks inputs whose outputs have different readers (e.g. pretraining's
     * unmasked image, read by the loss, and masked image, read by the multimodal encoder). When these layers keep
     * their activations and a reader may run checkpointed, they run recorded layer by layer, so that the backward
     * pass goes through them once, with every reader's gradient (ActivationCheckpointing#recordsKeptLayers).
     */
    public NDArray forward(NDArray x, NDArray additiveMask, boolean stacked) {
        return forward(x, additiveMask, stacked, 0);
    }

    /**
     * The same; {@code outputTokens} &gt; 0: the output only for the first {@code outputTokens} tokens, (B, outputTokens,
     * D), when the reader takes no more (e.g. a classifier on token 0): the last layer then projects queries, attends
     * and runs its MLP for those tokens alone (the same numbers for them); 0: every token.
     */
    public NDArray forward(NDArray x, NDArray additiveMask, boolean stacked, int outputTokens) {
        if (checkpointing != null && checkpointing.checkpoints(this, precision(), x.getShape().get(0), x.getShape().get(1),
                additiveMask == null ? x.getShape().get(1) : additiveMask.getShape().get(3))) {
            return checkpointing.forward(layers, x, additiveMask, outputTokens);
        }
        if (checkpointing != null && checkpointing.recordsKeptLayers(stacked, precision())) {
            // a leaf behind its layers: every reader summed
            return checkpointing.forwardKept(layers, x, additiveMask, outputTokens);
        }
        // each layer's intermediates are dropped when it returns, and each layer's output once the next layer
        // has run on it: autograd keeps what the backward pass needs (see Transients)
        NDArray h = x;
        for (int i = 0; i < layers.size(); i++) {
            TransformerEncoderLayer layer = layers.get(i);
            NDArray in = h;
            int queries = i == layers.size() - 1 ? outputTokens : 0;
            h = Transients.keepResult(() -> layer.forward(in, additiveMask, queries));
            if (in != x) {
                in.close();
            }
        }
        return h;
    }

    /** This encoder's run on {@code batch} samples of {@code tokens} tokens attending to {@code keys} keys. */
    public ActivationCheckpointing.Run run(long batch, long tokens, long keys) {
        return new ActivationCheckpointing.Run(this, batch, tokens, keys);
    }

    int layers() {
        return layers.size();
    }

    long dim() {
        return dim;
    }

    int heads() {
        return heads;
    }

    long intermediate() {
        return intermediate;
    }

    private static final class LayerList extends Module {
        TransformerEncoderLayer add(int i, TransformerEncoderLayer l) {
            return child(Integer.toString(i), l);
        }
    }
}
