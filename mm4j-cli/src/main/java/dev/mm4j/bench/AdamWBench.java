package dev.mm4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Parameter;
import dev.mm4j.train.AdamW;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The optimizer step alone, old against new in one JVM: AdamW on the model's parameters (all, or the first ones up to
 * a budget), each round running every mode once in turn (fused kernel, fused with a clipping factor, the Java one-pass
 * update, the per-op baseline), so that a machine's changing load falls on all of them alike. Each mode's step is
 * timed on fresh moments after one untimed step (the first step of each optimizer warms it up), with gradients made by
 * an untimed backward pass; one optimizer exists at a time (weights + gradients + one set of moments).
 */
public final class AdamWBench {

    private record Row(String name, AdamW.Mode mode, double gradScale) {}

    private static final List<Row> ROWS = List.of(
            new Row("fused (aten::_fused_adamw_)", AdamW.Mode.FUSED, 1.0),
            new Row("fused, grad scale 0.5", AdamW.Mode.FUSED, 0.5),
            new Row("one-pass (Java)", AdamW.Mode.ONE_PASS, 1.0),
            new Row("baseline (per-op)", AdamW.Mode.BASELINE, 1.0));

    private AdamWBench() {}

    /**
     * @param maxParams the parameter budget: the model's parameters in order while their total stays within it (0: all)
     * @param rounds timed rounds
     */
    public static void run(FlavaConfig config, NDManager manager, long maxParams, int rounds, PrintStream out) {
        try (NDManager m = manager.newSubManager()) {
            FlavaForClassification model = FlavaForClassification.create(config, m);
            Map<String, Parameter> params = new LinkedHashMap<>();
            long total = 0;
            for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
                long n = e.getValue().size();
                if (maxParams > 0 && total + n > maxParams) {
                    continue;
                }
                params.put(e.getKey(), e.getValue());
                total += n;
            }
            double copy = TrainBench.copyBandwidth(m);
            out.printf("AdamW step alone: %,d of the model's %,d parameters (%d tensors), %d rounds, each mode once per round "
                    + "in turn; memory bandwidth (libtorch copy) %.1f GB/s%n", total, model.parameterCount(), params.size(),
                    rounds, copy);
            double[][] t = new double[ROWS.size()][rounds];
            long bytes = 0;
            for (int r = 0; r < rounds; r++) {
                for (int k = 0; k < ROWS.size(); k++) {
                    Row row = ROWS.get(k);
                    try (AdamW opt = new AdamW(params, AdamW.Settings.torchDefaults(), m, row.mode())) {
                        bytes = opt.bytesPerStep();
                        gradients(params, m);
                        opt.step(1e-4, row.gradScale()); // warm-up: first step, moments' pages touched
                        opt.zeroGrad();
                        gradients(params, m);
                        long s = System.nanoTime();
                        opt.step(1e-4, row.gradScale());
                        t[k][r] = (System.nanoTime() - s) / 1e9;
                        opt.zeroGrad();
                    }
                }
            }
            double floor = bytes / 1e9 / copy;
            out.printf("%-28s %9s %9s %8s %10s%n", "AdamW", "s/step", "min s", "GB/s", "x floor");
            for (int k = 0; k < ROWS.size(); k++) {
                double med = TrainBench.med(t[k]);
                double min = java.util.Arrays.stream(t[k]).min().orElse(0);
                out.printf("%-28s %9.4f %9.4f %8.1f %10.2f%n", ROWS.get(k).name(), med, min, bytes / 1e9 / med, med / floor);
            }
            out.printf("(floor: %.2f GB read and written per step, 7 x 4 bytes a parameter, at the copy bandwidth: %.4f s)%n",
                    bytes / 1e9, floor);
        }
    }

    /** Gradients for {@code params}: the backward pass of sum(w * 1e-3) (untimed). */
    private static void gradients(Map<String, Parameter> params, NDManager m) {
        try (NDManager tmp = m.newSubManager(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            List<NDArray> terms = new ArrayList<>();
            for (Parameter p : params.values()) {
                NDArray scaled = p.array().mul(1e-3f);
                scaled.attach(tmp); // made on the parameter's manager: freed with tmp, not with the model
                NDArray x = scaled.sum();
                x.attach(tmp);
                terms.add(x);
            }
            NDArray loss = terms.get(0);
            for (int i = 1; i < terms.size(); i++) {
                loss = loss.add(terms.get(i));
                loss.attach(tmp);
            }
            gc.backward(loss);
        }
    }
}
