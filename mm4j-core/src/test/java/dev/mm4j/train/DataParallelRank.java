package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Precision;
import dev.mm4j.train.TrainingLoopTest.Data;
import dev.mm4j.train.TrainingLoopTest.Regressor;
import dev.mm4j.train.TrainingLoopTest.Rows;
import dev.mm4j.train.dist.ProcessGroup;
import dev.mm4j.train.dist.Rendezvous;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * One rank of {@link DataParallelTrainingTest} in its own JVM ({@code DataParallelRank port rank world steps precision
 * clip}), and the one-process reference: the tiny regression net of {@link TrainingLoopTest}, the same init on every
 * rank, global batch k made of the data's batches {@code k*world .. k*world+world-1}; rank r trains on batch
 * {@code k*world+r} (per-rank batch 4), the reference on all of them as accumulated micro-batches. Prints
 * {@code loss=}, {@code norm=} per step and {@code weights=} at the end (float bits, exact).
 */
public final class DataParallelRank {

    /** The data's batches, epoch after epoch, in order. */
    static List<Rows> batches(int count) {
        List<Rows> out = new ArrayList<>();
        Data data = new Data();
        for (int epoch = 0; out.size() < count; epoch++) {
            Iterator<Rows> it = data.epoch(epoch, 0);
            while (it.hasNext() && out.size() < count) {
                out.add(it.next());
            }
        }
        return out;
    }

    /** Trains {@code steps} steps; micro-batches of step k: {@code pick.apply(k)}; returns losses, norms, weights. */
    static List<String> train(NDManager m, int steps, Precision precision, double clip, int world,
            java.util.function.IntFunction<List<Rows>> pick, dev.mm4j.train.GradientSync sync) {
        Engine.getInstance().setRandomSeed(11);
        Regressor model = new Regressor();
        model.setPrecision(precision);
        model.allocate(m);
        List<String> out = new ArrayList<>();
        try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
            TrainingStep<Rows> step = new TrainingStep<>(model, opt, m, sync);
            for (int k = 0; k < steps; k++) {
                TrainingStep.Result r = step.run(pick.apply(k), 1e-2, clip, true, false);
                if (!r.applied()) {
                    throw new IllegalStateException("step " + k + " not applied");
                }
                out.add("loss=" + r.loss());
                out.add("norm=" + r.gradNorm());
            }
        }
        StringBuilder w = new StringBuilder();
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            for (float v : e.getValue().array().toFloatArray()) {
                w.append(v).append(',');
            }
        }
        out.add("weights=" + w);
        return out;
    }

    public static void main(String[] args) {
        int port = Integer.parseInt(args[0]);
        int rank = Integer.parseInt(args[1]);
        int world = Integer.parseInt(args[2]);
        int steps = Integer.parseInt(args[3]);
        Precision precision = Precision.valueOf(args[4]);
        double clip = Double.parseDouble(args[5]);
        List<Rows> all = batches(steps * world);
        try (NDManager m = NDManager.newBaseManager();
                ProcessGroup pg = ProcessGroup.open(Rendezvous.local(port, rank, world, Duration.ofSeconds(60)))) {
            // a small bucket size, so that the rest of the gradients goes in several buckets
            DataParallelSync sync = new DataParallelSync(pg, 64);
            train(m, steps, precision, clip, world, k -> List.of(all.get(k * world + rank)), sync)
                    .forEach(System.out::println);
        }
        System.out.println("done");
    }
}
