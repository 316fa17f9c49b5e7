package dev.mm4j.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import dev.mm4j.checkpoint.HostTensor;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.nn.Parameter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code torch.optim.AdamW}: decoupled weight decay, bias-corrected moments, applied to every
 * parameter. Each parameter's update is one fused libtorch call (decay, both moments and the step,
 * in place), so the optimizer over FLAVA's 245M parameters costs a few whole-tensor passes.
 */
public final class AdamW implements AutoCloseable {

    /** AdamW's hyper-parameters; {@link #torchDefaults()} are PyTorch's. */
    public record Settings(double lr, double beta1, double beta2, double eps, double weightDecay) {
        public static Settings torchDefaults() {
            return new Settings(1e-3, 0.9, 0.999, 1e-8, 1e-2);
        }
    }

    private record Slot(String name, Parameter param, NDArray expAvg, NDArray expAvgSq) {}

    private final List<Slot> slots = new ArrayList<>();
    private final NDManager stateManager;
    private final Settings settings;
    private long step;

    /** @param manager parent of the optimizer's state (moments live on its device) */
    public AdamW(Map<String, Parameter> params, Settings settings, NDManager manager) {
        this.settings = settings;
        this.stateManager = manager.newSubManager();
        params.forEach((name, p) -> {
            NDArray m = stateManager.zeros(p.shape());
            NDArray v = stateManager.zeros(p.shape());
            NDScope.unregister(m, v);
            slots.add(new Slot(name, p, m, v));
        });
    }

    public Settings settings() {
        return settings;
    }

    /** Steps taken so far (PyTorch's {@code state['step']}). */
    public long stepCount() {
        return step;
    }

    /**
     * One update with learning rate {@code lr} (the schedule's value for this step) and gradients
     * multiplied by {@code gradScale} first (1 = as they are; below 1 when clipping by norm).
     */
    public void step(double lr, double gradScale) {
        step++;
        double bc1 = 1 - Math.pow(settings.beta1, step);
        double bc2 = 1 - Math.pow(settings.beta2, step);
        double sqrtBc2 = Math.sqrt(bc2);
        // PyTorch's AdamW:  w *= 1 - lr*wd;  m, v moments;  w -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
        // The decay is one in-place pass here; libtorch's fused Adam update (run without its own decay) then
        // computes  w -= m * a / (sqrt(v) + e)  with a = lr*sqrt(bc2)/bc1 and e = eps*sqrt(bc2): the same
        // arithmetic, term by term, in one call per parameter.
        float a = (float) (lr * sqrtBc2 / bc1);
        float e = (float) (settings.eps * sqrtBc2);
        float decay = (float) (1 - lr * settings.weightDecay);
        boolean gradMode = JniUtils.isGradMode();
        JniUtils.setGradMode(false); // an update is not part of any graph, even when called inside a collector
        try {
            update(a, e, decay, lr, gradScale);
        } finally {
            JniUtils.setGradMode(gradMode);
        }
    }

    private void update(float a, float e, float decay, double lr, double gradScale) {
        for (Slot s : slots) {
            NDArray w = s.param.array();
            NDArray g = w.getGradient();
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
        try (NDManager tmp = stateManager.newSubManager()) {
            NDList norms = new NDList();
            for (Slot s : slots) {
                NDArray g = s.param.array().getGradient();
                NDArray n = g.norm();
                n.attach(tmp);
                g.close();
                norms.add(n);
            }
            NDArray total = NDArrays.stack(norms).norm();
            total.attach(tmp);
            return total.getFloat();
        }
    }

    /** Sets every gradient to zero (gradients accumulate over backward calls otherwise). */
    public void zeroGrad() {
        for (Slot s : slots) {
            NDArray w = s.param.array();
            if (w instanceof PtNDArray pt) {
                JniUtils.zeroGrad(pt);
            } else {
                NDArray g = w.getGradient();
                g.subi(g);
                g.close();
            }
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
        stateManager.close();
    }
}
