package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Activation checkpointing per transformer layer ({@code torch.utils.checkpoint}, built from what DJL
 * offers): while gradients are recorded, each layer runs without recording, and only its input is kept;
 * {@link #backward(java.util.function.Consumer)}, called after the loss's backward pass, goes through the layers in reverse, runs
 * each one again with recording on its kept input (a leaf that requires a gradient) and back-propagates
 * the gradient of its output into the layer's parameters and its input. Peak activation memory drops to
 * the layers' inputs plus one layer's activations, for about one more forward pass of the layers.
 *
 * <p>One instance serves a whole model: the encoders record into it in forward order, so going through
 * it in reverse also carries gradients from one encoder into the next ({@code Bridge}: an encoder's
 * first input is a node of the recorded graph, e.g. the embeddings, which is back-propagated once its
 * gradient is known). Recomputation is exact: the layers are deterministic (encoder dropout is 0).
 *
 * <p>Layers that keep their activations (not checkpointed) can be recorded the same way, each layer's graph apart
 * ({@link #layerByLayer}): the backward pass then goes through them one by one without recomputing them, so a
 * training step can update each layer and release its gradients as soon as they are complete, whatever the precision.
 * Such bf16 layers keep no weight copies of their own ({@link SharedBf16Copies}), so none of them needs recomputing
 * to stay within float32's memory.
 *
 * <p>Memory: each layer's no-grad forward and each recomputation run in their own {@link NDScope}, so
 * their intermediates are freed at once instead of at the end of the step; kept inputs belong to the step.
 */
public final class ActivationCheckpointing {

    private sealed interface Entry permits Bridge, Layer {}

    /**
     * {@code leaf} is a detached copy of {@code graphOutput} that the first layer ran on; {@code recorded}: whether
     * {@code graphOutput} requires a gradient (a node of the recorded graph, or a leaf that asks for its gradient),
     * so that the backward pass goes on into it.
     */
    private record Bridge(NDArray graphOutput, NDArray leaf, boolean recorded) implements Entry {}

    /**
     * A layer that ran on {@code input} (a leaf) and gave {@code output} (a leaf, the next layer's input): recomputed in
     * the backward pass when {@code graphOutput} is null (checkpointed), else {@code graphOutput} is the recorded node
     * whose detached copy {@code output} is (the layer kept its activations; see {@link #layerByLayer}).
     */
    private record Layer(TransformerEncoderLayer layer, NDArray input, NDArray mask, int queries, NDArray output,
            NDArray graphOutput, SharedBf16Copies copies, boolean last) implements Entry {}

    private final List<Entry> tape = new ArrayList<>();
    /** The buffers that the bf16 weight copies of layers recorded layer by layer share ({@link SharedBf16Copies}). */
    private final SharedBf16Copies.Pool copyBuffers = new SharedBf16Copies.Pool();
    private final boolean everyLayer;
    private final boolean bf16Rule;
    private boolean layerByLayer;
    /** The encoders of the coming forward pass's {@link #plan} (null: none; each encoder then decides alone). */
    private Set<TransformerEncoder> planned;
    /** Those of them that the plan recomputes. */
    private Set<TransformerEncoder> recomputed;

    /** One run of an encoder in a forward pass: on {@code batch} samples of {@code tokens} tokens attending to {@code keys} keys. */
    public record Run(TransformerEncoder encoder, long batch, long tokens, long keys) {}

    /**
     * @param everyLayer checkpoint every layer (the {@code activation_checkpointing} setting); false checkpoints only
     *     the bf16 layers that would keep more for the backward pass than float32 ({@link #bf16KeepsMore})
     */
    public ActivationCheckpointing(boolean everyLayer) {
        this(everyLayer, true);
    }

    /**
     * @param everyLayer checkpoint every layer (the {@code activation_checkpointing} setting)
     * @param bf16Rule when not every layer: checkpoint the bf16 layers that would keep more for the backward pass than
     *     float32 ({@link #bf16KeepsMore}); false keeps every layer's activations (the {@code bf16_keep_activations}
     *     setting)
     */
    public ActivationCheckpointing(boolean everyLayer, boolean bf16Rule) {
        this.everyLayer = everyLayer;
        this.bf16Rule = bf16Rule;
    }

    /**
     * Whether the next forward passes record the layers that keep their activations too, each layer's graph apart
     * (its output reaches the next layer as a detached leaf), so that {@link #backward(NDArray, Consumer)} goes
     * through them one by one as through the recomputed ones and hands each to {@code layerDone} when its
     * gradients are complete: a training step that updates layers during the backward pass then releases every
     * layer's gradients early, not only the recomputed layers'. The same gradients; only valid when the backward
     * pass is {@link #backward(NDArray, Consumer)} (a plain {@code GradientCollector.backward} stops at the
     * leaves), hence off unless the caller that runs that backward pass asks for it.
     */
    public void layerByLayer(boolean on) {
        this.layerByLayer = on;
    }

    /**
     * Whether layers that keep their activations run recorded layer by layer ({@link #forwardKept}) now: when asked for
     * ({@link #layerByLayer}), and for a stacked batch whose rows have several readers (see
     * {@code TransformerEncoder#forward(NDArray, NDArray, boolean)}) where later layers may run checkpointed (bf16,
     * whose rule decides per encoder call): the backward pass then goes through these layers once, after every
     * reader's gradient has reached their output leaf (the loss's own and, after their recomputation, the
     * checkpointed layers'). (With a single reader the loss's backward pass stops at the checkpointed layers' leaf
     * and their bridge goes through these layers once.)
     */
    boolean recordsKeptLayers(boolean stacked, Precision precision) {
        return recording() && (layerByLayer || stacked && bf16Rule && precision == Precision.BF16);
    }

    /** True while gradients are recorded (inside a gradient collector): layers then run checkpointed. */
    public boolean recording() {
        return JniUtils.isGradMode();
    }

    /**
     * Whether {@code encoder}'s layers on {@code batch} samples of {@code tokens} tokens attending to {@code keys} keys
     * run checkpointed while gradients are recorded: every layer when asked for, else the bf16 ones that
     * {@link #plan the forward pass's plan} recomputes or, outside a planned forward pass, the bf16 layers that
     * {@link #bf16KeepsMore keep clearly more than float32 would}: bf16 does not need more memory than float32. Recorded
     * {@link #layerByLayer layer by layer}, no bf16 layer is recomputed: kept layers then share their weight copies
     * ({@link #forwardKept}) and keep only their activations, in bfloat16, less than float32's.
     */
    boolean checkpoints(TransformerEncoder encoder, Precision precision, long batch, long tokens, long keys) {
        if (!recording()) {
            return false;
        }
        if (everyLayer) {
            return true;
        }
        if (!bf16Rule || precision != Precision.BF16 || layerByLayer) {
            return false; // layer by layer, kept bf16 layers share their weight copies: they keep less than float32
        }
        if (planned != null && planned.contains(encoder)) {
            return recomputed.contains(encoder);
        }
        return bf16Excess(encoder, batch, tokens, keys) > 0;
    }

    /**
     * Whether a forward pass in {@code precision} about to run needs a {@link #plan}: while gradients are recorded, for
     * bf16 when this instance decides which layers recompute (not every layer, not bf16 keeping every layer, and not
     * layer by layer, where no bf16 layer is recomputed).
     */
    public boolean plans(Precision precision) {
        return recording() && !everyLayer && bf16Rule && !layerByLayer && precision == Precision.BF16;
    }

    /**
     * Decides for the coming forward pass (until {@link #clear}) which of its encoders' bf16 layers run checkpointed,
     * over the whole model rather than encoder by encoder: bf16 may keep more than float32 where an encoder's weight
     * copies outweigh what bfloat16 saves on its activations (short inputs) as long as the other encoders save more
     * than that (long inputs). While the bf16 runs kept would keep more in all than float32 (by more than
     * {@link #BF16_MARGIN}), the encoder whose runs keep the most more is recomputed, and so on. An encoder alone gives
     * {@link #bf16KeepsMore}'s decision; the tutorial's 512-token text and 709-token multimodal input save more than
     * the image encoder's copies cost, so no layer is recomputed there (the image encoder alone would be). Encoders
     * not in {@code runs} decide alone; an encoder with several runs is decided once for all.
     */
    public void plan(List<Run> runs) {
        planned = Collections.newSetFromMap(new IdentityHashMap<>());
        recomputed = Collections.newSetFromMap(new IdentityHashMap<>());
        Map<TransformerEncoder, Double> excess = new IdentityHashMap<>();
        for (Run r : runs) {
            planned.add(r.encoder());
            if (r.encoder().precision() == Precision.BF16) {
                excess.merge(r.encoder(), r.encoder().layers() * bf16Excess(r.encoder(), r.batch(), r.tokens(), r.keys()),
                        Double::sum);
            }
        }
        double total = excess.values().stream().mapToDouble(Double::doubleValue).sum();
        while (total > 0) {
            TransformerEncoder most = null;
            for (var e : excess.entrySet()) {
                if (!recomputed.contains(e.getKey()) && (most == null || e.getValue() > excess.get(most))) {
                    most = e.getKey();
                }
            }
            if (most == null) {
                break;
            }
            recomputed.add(most);
            total -= excess.get(most);
        }
    }

    /**
     * By how many bytes a bf16 layer of {@code encoder} on this input keeps more for the backward pass than
     * {@link #BF16_MARGIN} times what bfloat16 saves on its activations: positive where {@link #bf16KeepsMore}.
     */
    private static double bf16Excess(TransformerEncoder encoder, long batch, long tokens, long keys) {
        long[] b = bf16Bytes(batch, tokens, keys, encoder.dim(), encoder.heads(), encoder.intermediate());
        return b[0] - BF16_MARGIN * b[1];
    }

    /**
     * Whether a bf16 transformer layer keeps more bytes for its backward pass than the same layer in float32, by more
     * than {@link #BF16_MARGIN}.
     * Autograd keeps the bfloat16 copy of each weight for the input gradient (2 bytes for each of the
     * {@code 4d^2 + 2di} weights) where float32 keeps the weights themselves; per token bf16 keeps {@code 12d + 4i}
     * bytes less (float32 keeps the layer norms' inputs 8d, the first layer norm's output 4d, q k v 12d, the
     * attention output 4d, the second layer norm's output 4d, the MLP's hidden activation and its GELU 8i; bf16
     * keeps the layer norms' inputs in float32 and halves the rest), less {@code 2 heads keys} where bf16 attention
     * runs as explicit products ({@link TorchOps#BF16_EXPLICIT_ATTENTION_MAX_SCORES}: its bfloat16 probabilities; on
     * a GPU, where attention stays fused, they are counted too, so the rule errs towards recomputing there).
     * FLAVA's full-size layer breaks even at 658 tokens a batch with fused attention, 844 on 197 tokens with explicit
     * attention (with the margin: 599 and 768): at batch 2 the image encoder (394 tokens) kept 0.42 GB in bf16 against 0.24 GB in float32 (bench
     * --breakdown), the text encoder on 2 x 512 tokens less than in float32.
     */
    public static boolean bf16KeepsMore(long batch, long tokens, long keys, long dim, int heads, long intermediate) {
        long[] b = bf16Bytes(batch, tokens, keys, dim, heads, intermediate);
        return b[0] > BF16_MARGIN * b[1];
    }

    /** A bf16 layer's weight copies and what bfloat16 saves on its activations against float32, bytes (see above). */
    private static long[] bf16Bytes(long batch, long tokens, long keys, long dim, int heads, long intermediate) {
        long copies = 2 * (4 * dim * dim + 2 * dim * intermediate);
        long savedPerToken = 12 * dim + 4 * intermediate;
        if (tokens * keys <= TorchOps.BF16_EXPLICIT_ATTENTION_MAX_SCORES) {
            savedPerToken -= 2L * heads * keys;
        }
        return new long[] {copies, batch * tokens * savedPerToken};
    }

    /**
     * By how much a bf16 layer's weight copies must exceed what bfloat16 saves on its activations before the layer
     * is recomputed: within 10% of the break-even the layer keeps at most a megabyte or two more than in float32 (a
     * full-size layer's copies are 14 MB) while bfloat16 saves far more on the rest of the step, and recomputing
     * would cost one more forward pass of the layer. FLAVA pretraining's image encoder (the masked and the unmasked
     * image in one run, 788 tokens at batch 2) is such a layer: 14.2 MB of copies against 13.2 MB saved.
     */
    static final double BF16_MARGIN = 1.1;

    /** Forgets what an earlier forward recorded (its arrays belong to a step that has ended or will end). */
    public void clear() {
        tape.clear();
        planned = null;
        recomputed = null;
    }

    /**
     * The whole backward pass of {@code loss}: the loss's own, then {@link #backward(Consumer) the recorded layers'}
     * (the recomputed ones, and the layers that kept their activations recorded layer by layer, see
     * {@link #recordsKeptLayers}).
     */
    public void backward(NDArray loss, Consumer<Collection<Parameter>> layerDone) {
        try (NDArray ones = loss.onesLike()) {
            JniUtils.backward((PtNDArray) loss, (PtNDArray) ones, false, false);
        }
        backward(layerDone);
    }

    /**
     * Runs {@code layers} on {@code x} checkpointed, the last one for its first {@code outputTokens} tokens only (0: all,
     * see {@link TransformerEncoder#forward(NDArray, NDArray, boolean, int)}); returns the last output, a leaf that
     * requires a gradient.
     */
    NDArray forward(List<TransformerEncoderLayer> layers, NDArray x, NDArray mask, int outputTokens) {
        NDArray in = bridged(x);
        for (int i = 0; i < layers.size(); i++) {
            TransformerEncoderLayer layer = layers.get(i);
            NDArray out;
            NDArray layerIn = in;
            int queries = i == layers.size() - 1 ? outputTokens : 0;
            JniUtils.setGradMode(false);
            try {
                out = Transients.keepResult(() -> layer.forward(layerIn, mask, queries));
            } finally {
                JniUtils.setGradMode(true);
            }
            out.setRequiresGradient(true);
            tape.add(new Layer(layer, in, mask, queries, out, null, null, i == layers.size() - 1));
            in = out;
        }
        return in;
    }

    /**
     * Runs {@code layers} on {@code x} recorded, keeping their activations, each layer's graph apart
     * ({@link #layerByLayer}); returns the last output, a leaf that requires a gradient. Their bf16 weight copies go
     * into buffers that the layers share ({@link SharedBf16Copies}): the backward pass writes each layer's back before
     * going through it, so a bf16 layer keeps its activations only, not its own weight copies.
     */
    NDArray forwardKept(List<TransformerEncoderLayer> layers, NDArray x, NDArray mask, int outputTokens) {
        NDArray in = bridged(x);
        for (int i = 0; i < layers.size(); i++) {
            TransformerEncoderLayer layer = layers.get(i);
            NDArray layerIn = in;
            int queries = i == layers.size() - 1 ? outputTokens : 0;
            SharedBf16Copies copies = new SharedBf16Copies(copyBuffers);
            NDArray out = Transients.keepResult(() -> copies.during(() -> layer.forward(layerIn, mask, queries)));
            NDArray leaf = out.stopGradient();
            leaf.setRequiresGradient(true);
            tape.add(new Layer(layer, in, mask, queries, leaf, out, copies, i == layers.size() - 1));
            in = leaf;
        }
        return in;
    }

    /** A leaf copy of {@code x} (sharing its data) that requires a gradient, behind a bridge to {@code x}. */
    private NDArray bridged(NDArray x) {
        boolean recorded = TorchOps.on(x).requiresGrad(x);
        NDArray in = x.stopGradient();
        in.setRequiresGradient(true);
        tape.add(new Bridge(x, in, recorded));
        return in;
    }

    /**
     * Back-propagates through everything recorded since the last forward, in reverse: call it after the
     * loss's backward pass, inside the same gradient collector. Parameter gradients accumulate as they do
     * over micro-batches.
     *
     * @param layerDone called with a recorded layer's parameters (recomputed, or kept, see {@link #recordsKeptLayers}) as
     *     soon as its backward pass is done: their
     *     gradients from this backward pass are then complete (a layer's parameters serve that layer only), e.g.
     *     to update them and release their gradients before the rest of the backward pass allocates its own
     */
    public void backward(Consumer<Collection<Parameter>> layerDone) {
        // a layer that ran more than once in the forward (an encoder run on two inputs, e.g. FLAVA pretraining's
        // masked and unmasked image) is done once the backward pass has gone through its earliest run
        Map<TransformerEncoderLayer, Integer> firstRun = new IdentityHashMap<>();
        for (int i = tape.size() - 1; i >= 0; i--) {
            if (tape.get(i) instanceof Layer l) {
                firstRun.put(l.layer(), i);
            }
        }
        Set<TransformerEncoderLayer> backpropagated = Collections.newSetFromMap(new IdentityHashMap<>());
        try {
            for (int i = tape.size() - 1; i >= 0; i--) {
                Entry e = tape.get(i);
                if (e instanceof Layer l) {
                    NDArray gradOut = JniUtils.getGradient((PtNDArray) l.output());
                    if (gradOut != null) {
                        if (l.graphOutput() != null) {
                            l.copies().refill();
                            JniUtils.backward((PtNDArray) l.graphOutput(), (PtNDArray) gradOut, false, false);
                        } else {
                            try (NDScope scope = new NDScope()) {
                                NDArray out = l.layer().forward(l.input(), l.mask(), l.queries());
                                JniUtils.backward((PtNDArray) out, (PtNDArray) gradOut, false, false);
                            }
                        }
                        gradOut.close();
                        backpropagated.add(l.layer());
                    }
                    if (l.graphOutput() != null) {
                        l.graphOutput().close(); // its graph (the layer's activations) goes with it
                    }
                    if (firstRun.get(l.layer()) == i && backpropagated.contains(l.layer())) {
                        layerDone.accept(l.layer().namedParameters().values());
                    }
                    if (!l.last()) {
                        l.output().close(); // an inner leaf: its value and gradient are no longer needed
                    }
                } else if (e instanceof Bridge b) {
                    NDArray grad = JniUtils.getGradient((PtNDArray) b.leaf());
                    if (grad != null && b.recorded()) {
                        JniUtils.backward((PtNDArray) b.graphOutput(), (PtNDArray) grad, false, false);
                    }
                    if (grad != null) {
                        grad.close();
                    }
                    b.leaf().close();
                }
            }
        } finally {
            tape.clear();
        }
    }
}
