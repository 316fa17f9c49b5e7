package dev.mm4j.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import dev.mm4j.checkpoint.HostTensor;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.TorchOps;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * {@code torch.optim.AdamW}: decoupled weight decay, bias-corrected moments, applied to every parameter
 * that has a gradient (like PyTorch, a parameter whose gradient is none is skipped).
 *
 * <p>The update is one pass over memory: each parameter's weight, gradient and both moments are read once
 * and the weight and moments written once (7 x 4 bytes per parameter, the floor for AdamW), in place in
 * libtorch's memory, the weight decay folded into the same pass. By default ({@link Mode#FUSED}) that pass
 * is libtorch's own fused kernel ({@code aten::_fused_adamw_}, what {@code torch.optim.AdamW(fused=True)}
 * runs: vectorized, multi-tensor, on libtorch's threads), called through the op library ({@link TorchOps#adamw}).
 * {@link Mode#ONE_PASS} is the same pass written in Java (CPU only), {@link Mode#BASELINE} libtorch's per-op
 * path (a decay pass, then DJL's Adam op: a gradient copy and about ten more whole-tensor passes): the
 * benchmark's "before"s.
 *
 * <p>Gradients are released after each step ({@link #zeroGrad()}, PyTorch's {@code set_to_none}), so they
 * exist only between a backward pass and the update and the first backward writes them without a read.
 * An update can also be applied in parts ({@link #begin}): a part's gradients are released as soon as it is
 * updated, e.g. a recomputed layer's during the backward pass.
 */
public final class AdamW implements AutoCloseable {

    /** AdamW's hyper-parameters; {@link #torchDefaults()} are PyTorch's. */
    public record Settings(double lr, double beta1, double beta2, double eps, double weightDecay) {
        public static Settings torchDefaults() {
            return new Settings(1e-3, 0.9, 0.999, 1e-8, 1e-2);
        }
    }

    /**
     * FUSED: libtorch's fused one-pass kernel ({@code aten::_fused_adamw_}) on all parameters of an update at once,
     * and gradients released after the step (the default). ONE_PASS: the same one-pass update written in Java (on
     * the CPU; elsewhere it runs as BASELINE), gradients released. BASELINE: the first behaviour, for side-by-side
     * benchmarks: a decay pass plus DJL's Adam op per parameter, and gradients kept allocated and zeroed between steps.
     */
    public enum Mode { FUSED, ONE_PASS, BASELINE }

    private record Slot(String name, Parameter param, NDArray expAvg, NDArray expAvgSq) {}

    /** Elements per task of the one-pass update: large enough to amortize scheduling, small enough to balance. */
    private static final int BLOCK = 1 << 16;

    /** Elements updated at a time within a block: four arrays of it stay in the core's L1 cache. */
    private static final int CHUNK = 2048;

    private final List<Slot> slots = new ArrayList<>();
    private final Map<Parameter, Integer> slotOf = new IdentityHashMap<>();
    private final NDManager stateManager;
    private final Settings settings;
    private final Mode mode;
    private final ForkJoinPool pool;
    /** Each thread's chunk arrays (w, g, m, v), made once rather than per block of every step. */
    private final ThreadLocal<float[][]> scratch = ThreadLocal.withInitial(() -> new float[4][CHUNK]);
    private long step;

    /** @param manager parent of the optimizer's state (moments live on its device) */
    public AdamW(Map<String, Parameter> params, Settings settings, NDManager manager) {
        this(params, settings, manager, Mode.FUSED);
    }

    public AdamW(Map<String, Parameter> params, Settings settings, NDManager manager, Mode mode) {
        this.settings = settings;
        this.mode = mode;
        this.stateManager = manager.newSubManager();
        // these weights will change: no bf16 copy made for inference may stand in for them (TorchOps.freeze)
        TorchOps.thaw(params.values().stream().map(Parameter::array).toList());
        params.forEach((name, p) -> {
            NDArray m = stateManager.zeros(p.shape());
            NDArray v = stateManager.zeros(p.shape());
            NDScope.unregister(m, v);
            slotOf.put(p, slots.size());
            slots.add(new Slot(name, p, m, v));
        });
        boolean onePass = mode == Mode.ONE_PASS && manager.getDevice().equals(Device.cpu());
        this.pool = onePass ? new ForkJoinPool(Math.max(1, Runtime.getRuntime().availableProcessors())) : null;
    }

    public Settings settings() {
        return settings;
    }

    public Mode mode() {
        return mode;
    }

    /** The parameters this optimizer updates, in the order it was given them. */
    public List<Parameter> parameters() {
        return slots.stream().map(Slot::param).toList();
    }

    /** Steps taken so far (PyTorch's {@code state['step']}). */
    public long stepCount() {
        return step;
    }

    /** Bytes one step reads and writes at the least: weight, gradient, two moments read; weight, moments written. */
    public long bytesPerStep() {
        return 7L * 4 * slots.stream().mapToLong(s -> s.param.size()).sum();
    }

    /**
     * One update with learning rate {@code lr} (the schedule's value for this step) and gradients
     * multiplied by {@code gradScale} first (1 = as they are; below 1 when clipping by norm).
     */
    public void step(double lr, double gradScale) {
        begin(lr, gradScale, false).applyRest();
    }

    /**
     * Starts one update that can be applied in parts, each as soon as its parameters' gradients are complete
     * (e.g. a layer's, during the backward pass): {@link Update#apply} updates those parameters and releases their
     * gradients, {@link Update#applyRest} the rest. Every parameter gets exactly the update {@link #step} gives.
     *
     * @param measureNorm keep each gradient's norm before its update, for {@link Update#gradNorm()}
     */
    public Update begin(double lr, double gradScale, boolean measureNorm) {
        step++;
        return new Update(lr, gradScale, measureNorm);
    }

    /** One step's update, applied in parts; see {@link #begin}. */
    public final class Update {
        private final double lr;
        private final double gradScale;
        private final float a;
        private final float e;
        private final float decay;
        private final boolean[] applied = new boolean[slots.size()];
        /** Each gradient's norm before its update, null where a parameter had none (when measuring). */
        private final Float[] norms;

        private Update(double lr, double gradScale, boolean measureNorm) {
            double bc1 = 1 - Math.pow(settings.beta1, step);
            double sqrtBc2 = Math.sqrt(1 - Math.pow(settings.beta2, step));
            // PyTorch's AdamW:  w *= 1 - lr*wd;  m, v moments;  w -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),
            // computed as  w = w*decay - m * a / (sqrt(v) + e)  with a = lr*sqrt(bc2)/bc1 and e = eps*sqrt(bc2).
            this.lr = lr;
            this.gradScale = gradScale;
            this.a = (float) (lr * sqrtBc2 / bc1);
            this.e = (float) (settings.eps * sqrtBc2);
            this.decay = (float) (1 - lr * settings.weightDecay);
            this.norms = measureNorm ? new Float[slots.size()] : null;
        }

        /**
         * Updates those of {@code params} not yet updated in this step and releases their gradients; parameters
         * this optimizer does not hold (e.g. frozen ones) are left as they are.
         */
        public void apply(Collection<Parameter> params) {
            List<Integer> part = new ArrayList<>();
            for (Parameter p : params) {
                Integer i = slotOf.get(p);
                if (i != null) {
                    part.add(i);
                }
            }
            for (Slot s : run(part)) {
                clearGradient(s);
            }
        }

        /** Updates every parameter not updated yet in this step; releases no gradient (see {@link #zeroGrad}). */
        public void applyRest() {
            List<Integer> part = new ArrayList<>();
            for (int i = 0; i < slots.size(); i++) {
                part.add(i);
            }
            run(part);
        }

        /**
         * The L2 norm of all gradients of this step together, as {@link AdamW#gradNorm()} measures it before any
         * update (needs {@code measureNorm}; call it after {@link #applyRest}).
         */
        public double gradNorm() {
            if (norms == null) {
                throw new IllegalStateException("this update was begun without measureNorm");
            }
            return totalNorm(Arrays.stream(norms).filter(Objects::nonNull).toList());
        }

        /** Updates the slots of {@code part} not updated yet and returns them. */
        private List<Slot> run(List<Integer> part) {
            List<Slot> todo = new ArrayList<>();
            for (int i : part) {
                if (!applied[i]) {
                    applied[i] = true;
                    todo.add(slots.get(i));
                    if (norms != null) {
                        norms[i] = gradientNorm(slots.get(i));
                    }
                }
            }
            boolean gradMode = JniUtils.isGradMode();
            JniUtils.setGradMode(false); // an update is not part of any graph, even when called inside a collector
            try {
                if (mode == Mode.FUSED) {
                    fused(todo, lr, gradScale);
                } else if (pool != null) {
                    onePass(todo, a, e, decay, (float) gradScale);
                } else {
                    libtorchOps(todo, a, e, decay, lr, gradScale);
                }
            } finally {
                JniUtils.setGradMode(gradMode);
            }
            return todo;
        }
    }

    /** The gradient of {@code w}, or null when none (PyTorch's {@code p.grad is None}). */
    private static NDArray gradient(NDArray w) {
        if (w instanceof PtNDArray pt) {
            return JniUtils.getGradient(pt); // null when undefined (DJL's getGradient would make zeros)
        }
        return w.getGradient();
    }

    /** libtorch's fused kernel on every slot of {@code todo} that has a gradient, in one call. */
    private void fused(List<Slot> todo, double lr, double gradScale) {
        List<NDArray> w = new ArrayList<>();
        List<NDArray> g = new ArrayList<>();
        List<NDArray> m = new ArrayList<>();
        List<NDArray> v = new ArrayList<>();
        try {
            for (Slot s : todo) {
                NDArray grad = gradient(s.param.array());
                if (grad == null) {
                    continue;
                }
                w.add(s.param.array());
                g.add(grad);
                m.add(s.expAvg);
                v.add(s.expAvgSq);
            }
            if (!w.isEmpty()) {
                TorchOps.on(w.get(0)).adamw(w, g, m, v, step, lr, settings.beta1, settings.beta2, settings.weightDecay,
                        settings.eps, gradScale);
            }
        } finally {
            g.forEach(NDArray::close);
        }
    }

    /** One read of w, g, m, v and one write of w, m, v per element, in blocks over the pool's threads. */
    private void onePass(List<Slot> todo, float a, float e, float decay, float scale) {
        List<FloatBuffer[]> buffers = new ArrayList<>();
        List<long[]> blocks = new ArrayList<>(); // {buffers index, start, end}
        List<NDArray> grads = new ArrayList<>();
        for (Slot s : todo) {
            NDArray w = s.param.array();
            NDArray g = gradient(w);
            if (g == null) {
                continue;
            }
            grads.add(g);
            // Direct views of libtorch's memory: parameters, moments and gradients are contiguous CPU tensors
            // (made so by libtorch), for which DJL returns the tensor's own memory, not a copy.
            FloatBuffer[] b = {view(w), view(g), view(s.expAvg), view(s.expAvgSq)};
            int idx = buffers.size();
            buffers.add(b);
            long n = s.param.size();
            for (long start = 0; start < n; start += BLOCK) {
                blocks.add(new long[] {idx, start, Math.min(n, start + BLOCK)});
            }
        }
        float b1 = (float) settings.beta1;
        float b2 = (float) settings.beta2;
        // 1 - beta in double, then rounded (as PyTorch passes it): 1 - (float) 0.999 in float32 is 1.3e-5 off 0.001
        float c1 = (float) (1 - settings.beta1);
        float c2 = (float) (1 - settings.beta2);
        try {
            pool.submit(() -> IntStream.range(0, blocks.size()).parallel().forEach(i -> {
                long[] blk = blocks.get(i);
                FloatBuffer[] b = buffers.get((int) blk[0]);
                // Each chunk is copied into arrays, updated there and copied back: the same bytes cross the
                // memory bus, and the loop over plain arrays is one the JIT compiles to vector instructions
                // (over the buffers it is element by element), so the update runs at memory speed.
                float[][] chunk = scratch.get();
                float[] w = chunk[0];
                float[] g = chunk[1];
                float[] m = chunk[2];
                float[] v = chunk[3];
                for (int start = (int) blk[1], end = (int) blk[2]; start < end; start += CHUNK) {
                    int n = Math.min(CHUNK, end - start);
                    b[0].get(start, w, 0, n);
                    b[1].get(start, g, 0, n);
                    b[2].get(start, m, 0, n);
                    b[3].get(start, v, 0, n);
                    for (int j = 0; j < n; j++) {
                        float gj = g[j] * scale;
                        float mj = b1 * m[j] + c1 * gj;
                        float vj = b2 * v[j] + c2 * gj * gj;
                        m[j] = mj;
                        v[j] = vj;
                        w[j] = w[j] * decay - a * mj / ((float) Math.sqrt(vj) + e);
                    }
                    b[0].put(start, w, 0, n);
                    b[2].put(start, m, 0, n);
                    b[3].put(start, v, 0, n);
                }
            })).join();
        } finally {
            grads.forEach(NDArray::close);
        }
    }

    private static FloatBuffer view(NDArray array) {
        return JniUtils.getByteBuffer((PtNDArray) array, true).asFloatBuffer();
    }

    /** The previous path: one in-place decay pass, then DJL's Adam op (run without its own decay). */
    private void libtorchOps(List<Slot> todo, float a, float e, float decay, double lr, double gradScale) {
        for (Slot s : todo) {
            NDArray w = s.param.array();
            NDArray g = gradient(w);
            if (g == null) {
                continue;
            }
            if (decay != 1f) {
                w.muli(decay);
            }
            w.getNDArrayInternal().adamUpdate(new NDList(w, g, s.expAvg, s.expAvgSq), new NDList(w),
                    (float) lr, a, 0f, (float) gradScale, -1f,
                    (float) settings.beta1, (float) settings.beta2, e, false, false);
            g.close();
        }
    }

    /** The L2 norm of all gradients together (what {@code clip_grad_norm_} measures). */
    public double gradNorm() {
        List<Float> norms = new ArrayList<>();
        for (Slot s : slots) {
            Float n = gradientNorm(s);
            if (n != null) {
                norms.add(n);
            }
        }
        return totalNorm(norms);
    }

    /** The L2 norm of a slot's gradient, or null when it has none. */
    private static Float gradientNorm(Slot s) {
        NDArray g = gradient(s.param.array());
        if (g == null) {
            return null;
        }
        try (NDArray n = g.norm()) {
            return n.getFloat();
        } finally {
            g.close();
        }
    }

    /** The norm of the gradients' norms, in float32 as {@code clip_grad_norm_} computes it (0 when none). */
    private double totalNorm(List<Float> norms) {
        if (norms.isEmpty()) {
            return 0;
        }
        float[] values = new float[norms.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = norms.get(i);
        }
        try (NDManager tmp = stateManager.newSubManager()) {
            return tmp.create(values).norm().getFloat();
        }
    }

    /**
     * Clears every gradient (gradients accumulate over backward calls otherwise): releases them, like
     * PyTorch's {@code zero_grad()} (set_to_none), or in {@link Mode#BASELINE} sets them to zero and keeps them.
     */
    public void zeroGrad() {
        for (Slot s : slots) {
            clearGradient(s);
        }
    }

    private void clearGradient(Slot s) {
        if (mode == Mode.BASELINE && s.param.array() instanceof PtNDArray pt) {
            JniUtils.zeroGrad(pt);
        } else {
            s.param.releaseGradient();
        }
    }

    /** Moments by parameter name ({@code exp_avg.NAME}, {@code exp_avg_sq.NAME}), for checkpoints. */
    public Map<String, NDArray> state() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Slot s : slots) {
            out.put("exp_avg." + s.name, s.expAvg);
            out.put("exp_avg_sq." + s.name, s.expAvgSq);
        }
        return out;
    }

    /** Restores moments and the step count saved by {@link #state()} (missing names → error). */
    public void loadState(StateDict moments, long stepCount) {
        for (Slot s : slots) {
            HostTensor m = moments.get("exp_avg." + s.name);
            HostTensor v = moments.get("exp_avg_sq." + s.name);
            if (m == null || v == null) {
                throw new IllegalArgumentException("optimizer state has no moments for " + s.name);
            }
            s.expAvg.set(m.toFloatArray());
            s.expAvgSq.set(v.toFloatArray());
        }
        this.step = stepCount;
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdown();
        }
        stateManager.close();
    }
}
