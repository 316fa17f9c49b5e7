package dev.mm4j.nn;

import ai.djl.Device;
import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.slf4j.LoggerFactory;

/**
 * The fused and mixed-precision ops that DJL does not offer, as a stateless TorchScript module that this
 * class writes (TorchScript source in a zip, no Python anywhere) and libtorch compiles when it loads it,
 * once per device. Its methods run with autograd like any libtorch op, so training, inference and
 * activation checkpointing use them unchanged.
 *
 * <p>Every cast between float32 and bfloat16 happens here, inside the module: callers hand in float32
 * arrays (the master weights, layer-norm outputs) and get float32 back. DJL cannot hold a bfloat16 dtype
 * safely (its JNI has no code for it: {@code toType(BFLOAT16)} and a softmax on a bfloat16 array abort
 * the JVM), so no bfloat16 array ever reaches Java. These are {@code torch.autocast}'s semantics: the
 * matrix products run in bfloat16, the rest (layer norm, residual sums, loss) in float32.
 */
public final class TorchOps {

    /** The archive's top folder and the TorchScript class name. */
    static final String NAME = "mm4j_ops";

    /** TorchScript dtype codes. */
    private static final int FLOAT32 = 6;
    static final int BFLOAT16 = 15;

    private static final Map<Device, TorchOps> LOADED = new ConcurrentHashMap<>();

    /** The graph optimizer setting DJL starts threads with ({@code ai.djl.pytorch.graph_optimizer}, default true). */
    private static final boolean GRAPH_OPTIMIZER =
            Boolean.parseBoolean(System.getProperty("ai.djl.pytorch.graph_optimizer", "true"));

    private final PtSymbolBlock module;
    private final NDManager manager;
    private final Map<String, NDArray> selectors = new ConcurrentHashMap<>();
    private final ParameterStore store = new ParameterStore();

    /** Whether this library has its int8 methods (libtorch has oneDNN's int8 operators). */
    private final boolean int8Available;
    /** Whether frozen bf16 weights are held prepacked for oneDNN's linear ({@link Variant#packedBf16}). */
    private final boolean packedBf16;

    /** A CPU library whose libtorch has no fast bfloat16 products ({@link #fastBf16}): warned about once, at first use. */
    private final AtomicBoolean slowBf16;

    private TorchOps(PtSymbolBlock module, NDManager manager, boolean int8Available, boolean packedBf16, boolean cpu) {
        this.module = module;
        this.manager = manager;
        this.int8Available = int8Available;
        this.packedBf16 = packedBf16;
        this.slowBf16 = new AtomicBoolean(cpu && !packedBf16);
    }

    /** The op library on {@code x}'s device, loaded on first use. */
    public static TorchOps on(NDArray x) {
        return on(x.getDevice());
    }

    /** The op library on {@code device}, loaded on first use. */
    private static TorchOps on(Device device) {
        return LOADED.computeIfAbsent(device, TorchOps::load);
    }

    private static TorchOps load(Device device) {
        return load(device, Variant.of(device));
    }

    /**
     * What the op library's source is built for ({@link #source(Variant)}).
     *
     * @param cpu false (a GPU) keeps bf16 attention on the fused kernel at every length (the explicit products were
     *     measured faster on the CPU only)
     * @param reduceRange int8 inputs take 7-bit values (0..127), for CPUs without int8 dot-product instructions (VNNI,
     *     AMX), whose pairwise 16-bit sums of 8-bit products could saturate at 8 bits
     * @param int8Methods false leaves the int8 methods out (a libtorch without oneDNN's int8 operators)
     * @param int8Bf16Attention int8's attention runs short inputs as bfloat16 products (a CPU with bfloat16
     *     instructions), else as float32's fused kernel
     * @param packedBf16 bf16 inference on {@link #freeze frozen} weights holds each weight matrix prepacked in oneDNN's
     *     blocked layout and runs oneDNN's linear on it, the bias and the MLP's GELU in the product's epilogue
     *     ({@code mkldnn::_linear_pointwise}, what {@code torch.compile}'s freezing runs on the CPU); false holds plain
     *     bfloat16 copies for {@code torch.linear} (a GPU, a libtorch without oneDNN; the library also holds plain copies
     *     on a CPU its oneDNN runs no bfloat16 on, an AVX2-only one: see {@link #fastBf16})
     */
    record Variant(boolean cpu, boolean reduceRange, boolean int8Methods, boolean int8Bf16Attention,
            boolean packedBf16) {
        /** The variant for {@code device}: its CPU's int8 and bfloat16 instructions decide. */
        static Variant of(Device device) {
            boolean cpu = !device.isGpu();
            return new Variant(cpu, cpu && !Hardware.cpuHasInt8Dot(), true, cpu && Hardware.cpuHasBf16(), cpu);
        }

        /** This variant without int8 methods. */
        Variant withoutInt8() {
            return new Variant(cpu, reduceRange, false, false, packedBf16);
        }

        /** This variant without any of oneDNN's own operators: no int8 methods, no prepacked bf16 weights. */
        Variant withoutOneDnn() {
            return new Variant(cpu, reduceRange, false, false, false);
        }
    }

    /**
     * The op library on {@code device}, built as {@code variant} says. A libtorch without oneDNN's int8 operators (which
     * the library's int8 methods name) still gets the library, without int8: asking for int8 is then refused in one line;
     * one without oneDNN's linear operators too gets it without them (frozen bf16 weights then as plain copies).
     */
    static TorchOps load(Device device, Variant variant) {
        try {
            return loadExactly(device, variant);
        } catch (EngineException e) {
            for (Variant fallback : List.of(variant.withoutInt8(), variant.withoutOneDnn())) {
                if (fallback.equals(variant)) {
                    continue;
                }
                try {
                    return loadExactly(device, fallback);
                } catch (RuntimeException without) {
                    e.addSuppressed(without);
                }
            }
            throw e;
        }
    }

    /** The op library on {@code device}, built as {@code variant} says, or the libtorch's error. */
    static TorchOps loadExactly(Device device, Variant variant) {
        NDManager manager = NDManager.newBaseManager(device, "PyTorch");
        try {
            Path dir = Files.createTempDirectory("mm4j-ops");
            Path file = dir.resolve(NAME + ".pt");
            try {
                try (OutputStream out = Files.newOutputStream(file)) {
                    writeArchive(out, variant);
                }
                PtSymbolBlock block = JniUtils.loadModule((PtNDManager) manager, file, true, new String[0],
                        new String[0], false);
                // oneDNN packs bfloat16 weights only on a CPU it runs bfloat16 on (AVX-512 or AVX-NE-CONVERT): on
                // an AVX2-only CPU the library keeps plain copies (its pack_bf16 would refuse)
                boolean packed = variant.packedBf16() && oneDnnBf16(block);
                return new TorchOps(block, manager, variant.int8Methods(), packed, variant.cpu());
            } finally {
                Files.deleteIfExists(file);
                Files.deleteIfExists(dir);
            }
        } catch (IOException e) {
            manager.close();
            throw new UncheckedIOException("cannot write the op library to the temporary directory", e);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** libtorch's answer to whether its oneDNN runs bfloat16 on this CPU (a library with the packed methods). */
    private static boolean oneDnnBf16(PtSymbolBlock block) {
        try (IValue out = IValueUtils.runMethod(block, "mkldnn_bf16")) {
            return out.toBoolean();
        }
    }

    /**
     * Whether libtorch multiplies bfloat16 at speed on {@code device}: a GPU, or a CPU whose oneDNN runs bfloat16
     * (AVX-512 or AVX-NE-CONVERT, {@code torch.ops.mkldnn._is_mkldnn_bf16_supported()}). Elsewhere (an AVX2-only CPU)
     * libtorch's bfloat16 products fall back to a plain loop, about 100x slower than float32 (0.9 against 108 GFLOP/s
     * for 394 x 768 x 3072 on a 2-core AMD EPYC with AVX2).
     */
    public static boolean fastBf16(Device device) {
        if (device.isGpu()) {
            return true;
        }
        return on(device).packedBf16;
    }

    /**
     * Pre-norm attention block's core: {@code out(SDPA(q(x), k(x), v(x), mask))} for {@code heads} heads, the
     * products in {@code precision}; float32 in and out. {@code mask} is additive (0 / -inf), broadcastable to
     * (B, heads, L, K) with K &le; L: only the first K tokens are keys (the rest are not projected to keys or
     * values at all, as if masked for every query), or null to attend to every token. {@code queries} &gt; 0: only the
     * first {@code queries} tokens are queries (the output is (B, queries, D); every token is still a key), 0: all.
     * {@code w} holds q, k, v, output weight and bias pairs.
     */
    NDArray attention(Precision precision, NDArray x, NDArray mask, int heads, int queries, NDArray... w) {
        WeightForm form = form(precision, w[0], w[2], w[4], w[6]);
        Inputs in = new Inputs();
        in.add(x);
        in.add(headsCarrier(x, heads, queries));
        for (int i = 0; i < w.length; i++) {
            addWeight(in, precision, w[i], i % 2 == 0, form);
        }
        if (mask != null) {
            in.add(mask);
        }
        return call((mask != null ? "attention_masked_" : "attention_") + code(precision, form), in);
    }

    /** {@code Linear -> GELU -> Linear} (PyTorch's exact GELU), the products in {@code precision}. */
    NDArray mlpGelu(Precision precision, NDArray x, NDArray w1, NDArray b1, NDArray w2, NDArray b2) {
        WeightForm form = form(precision, w1, w2);
        Inputs in = new Inputs();
        in.add(x);
        addWeight(in, precision, w1, true, form);
        in.add(b1);
        addWeight(in, precision, w2, true, form);
        in.add(b2);
        return call("mlp_gelu_" + code(precision, form), in);
    }

    /** {@code x W^T + b} with the product in {@code precision}; float32 in and out. */
    public NDArray linear(Precision precision, NDArray x, NDArray w, NDArray b) {
        WeightForm form = form(precision, w);
        Inputs in = new Inputs();
        in.add(x);
        addWeight(in, precision, w, true, form);
        in.add(b);
        return call("linear_" + code(precision, form), in);
    }

    /**
     * The form in which a bf16 call reads its weight matrices: its own casts ({@link WeightForm#CAST}, as every
     * precision but bf16 does); their prepacked forms where no gradients are recorded and every one of {@code ws} is
     * {@link #freeze frozen} ({@link Variant#packedBf16}); shared buffers while gradients are recorded inside a
     * layer run that shares its copies ({@link SharedBf16Copies#current}).
     */
    private WeightForm form(Precision precision, NDArray... ws) {
        if (precision != Precision.BF16) {
            return WeightForm.CAST;
        }
        if (slowBf16.get() && slowBf16.compareAndSet(true, false)) {
            LoggerFactory.getLogger(TorchOps.class).warn("precision bf16 on a CPU without fast bfloat16 products: libtorch's "
                    + "oneDNN runs bfloat16 only with AVX-512 or AVX-NE-CONVERT, and its fallback here is about 100x slower "
                    + "than fp32; use precision fp32 (or auto, which picks it here)");
        }
        if (JniUtils.isGradMode()) {
            return SharedBf16Copies.current() != null ? WeightForm.SHARED : WeightForm.CAST;
        }
        if (!packedBf16) {
            return WeightForm.CAST;
        }
        for (NDArray w : ws) {
            if (!frozen(w)) {
                return WeightForm.CAST;
            }
        }
        return WeightForm.PACKED;
    }

    /**
     * How a bf16 method reads its weight matrices, in its name's suffix: {@code CAST} casts each float32 weight
     * itself (frozen ones, handed in as plain copies, pass through the cast unchanged); {@code PACKED} reads their
     * prepacked forms ({@link Variant#packedBf16}); {@code SHARED} takes each weight with a shared buffer to cast it
     * into ({@link SharedBf16Copies}).
     */
    enum WeightForm {
        CAST(""), PACKED("_packed"), SHARED("_shared");

        final String suffix;

        WeightForm(String suffix) {
            this.suffix = suffix;
        }
    }

    /** The methods' suffix for {@code precision}, its weights read in {@code form}. */
    private static String code(Precision precision, WeightForm form) {
        return precision.code() + form.suffix;
    }

    /**
     * Adds {@code w} to a call's inputs: as it is, for int8 a weight matrix as its quantized form (3 values), for bf16
     * a {@link #freeze frozen} weight matrix while no gradients are recorded as its bfloat16 form: prepacked when the
     * call is {@link WeightForm#PACKED}, else a plain copy where the library holds plain copies (a GPU); for a
     * {@link WeightForm#SHARED} call a weight matrix and the shared buffer its copy goes into.
     */
    private void addWeight(Inputs in, Precision precision, NDArray w, boolean matrix, WeightForm form) {
        if (precision == Precision.INT8 && matrix) {
            if (JniUtils.isGradMode()) {
                throw new IllegalStateException("precision int8 is for inference only (predict, serve, evaluate, "
                        + "batch-predict, embeddings): train in fp32 or bf16");
            }
            if (!int8Available) {
                throw new IllegalStateException("precision int8 needs oneDNN's int8 operators (onednn::qlinear_pointwise), "
                        + "which this libtorch does not have: use bf16 or fp32");
            }
            for (IValue q : quantized(w)) {
                in.add(q);
            }
        } else if (matrix && form == WeightForm.SHARED) {
            in.add(w);
            in.add(SharedBf16Copies.current().next(this, w));
        } else if (matrix && (form == WeightForm.PACKED || precision == Precision.BF16 && !packedBf16
                && !JniUtils.isGradMode() && frozen(w))) {
            in.add(bf16Form(w));
        } else {
            in.add(w);
        }
    }

    /**
     * A call's inputs in order: arrays, and weight forms held as libtorch values ({@link IValue}) owned by this
     * library: bfloat16 forms of frozen weights (DJL's JNI has no bfloat16) and int8 forms (oneDNN's prepacked
     * weights are opaque tensors).
     */
    private static final class Inputs {
        final NDList arrays = new NDList(16);
        final Map<Integer, IValue> copies = new java.util.HashMap<>();

        void add(NDArray a) {
            arrays.add(a);
        }

        void add(IValue libraryValue) {
            copies.put(arrays.size(), libraryValue);
            arrays.add(null);
        }
    }

    /** The weight arrays declared {@link #freeze frozen} (identity; dropped once an array is closed). */
    private final Set<NDArray> frozen = Collections.newSetFromMap(new IdentityHashMap<>());
    /** Each frozen weight's bfloat16 form (see {@link #bf16Form}), made on first use. */
    private final WeightForms bf16Forms = new WeightForms();

    /**
     * Libtorch values made from weight arrays (a bfloat16 form, an int8 form), by identity of the array: made once,
     * owned by the library (not by any step's scope), released once their array is closed (swept whenever a new one
     * is made) or {@link #release}d.
     */
    private static final class WeightForms {
        private final Map<NDArray, IValue[]> forms = new IdentityHashMap<>();

        synchronized IValue[] get(NDArray w, java.util.function.Function<NDArray, IValue[]> make) {
            IValue[] f = forms.get(w);
            if (f == null) {
                sweep();
                f = make.apply(w);
                forms.put(w, f);
            }
            return f;
        }

        /** Releases the forms of closed arrays. */
        synchronized void sweep() {
            forms.entrySet().removeIf(e -> {
                if (e.getKey().isReleased()) {
                    close(e.getValue());
                    return true;
                }
                return false;
            });
        }

        synchronized void release(NDArray w) {
            IValue[] f = forms.remove(w);
            if (f != null) {
                close(f);
            }
        }

        private static void close(IValue[] values) {
            for (IValue v : values) {
                v.close();
            }
        }
    }

    /**
     * Declares that {@code weights} keep their values from now on (an inference bundle's parameters): bf16 products
     * then read a bfloat16 form of each weight matrix made once, instead of casting it at every call (inference
     * only: while gradients are recorded the weights are cast as before). Costs 2 bytes per weight (0.43 GB for
     * full-size FLAVA's encoders) and saves the cast's passes over the float32 weights: dynamic-padding inference
     * of full-size FLAVA 0.411 -> 0.358 s, the tutorial's 1.367 -> 1.290 s (2 threads, same process, alternating).
     * On the CPU the form is prepacked for oneDNN's linear, which adds the bias and the MLP's GELU in the product's
     * epilogue ({@link Variant#packedBf16}): against plain copies, dynamic 0.366 -> 0.357 s (medians 0.394 -> 0.373),
     * the tutorial's 1.214 -> 1.114 s; the logits differ from the plain copies' by bfloat16's rounding (0.006, of
     * 0.82 at most). A plain copy (a GPU) gives the same numbers as casting at every call. An optimizer over frozen
     * weights {@link #thaw}s them (their values change); a parameter given a new value ({@link Parameter#copyFrom})
     * holds a new array, not frozen.
     */
    public static void freeze(Collection<NDArray> weights) {
        for (NDArray w : weights) {
            on(w).freezeHere(List.of(w));
        }
        for (TorchOps ops : LOADED.values()) {
            synchronized (ops.frozen) {
                ops.releaseClosed();
            }
        }
    }

    /** {@link #freeze} on this library (whichever the device's is). */
    void freezeHere(Collection<NDArray> weights) {
        synchronized (frozen) {
            frozen.addAll(weights);
        }
    }

    /** Forgets frozen arrays that have been closed (their model is gone) and releases their bfloat16 forms. */
    private void releaseClosed() {
        bf16Forms.sweep();
        frozen.removeIf(NDArray::isReleased);
    }

    /** Undoes {@link #freeze} for {@code weights} (their values will change): their bfloat16 forms are released. */
    public static void thaw(Collection<NDArray> weights) {
        for (TorchOps ops : LOADED.values()) {
            synchronized (ops.frozen) {
                for (NDArray w : weights) {
                    if (ops.frozen.remove(w)) {
                        ops.bf16Forms.release(w);
                    }
                }
            }
        }
    }

    private boolean frozen(NDArray w) {
        synchronized (frozen) {
            return frozen.contains(w);
        }
    }

    /**
     * {@code w}'s bfloat16 form, made once and owned by the library: prepacked for oneDNN's linear where the library
     * runs frozen bf16 weights packed ({@link Variant#packedBf16}, an opaque libtorch tensor), else a plain copy. Forms
     * of closed arrays are released.
     */
    private IValue bf16Form(NDArray w) {
        return bf16Forms.get(w, a -> {
            try (IValue in = IValue.from((PtNDArray) a)) {
                return new IValue[] {IValueUtils.runMethod(module, packedBf16 ? "pack_bf16" : "to_bf16", in)};
            }
        })[0];
    }

    /**
     * A new bfloat16 buffer of {@code w}'s shape on this library's device, owned by the caller
     * ({@link SharedBf16Copies.Pool}), in no step's scope. It is a DJL array only to be handed to this library's
     * methods: DJL has no bfloat16, so nothing may read its data type or values from Java.
     */
    NDArray newBf16Buffer(NDArray w) {
        NDList in = new NDList(w, selectors.computeIfAbsent("new_bf16", this::selector));
        // made as a training call makes its tensors: one made in inference mode could not be kept for a backward pass
        NDArray buffer = module.forward(store, in, true).singletonOrThrow();
        NDScope.unregister(buffer);
        buffer.attach(manager);
        return buffer;
    }

    /**
     * Whether {@code x} requires a gradient: a node of the recorded graph, or a leaf that asks for its gradient (DJL's
     * {@code hasGradient} reports leaves only, and asking libtorch for the gradient function of a leaf crashes).
     */
    boolean requiresGrad(NDArray x) {
        try (IValue in = IValue.from((PtNDArray) x);
                IValue out = IValueUtils.runMethod(module, "requires_grad", in)) {
            return out.toBoolean();
        }
    }

    /**
     * Writes {@code w}'s bfloat16 copy into {@code buffer} ({@link SharedBf16Copies#refill}); records no autograd (a
     * library value call runs without it, whatever this thread's setting).
     */
    void refillBf16(NDArray w, NDArray buffer) {
        try (IValue in = IValue.from((PtNDArray) w);
                IValue buf = IValue.from((PtNDArray) buffer)) {
            IValueUtils.runMethod(module, "refill_bf16", in, buf).close();
        }
    }

    /** Each weight's int8 form (made on first use). */
    private final WeightForms int8 = new WeightForms();

    /**
     * {@code w}'s int8 form for oneDNN's int8 products ({@code onednn::qlinear_pointwise}, what PyTorch's x86
     * quantization runs): the int8 weight prepacked in oneDNN's blocked layout (an opaque libtorch tensor, held as a
     * libtorch value like the bfloat16 forms), its per-row scales and zero points. Made once per weight array and owned
     * by the library (not by any step's scope); 1 byte per weight.
     */
    private IValue[] quantized(NDArray w) {
        return int8.get(w, a -> {
            JniUtils.setGraphExecutorOptimize(false);
            try (IValue in = IValue.from((PtNDArray) a);
                    IValue out = IValueUtils.runMethod(module, "quantize_int8", in)) {
                return out.toIValueTuple();
            } finally {
                JniUtils.setGraphExecutorOptimize(GRAPH_OPTIMIZER);
            }
        });
    }

    /**
     * {@code sum_i a @ bs[i]} for {@code bs} (r, k, n), the products in {@code precision}, in one call (the inputs
     * cast once, the sum cast back to float32): what r matrix multiplies cost. (The same product repeated would be
     * computed once: TorchScript's optimizer merges identical pure calls.)
     */
    public NDArray matmulSum(Precision precision, NDArray a, NDArray bs) {
        return call("matmul_sum_" + precision.code(), new NDList(a, bs));
    }

    /**
     * One AdamW step ({@code torch.optim.AdamW(fused=True)}'s kernel, {@code aten::_fused_adamw_}) on every tensor of
     * the lists, in place: each parameter's weight, gradient and both moments read once and the weight and moments
     * written once, vectorized, on libtorch's threads, all parameters in one call. {@code step} is the step's number
     * (1 for the first: the bias corrections), {@code lr} this step's learning rate, amsgrad and maximize off.
     * {@code gradScale} multiplies the gradients first (1: as they are, below 1 when clipping by norm): the kernel
     * divides them by {@code 1 / gradScale} (float32) and writes the scaled gradient back into the gradient's memory
     * (one more write per element, only when it is not 1). The lists must be of equal length, of contiguous float32
     * tensors on this library's device; no autograd is recorded.
     */
    public void adamw(List<NDArray> params, List<NDArray> grads, List<NDArray> expAvgs, List<NDArray> expAvgSqs,
            long step, double lr, double beta1, double beta2, double weightDecay, double eps, double gradScale) {
        int n = params.size();
        if (grads.size() != n || expAvgs.size() != n || expAvgSqs.size() != n) {
            throw new IllegalArgumentException("adamw: lists of " + n + " parameters, " + grads.size() + " gradients, "
                    + expAvgs.size() + " and " + expAvgSqs.size() + " moments");
        }
        if (n == 0) {
            return;
        }
        List<IValue> in = new ArrayList<>(11);
        try {
            in.add(list(params));
            in.add(list(grads));
            in.add(list(expAvgs));
            in.add(list(expAvgSqs));
            for (double d : new double[] {step, lr, beta1, beta2, weightDecay, eps, gradScale}) {
                in.add(IValue.from(d));
            }
            JniUtils.setGraphExecutorOptimize(false);
            try {
                IValueUtils.runMethod(module, "adamw", in.toArray(new IValue[0])).close();
            } finally {
                JniUtils.setGraphExecutorOptimize(GRAPH_OPTIMIZER);
            }
        } finally {
            in.forEach(IValue::close);
        }
    }

    private static IValue list(List<NDArray> arrays) {
        return IValue.listFrom(arrays.stream().map(a -> (PtNDArray) a).toArray(PtNDArray[]::new));
    }

    /**
     * OpenAI's DALL-E dVAE encoder (FLAVA's image codebook, TorchMultimodal's {@code DalleEncoder}) in one call, the
     * convolutions in {@code precision} as {@code torch.autocast} runs them (bfloat16 activations throughout for
     * bf16: conv, ReLU, max pool and the residual sums); float32 logits (B, vocab, S/8, S/8) out. {@code ws} holds
     * the convolutions' weight and bias pairs in the module's order: {@code input}, then per residual block its
     * {@code id_path} (where {@code idPaths[block]} is 1) and its four {@code res_path} convolutions, then
     * {@code output}; each convolution pads by (k - 1) / 2. Four groups of {@code blocksPerGroup} blocks, max-pooled
     * 2x2 after the first three; a block adds {@code postGain} times its residual path. Records no autograd.
     */
    public NDArray dalleEncoder(Precision precision, NDArray x, List<NDArray> ws, long[] idPaths, int blocksPerGroup,
            double postGain) {
        List<IValue> in = new ArrayList<>(5);
        try {
            in.add(IValue.from((PtNDArray) x));
            in.add(list(ws));
            in.add(IValue.listFrom(idPaths));
            in.add(IValue.from((long) blocksPerGroup));
            in.add(IValue.from(postGain));
            boolean recording = JniUtils.isGradMode();
            JniUtils.setGradMode(false);
            JniUtils.setGraphExecutorOptimize(false);
            try (IValue out = IValueUtils.runMethod(module, "dalle_encoder_" + (precision == Precision.BF16
                    ? Precision.BF16 : Precision.FP32).code(), in.toArray(new IValue[0]))) {
                return out.toTensor((PtNDManager) x.getManager());
            } finally {
                JniUtils.setGraphExecutorOptimize(GRAPH_OPTIMIZER);
                JniUtils.setGradMode(recording);
            }
        } finally {
            in.forEach(IValue::close);
        }
    }

    /** The op library's {@code dalle_encoder_<precision>} method for the dtype code {@code t} (see {@link #dalleEncoder}). */
    private static String dalleEncoderSource(String code, int t) {
        return "  def dalle_encoder_" + code + "(self: __torch__.Ops,\n"
                + "    x: Tensor, ws: List[Tensor], id_paths: List[int], blocks_per_group: int, post_gain: float) -> Tensor:\n"
                + "    h = torch.conv2d(torch.to(x, " + t + "), torch.to(ws[0], " + t + "), torch.to(ws[1], " + t + "), [1, 1],\n"
                + "      [torch.floordiv(torch.size(ws[0], 3) - 1, 2), torch.floordiv(torch.size(ws[0], 3) - 1, 2)])\n"
                + "    i = 2\n"
                + "    block = 0\n"
                + "    for g in range(4):\n"
                + "      for j in range(blocks_per_group):\n"
                + "        idp = h\n"
                + "        if id_paths[block] == 1:\n"
                + "          idp = torch.conv2d(h, torch.to(ws[i], " + t + "), torch.to(ws[i + 1], " + t + "))\n"
                + "          i = i + 2\n"
                + "        r = h\n"
                + "        for c in range(4):\n"
                + "          pad = torch.floordiv(torch.size(ws[i], 3) - 1, 2)\n"
                + "          r = torch.conv2d(torch.relu(r), torch.to(ws[i], " + t + "), torch.to(ws[i + 1], " + t + "), [1, 1], [pad, pad])\n"
                + "          i = i + 2\n"
                + "        h = torch.add(idp, torch.mul(r, post_gain))\n"
                + "        block = block + 1\n"
                + "      if g < 3:\n"
                + "        h = torch.max_pool2d(h, [2, 2], [2, 2])\n"
                + "    h = torch.conv2d(torch.relu(h), torch.to(ws[i], " + t + "), torch.to(ws[i + 1], " + t + "))\n"
                + "    return torch.to(h, 6)\n";
    }

    /** The op library's {@code adamw} method: {@code _fused_adamw_} with one step tensor for all, grad scale 1 or 1/s. */
    private static final String ADAMW_SOURCE = ""
            + "  def adamw(self: __torch__.Ops,\n"
            + "    params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], exp_avg_sqs: List[Tensor],\n"
            + "    step: float, lr: float, beta1: float, beta2: float, weight_decay: float, eps: float,\n"
            + "    grad_scale: float) -> None:\n"
            + "    s = torch.full([1], step, dtype=6, device=params[0].device)\n"
            + "    steps = annotate(List[Tensor], [])\n"
            + "    for i in range(len(params)):\n"
            + "      steps.append(s)\n"
            + "    if grad_scale == 1.:\n"
            + "      torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, annotate(List[Tensor], []), steps,\n"
            + "        lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)\n"
            + "    else:\n"
            + "      inv = torch.full([1], 1. / grad_scale, dtype=6, device=params[0].device)\n"
            + "      torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, annotate(List[Tensor], []), steps,\n"
            + "        lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False,\n"
            + "        grad_scale=inv)\n"
            + "    return None\n";

    /**
     * Calls a method of the module on {@code in}: with bfloat16 weight copies (inference only) through libtorch values,
     * else as {@link #call(String, NDList)}.
     */
    private NDArray call(String method, Inputs in) {
        if (in.copies.isEmpty()) {
            return call(method, in.arrays);
        }
        IValue[] values = new IValue[in.arrays.size()];
        List<IValue> made = new ArrayList<>(values.length);
        try {
            for (int i = 0; i < values.length; i++) {
                IValue copy = in.copies.get(i);
                if (copy == null) {
                    copy = IValue.from((PtNDArray) in.arrays.get(i));
                    made.add(copy);
                }
                values[i] = copy;
            }
            JniUtils.setGraphExecutorOptimize(false);
            try (IValue out = IValueUtils.runMethod(module, method, values)) {
                return out.toTensor((PtNDManager) in.arrays.get(0).getManager());
            } finally {
                JniUtils.setGraphExecutorOptimize(GRAPH_OPTIMIZER);
            }
        } finally {
            made.forEach(IValue::close);
        }
    }

    /** Calls a method of the module; records autograd when gradients are recorded on this thread. */
    NDArray call(String method, NDList in) {
        in.add(selectors.computeIfAbsent(method, this::selector));
        // TorchScript's graph optimizer (a thread's setting) turns the methods into differentiable graphs that keep
        // more for the backward pass (one more score-sized tensor per attention: 4.8 kB a token of FLAVA's image
        // encoder) and ran no faster (demo model, fp32 train step: 0.209 s with it, 0.206 s without). It is off while
        // the library runs, so autograd keeps what each op needs, and back to DJL's setting after.
        JniUtils.setGraphExecutorOptimize(false);
        try {
            return module.forward(store, in, JniUtils.isGradMode()).singletonOrThrow();
        } finally {
            JniUtils.setGraphExecutorOptimize(GRAPH_OPTIMIZER);
        }
    }

    /** The cached method selector, owned by the library's manager: out of any step's scope that is open when it is made. */
    private NDArray selector(String method) {
        NDArray a = manager.zeros(new Shape(1), DataType.FLOAT32);
        NDScope.unregister(a);
        a.setName("module_method:" + method);
        return a;
    }

    /**
     * An empty (heads, 0, queries) array: TorchScript reads the head count and the query count (0: every token) from
     * its shape (DJL passes only tensors).
     */
    private static NDArray headsCarrier(NDArray x, int heads, int queries) {
        return x.getManager().create(new Shape(heads, 0, queries), DataType.FLOAT32);
    }

    /**
     * Up to how many scores per (batch, head) (queries x keys) bfloat16 attention runs as explicit products,
     * {@code softmax(q k^T / sqrt(dh) + mask) v}, instead of libtorch's fused kernel: 2^19, up to 724 x 724 tokens.
     * The scores are bfloat16 (the product's output, as in autocast's eager attention); libtorch's softmax on them
     * sums in float32 and rounds the probabilities to bfloat16, which the product with v takes anyway. libtorch 2.7's
     * bfloat16 flash-attention kernel for the CPU is slow, its backward pass most of all. Forward + backward of one
     * attention op (projections included, width 768, 12 heads, batch 2) on a 2-core Zen 4, ms, fused vs explicit:
     * 400 tokens 68 vs 57, 512 tokens 86 vs 70, 709 tokens (the tutorial's multimodal input) 156-160 vs 115, 800
     * tokens 153 vs 123-154, 900 tokens 176 vs 216, 1024 tokens 213 vs 268; earlier, image 197 tokens 22.5 vs 13.8,
     * text 512 queries over 24 keys 35.2 vs 17.9, the demo's 96 x 33 tokens of width 128 25.5 vs 6.1. The tutorial's
     * bf16 train step took 3.96 / 3.72 -> 3.36 / 3.48 s with its multimodal encoder explicit (bound 2^17 -> 2^19),
     * inference 1.05 / 1.08 -> 1.00 / 1.01 s, int8 inference 0.72 / 0.74 -> 0.67 / 0.70 s. The probabilities kept for
     * the backward pass cost 2 bytes per score, at most 1 MB per (batch, head) (the tutorial's step peaked at 4.55
     * instead of 4.37 GB). float32 always runs fused: on the demo model explicit products were no faster (train step
     * 0.214 vs 0.206 s).
     */
    static final int BF16_EXPLICIT_ATTENTION_MAX_SCORES = 1 << 19;

    /** The dtype code a precision's products take their inputs in (int8's products quantize float32 inputs). */
    private static int dtype(Precision p) {
        return p == Precision.BF16 ? BFLOAT16 : FLOAT32;
    }

    /**
     * A weight parameter's declaration: {@code w: Tensor}, for int8 its quantized form's three tensors, for a
     * {@link WeightForm#SHARED} method the weight and its shared buffer.
     */
    private static String weightParam(Precision p, WeightForm form, String w) {
        if (form == WeightForm.SHARED) {
            return w + ": Tensor, " + w + "_buf: Tensor";
        }
        return p == Precision.INT8 ? w + "_q: Tensor, " + w + "_s: Tensor, " + w + "_z: Tensor" : w + ": Tensor";
    }

    /**
     * The expression of {@code x W^T + b} in precision {@code p}: {@code x} already in its input dtype, for int8 the
     * names of its quantized form ({@code "xu, xs, xz"}: uint8 values, scale, zero point; see {@link #int8Input}).
     */
    private static String linearExpr(Precision p, WeightForm form, String x, String w, String b) {
        return linearExpr(p, form, x, w, b, false);
    }

    /** {@link #linearExpr(Precision, boolean, String, String, String)}, followed by the exact GELU when {@code gelu}. */
    private static String linearExpr(Precision p, WeightForm form, String x, String w, String b, boolean gelu) {
        return linearExpr(p, form, x, w, b, gelu, String.valueOf(FLOAT32));
    }

    /**
     * {@link #linearExpr(Precision, boolean, String, String, String, boolean)}; int8's output in dtype {@code out} (a
     * dtype code, or the name of a variable holding one). {@code form}: how bf16 reads the weight ({@link WeightForm}).
     */
    private static String linearExpr(Precision p, WeightForm form, String x, String w, String b, boolean gelu,
            String out) {
        String post = "\"" + (gelu ? "gelu" : "none") + "\"";
        if (p == Precision.INT8) { // the GELU in the product's epilogue: one pass less over its output
            return "self.qlinear(" + x + ", " + w + "_q, " + w + "_s, " + w + "_z, " + b + ", " + post + ", " + out + ")";
        }
        if (form == WeightForm.PACKED) { // the bias and the GELU in the product's epilogue too
            return "self.packed_linear(" + x + ", " + w + ", " + b + ", " + post + ")";
        }
        int t = dtype(p);
        String weight = form == WeightForm.SHARED ? "self.shared_bf16(" + w + ", " + w + "_buf)" : "torch.to(" + w + ", " + t + ")";
        String y = "torch.linear(" + x + ", " + weight + ", torch.to(" + b + ", " + t + "))";
        return gelu ? "torch.gelu(" + y + ")" : y;
    }

    /**
     * The statement that quantizes float32 {@code x} for int8 products into {@code u, s, z} (uint8 values, scale, zero
     * point): per tensor, from its own range, once for every product that reads it (attention's q, k and v share
     * it). See {@link #int8Source}'s {@code quantize_input}.
     */
    private static String int8Input(String x, String u, String s, String z) {
        return "    " + u + ", " + s + ", " + z + " = self.quantize_input(" + x + ")\n";
    }

    /**
     * Attention's core in the op library's source: {@code o} from {@code q, k, v} (B, h, tokens, dh) and the mask. On the
     * CPU bf16 runs short inputs as explicit products ({@link #BF16_EXPLICIT_ATTENTION_MAX_SCORES}), and so does int8
     * where {@code int8Bf16} (its q, k and v then come out of their products in bfloat16: {@link #int8QkvDtype}).
     */
    private static String attentionCore(Precision p, boolean masked, boolean cpu, boolean int8Bf16) {
        String t = p == Precision.INT8 ? "qd" : String.valueOf(dtype(p));
        String fused = "o = torch.scaled_dot_product_attention(q, k, v" + (masked ? ", torch.to(mask, " + t + ")" : "") + ")\n";
        if (!cpu || !(p == Precision.BF16 || p == Precision.INT8 && int8Bf16)) {
            return "    " + fused;
        }
        return "    if n * kn <= " + BF16_EXPLICIT_ATTENTION_MAX_SCORES + ":\n"
                + "      s = torch.mul(torch.matmul(q, torch.transpose(k, -2, -1)), torch.pow(torch.floordiv(d, h), -0.5))\n"
                + (masked ? "      s = torch.add(s, torch.to(mask, " + t + "))\n" : "")
                + "      o = torch.matmul(torch.softmax(s, -1), v)\n"
                + "    else:\n"
                + "      " + fused;
    }

    /**
     * The statement that sets {@code qd}, the dtype int8's q, k and v come out of their products in: bfloat16 where
     * {@code int8Bf16} and the input is short enough for explicit products (on short inputs bf16's explicit products
     * beat float32's fused kernel, which long inputs keep), else float32.
     */
    private static String int8QkvDtype(boolean int8Bf16) {
        return "    qd = " + (int8Bf16 ? BFLOAT16 + " if n * kn <= " + BF16_EXPLICIT_ATTENTION_MAX_SCORES + " else " : "")
                + FLOAT32 + "\n";
    }

    /**
     * The int8 helpers of the op library's source: {@code quantize_int8} (a weight's form), {@code quantize_input}
     * (an input's, 7-bit where {@code reduceRange}) and {@code qlinear} (the product).
     */
    private static String int8Source(boolean reduceRange) {
        StringBuilder s = new StringBuilder();
        // int8: each weight row symmetric (scale max|w| / 127, zero point 0), prepacked for oneDNN; each input per
        // tensor, asymmetric uint8 from its own range
        s.append("  def quantize_int8(self: __torch__.Ops,\n    w: Tensor) -> Tuple[Tensor, Tensor, Tensor]:\n")
                .append("    scale = torch.div(torch.clamp_min(torch.amax(torch.abs(w), [1]), 1e-12), 127.)\n")
                .append("    wi = torch.to(torch.clamp(torch.round(torch.div(w, torch.unsqueeze(scale, 1))), -127, 127), 1)\n")
                .append("    return (ops.onednn.qlinear_prepack(wi, None), scale, torch.zeros([torch.size(w, 0)], dtype=4))\n");
        // (an empty input, which oneDNN refuses, gives an empty output)
        s.append("  def quantize_input(self: __torch__.Ops,\n    x: Tensor) -> Tuple[Tensor, float, int]:\n")
                .append("    if torch.numel(x) == 0:\n")
                .append("      return (torch.to(x, 0), 1., 0)\n")
                .append("    q = torch.quantize_per_tensor_dynamic(torch.contiguous(x), 13, ")
                .append(reduceRange ? "True" : "False").append(")\n")
                .append("    return (torch.int_repr(q), torch.q_scale(q), torch.q_zero_point(q))\n");
        s.append("  def qlinear(self: __torch__.Ops,\n    x: Tensor, x_scale: float, x_zero: int, w: Tensor, w_scale: Tensor,"
                        + " w_zero: Tensor, b: Tensor, post: str, out: int) -> Tensor:\n")
                .append("    if torch.numel(x) == 0:\n")
                .append("      return torch.to(torch.matmul(torch.to(x, 6), torch.zeros([torch.size(x, -1), torch.size(w_scale, 0)])), out)\n")
                .append("    return ops.onednn.qlinear_pointwise(x, x_scale, x_zero, w, w_scale, w_zero, b, 1., 0, out, post,\n")
                .append("      annotate(List[Optional[number]], []), \"none\")\n");
        return s.toString();
    }

    /** The source for the CPU ({@code cpu}) or a GPU, with int8 methods, their inputs 8-bit, attention in float32. */
    static String source(boolean cpu) {
        return source(new Variant(cpu, false, true, false, cpu));
    }

    /** The TorchScript source of the op library's class, built as {@code variant} says. */
    static String source(Variant variant) {
        StringBuilder s = new StringBuilder();
        s.append("class Ops(Module):\n")
                .append("  __parameters__ = []\n")
                .append("  __buffers__ = []\n")
                .append("  training : bool\n")
                .append("  def forward(self: __torch__.Ops,\n    x: Tensor) -> Tensor:\n    return x\n")
                .append(ADAMW_SOURCE)
                .append(dalleEncoderSource(Precision.FP32.code(), FLOAT32))
                .append(dalleEncoderSource(Precision.BF16.code(), BFLOAT16));
        s.append("  def to_bf16(self: __torch__.Ops,\n    w: Tensor) -> Tensor:\n    return torch.to(w, 15)\n");
        s.append("  def requires_grad(self: __torch__.Ops,\n    x: Tensor) -> bool:\n    return x.requires_grad\n");
        if (variant.int8Methods()) {
            s.append(int8Source(variant.reduceRange()));
        }
        if (variant.packedBf16()) {
            s.append(packedBf16Source());
        }
        s.append(SHARED_BF16_SOURCE);
        for (Precision p : Precision.values()) {
            if (p == Precision.INT8 && !variant.int8Methods()) {
                continue;
            }
            precisionMethods(s, variant, p, WeightForm.CAST);
            if (p == Precision.BF16) {
                precisionMethods(s, variant, p, WeightForm.SHARED);
                if (variant.packedBf16()) {
                    precisionMethods(s, variant, p, WeightForm.PACKED);
                }
            }
        }
        return s.toString();
    }

    /**
     * The helpers of bf16 weight copies in shared buffers ({@link SharedBf16Copies}): {@code shared_bf16} casts a
     * weight into its buffer through an alias that autograd tracks apart ({@code ops.prim.data}, Python's
     * {@code buf.data}: its own version counter), recorded as a copy from the weight (the weight's gradient flows back
     * through it as through a cast), and gives the alias, which the product keeps for the backward pass;
     * {@code refill_bf16} writes a weight's copy back into its buffer before that backward pass, untracked.
     */
    private static final String SHARED_BF16_SOURCE = "  def shared_bf16(self: __torch__.Ops,\n    w: Tensor, buf: Tensor) -> Tensor:\n"
            + "    c = ops.prim.data(buf)\n"
            + "    _0 = torch.copy_(c, w)\n"
            + "    return c\n"
            + "  def refill_bf16(self: __torch__.Ops,\n    w: Tensor, buf: Tensor) -> None:\n"
            + "    _0 = torch.copy_(ops.prim.data(buf), w)\n"
            + "    return None\n"
            + "  def new_bf16(self: __torch__.Ops,\n    w: Tensor) -> Tensor:\n"
            + "    return torch.empty_like(w, dtype=15)\n";

    /**
     * The bf16 helpers on prepacked weights ({@link Variant#packedBf16}): {@code pack_bf16} (a weight's form: its
     * bfloat16 values in oneDNN's blocked layout, for any number of rows) and {@code packed_linear} (oneDNN's linear,
     * the bias and {@code post} (none, gelu) in its epilogue; bfloat16 out).
     */
    private static String packedBf16Source() {
        return "  def mkldnn_bf16(self: __torch__.Ops) -> bool:\n    return ops.mkldnn._is_mkldnn_bf16_supported()\n"
                + "  def pack_bf16(self: __torch__.Ops,\n    w: Tensor) -> Tensor:\n"
                + "    return ops.mkldnn._reorder_linear_weight(torch.to(w, 15), None)\n"
                // (an empty input gives an empty output, without asking oneDNN)
                + "  def packed_linear(self: __torch__.Ops,\n    x: Tensor, w: Tensor, b: Tensor, post: str) -> Tensor:\n"
                + "    if torch.numel(x) == 0:\n"
                + "      return torch.to(torch.matmul(torch.to(x, 6), torch.zeros([torch.size(x, -1), torch.size(w, 0)])), 15)\n"
                + "    return ops.mkldnn._linear_pointwise(x, w, torch.to(b, 15), post,\n"
                + "      annotate(List[Optional[number]], []), \"none\")\n";
    }

    /**
     * The methods of precision {@code p} ({@code linear_}, {@code mlp_gelu_}, {@code matmul_sum_} and both
     * {@code attention_} methods, suffixed with its code), for bf16 with its weights read in {@code form} (suffixed
     * with the form's suffix too; {@code matmul_sum} only for {@link WeightForm#CAST}).
     */
    private static void precisionMethods(StringBuilder s, Variant variant, Precision p, WeightForm form) {
        int t = dtype(p);
        String c = code(p, form);
        boolean int8 = p == Precision.INT8;
        // the products' inputs: for int8 their quantized forms, made once per input
        String x = int8 ? "xu, xs, xz" : "torch.to(x, " + t + ")";
        String hidden = int8 ? "hu, hs, hz" : "h";
        s.append("  def linear_").append(c).append("(self: __torch__.Ops,\n")
                .append("    x: Tensor, ").append(weightParam(p, form, "w")).append(", b: Tensor) -> Tensor:\n")
                .append(int8 ? int8Input("x", "xu", "xs", "xz") : "")
                .append("    y = ").append(linearExpr(p, form, x, "w", "b")).append("\n")
                .append("    return torch.to(y, 6)\n");
        s.append("  def mlp_gelu_").append(c).append("(self: __torch__.Ops,\n")
                .append("    x: Tensor, ").append(weightParam(p, form, "w1")).append(", b1: Tensor, ")
                .append(weightParam(p, form, "w2")).append(", b2: Tensor) -> Tensor:\n")
                .append(int8 ? int8Input("x", "xu", "xs", "xz") : "")
                .append("    h = ").append(linearExpr(p, form, x, "w1", "b1", true)).append("\n")
                .append(int8 ? int8Input("h", "hu", "hs", "hz") : "")
                .append("    y = ").append(linearExpr(p, form, hidden, "w2", "b2")).append("\n")
                .append("    return torch.to(y, 6)\n");
        // int8 has no matrix-product bench of its own: its matmul_sum is float32's
        if (form == WeightForm.CAST) {
            s.append("  def matmul_sum_").append(c).append("(self: __torch__.Ops,\n")
                    .append("    a: Tensor, bs: Tensor) -> Tensor:\n")
                    .append("    x = torch.to(a, ").append(t).append(")\n")
                    .append("    ys = torch.to(bs, ").append(t).append(")\n")
                    .append("    c = torch.mm(x, torch.select(ys, 0, 0))\n")
                    .append("    for i in range(1, torch.size(ys, 0)):\n")
                    .append("      c = torch.addmm(c, x, torch.select(ys, 0, i))\n")
                    .append("    return torch.to(c, 6)\n");
        }
        String src = int8 ? "xu" : "xc";
        String qkv = int8 ? "qd" : String.valueOf(FLOAT32);
        UnaryOperator<String> in = rows -> int8 ? rows + ", xs, xz" : rows;
        for (boolean masked : new boolean[] {false, true}) {
            s.append("  def attention_").append(masked ? "masked_" : "").append(c)
                    .append("(self: __torch__.Ops,\n")
                    .append("    x: Tensor, heads: Tensor, ").append(weightParam(p, form, "wq")).append(", bq: Tensor, ")
                    .append(weightParam(p, form, "wk")).append(", bk: Tensor,\n    ")
                    .append(weightParam(p, form, "wv")).append(", bv: Tensor, ").append(weightParam(p, form, "wo"))
                    .append(", bo: Tensor").append(masked ? ", mask: Tensor" : "").append(") -> Tensor:\n")
                    .append("    b = torch.size(x, 0)\n")
                    .append("    d = torch.size(x, 2)\n")
                    .append("    h = torch.size(heads, 0)\n")
                    .append("    xc = torch.to(x, ").append(t).append(")\n")
                    // int8: x quantized once for q, k and v (the rows below are taken from its uint8 values)
                    .append(int8 ? int8Input("xc", "xu", "xs", "xz") : "")
                    // keys (and values) only for the tokens the mask covers: the first size(mask, 3)
                    .append(masked ? "    kn = torch.size(mask, 3)\n    xk = " + (int8
                            ? "torch.contiguous(torch.slice(xu, 1, 0, kn))\n" : "torch.slice(xc, 1, 0, kn)\n")
                            : "    kn = torch.size(x, 1)\n    xk = " + src + "\n")
                    // queries: the first size(heads, 2) tokens, or every token when it is 0; contiguous, so
                    // that the products take the same path with and without autograd (the same numbers)
                    .append("    xq = ").append(src).append("\n")
                    .append("    if torch.size(heads, 2) > 0:\n")
                    .append("      xq = torch.contiguous(torch.slice(").append(src).append(", 1, 0, torch.size(heads, 2)))\n")
                    .append("    n = torch.size(xq, 1)\n")
                    .append(int8 ? int8QkvDtype(variant.int8Bf16Attention()) : "")
                    .append("    q = torch.transpose(torch.view(").append(linearExpr(p, form, in.apply("xq"), "wq", "bq", false, qkv))
                    .append(", [b, n, h, torch.floordiv(d, h)]), 1, 2)\n")
                    .append("    k = torch.transpose(torch.view(").append(linearExpr(p, form, in.apply("xk"), "wk", "bk", false, qkv))
                    .append(", [b, kn, h, torch.floordiv(d, h)]), 1, 2)\n")
                    .append("    v = torch.transpose(torch.view(").append(linearExpr(p, form, in.apply("xk"), "wv", "bv", false, qkv))
                    .append(", [b, kn, h, torch.floordiv(d, h)]), 1, 2)\n")
                    .append(attentionCore(p, masked, variant.cpu(), variant.int8Bf16Attention()))
                    .append("    c = torch.reshape(torch.transpose(o, 1, 2), [b, n, d])\n")
                    .append(int8 ? int8Input(variant.int8Bf16Attention() ? "torch.to(c, 6)" : "c", "cu", "cs", "cz") : "")
                    .append("    y = ").append(linearExpr(p, form, int8 ? "cu, cs, cz" : "c", "wo", "bo")).append("\n")
                    .append("    return torch.to(y, 6)\n");
        }
    }

    /**
     * Writes the TorchScript archive: a zip of STORED entries under {@code NAME/}: {@code version},
     * {@code constants.pkl} (an empty tuple), {@code data.pkl} (an {@code Ops} object with {@code training})
     * and {@code code/__torch__.py} (the source built as {@code variant} says, {@link #source(Variant)}). libtorch
     * compiles the source when it loads the archive.
     */
    static void writeArchive(OutputStream out, Variant variant) throws IOException {
        ZipOutputStream zip = new ZipOutputStream(out);
        stored(zip, NAME + "/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        stored(zip, NAME + "/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'});
        stored(zip, NAME + "/data.pkl", dataPickle());
        stored(zip, NAME + "/code/__torch__.py", source(variant).getBytes(StandardCharsets.UTF_8));
        zip.finish();
    }

    /** Protocol 2: GLOBAL __torch__ Ops, EMPTY_TUPLE, NEWOBJ, {"training": True}, BUILD, STOP. */
    private static byte[] dataPickle() {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        b.write(0x80);
        b.write(2);
        b.writeBytes("c__torch__\nOps\n".getBytes(StandardCharsets.US_ASCII));
        b.write(')');
        b.write(0x81);
        b.write('}');
        b.write('(');
        byte[] key = "training".getBytes(StandardCharsets.US_ASCII);
        b.write('X');
        b.write(key.length);
        b.write(0);
        b.write(0);
        b.write(0);
        b.writeBytes(key);
        b.write(0x88);
        b.write('u');
        b.write('b');
        b.write('.');
        return b.toByteArray();
    }

    private static void stored(ZipOutputStream zip, String name, byte[] data) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setMethod(ZipEntry.STORED);
        e.setSize(data.length);
        e.setCompressedSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        e.setCrc(crc.getValue());
        zip.putNextEntry(e);
        zip.write(data);
        zip.closeEntry();
    }
}
