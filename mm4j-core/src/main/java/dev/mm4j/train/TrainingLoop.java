package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.LossModel;
import dev.mm4j.nn.Module;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.function.BooleanSupplier;

/**
 * The training loop of every task: epochs of batches, one {@link TrainingStep} per optimizer step (dropout seeded
 * from (seed, step), so a resumed run repeats the uninterrupted one), periodic validation (keeping the best
 * checkpoint) and checkpoints with the data position ({@link TrainState}). Everything it reports goes to its
 * {@link TrainingListener}s. A cancel request is honoured at the next step boundary: the loop returns with the data
 * position of the last applied step. Classification ({@link Finetuner}), retrieval ({@code search.RetrievalFinetuner})
 * and pretraining run on it with their own {@link LossModel} and {@link Data}.
 *
 * <pre>{@code
 * TrainingLoop<Batch> loop = new TrainingLoop<>(model, model.config(), optimizer, manager, data, Options.of(settings),
 *         schedule, totalSteps, store, state, resumedFrom)
 *         .listeners(listeners).log(System.out).cancelWhen(() -> stop);
 * TrainingLoop.Outcome o = loop.run();
 * loop.checkpoint();
 * }</pre>
 *
 * @param <B> the model's host batch type
 */
public final class TrainingLoop<B> {

    /** How the loop ended. */
    public record Outcome(List<Double> losses, boolean stoppedOnNonFinite, boolean cancelled, Path lastCheckpoint,
            long lastSavedStep) {}

    /**
     * What a loop trains on: an epoch's batches from a given batch on, each batch knowing its place in its epoch.
     * Repeatable: the same (epoch, startBatch) gives the same batches, which is what exact resume rests on.
     */
    public interface Data<B> {
        /** The batches of {@code epoch} from batch number {@code startBatch} on. */
        Iterator<B> epoch(int epoch, int startBatch);

        /** Batches in an epoch (for the fractional epoch reported). */
        int batchesPerEpoch();

        /** The samples in {@code batch}. */
        int samples(B batch);

        /** {@code batch}'s number within its epoch: a resumed run starts at the one after it. */
        int index(B batch);

        /**
         * Rank {@code rank}'s share of each epoch among {@code worldSize} data-parallel processes: global batch
         * {@code j} is the base batches {@code j*worldSize .. j*worldSize+worldSize-1}, of which this rank takes
         * {@code j*worldSize+rank} (the same order on every rank, from the same (seed, epoch)); an epoch's last
         * incomplete group is left out so that every rank takes the same number of steps. Batch numbers (and so a
         * checkpoint's next batch) count global batches, the same on every rank: a resumed run restores every rank.
         */
        default Data<B> shard(int rank, int worldSize) {
            if (worldSize < 1 || rank < 0 || rank >= worldSize) {
                throw new IllegalArgumentException("rank " + rank + " of " + worldSize);
            }
            if (worldSize == 1) {
                return this;
            }
            Data<B> base = this;
            return new Data<>() {
                @Override
                public Iterator<B> epoch(int epoch, int startBatch) {
                    int groups = batchesPerEpoch();
                    Iterator<B> it = base.epoch(epoch, startBatch * worldSize);
                    return new Iterator<>() {
                        private B next = advance();

                        private B advance() {
                            while (it.hasNext()) {
                                B b = it.next();
                                int i = base.index(b);
                                if (i / worldSize >= groups) {
                                    return null;
                                }
                                if (i % worldSize == rank) {
                                    return b;
                                }
                            }
                            return null;
                        }

                        @Override
                        public boolean hasNext() {
                            return next != null;
                        }

                        @Override
                        public B next() {
                            if (next == null) {
                                throw new java.util.NoSuchElementException();
                            }
                            B b = next;
                            next = advance();
                            return b;
                        }
                    };
                }

                @Override
                public int batchesPerEpoch() {
                    return base.batchesPerEpoch() / worldSize;
                }

                @Override
                public int samples(B batch) {
                    return base.samples(batch);
                }

                @Override
                public int index(B batch) {
                    return base.index(batch) / worldSize;
                }
            };
        }
    }

    /**
     * What the loop takes from a run's settings (the same keys for every task).
     *
     * @param gradAccum micro-batches per optimizer step
     * @param maxGradNorm clip the global gradient norm to this (0: no clipping; updates during the backward pass)
     * @param dropout train mode (dropout active) during the steps
     * @param seed the run's seed; each step's dropout is seeded from (seed, step)
     * @param logEvery measure the gradient norm every this many steps (for the metrics log)
     * @param evalEvery validate every this many steps (0: only when the caller asks)
     * @param checkpointEvery write a checkpoint every this many steps (0: only when the caller asks)
     */
    public record Options(int gradAccum, double maxGradNorm, boolean dropout, long seed, int logEvery, long evalEvery,
            long checkpointEvery) {
        public Options {
            if (gradAccum < 1) {
                throw new IllegalArgumentException("grad_accum must be at least 1, got " + gradAccum);
            }
        }

        /** The loop's part of a run's settings. */
        public static Options of(FinetuneSettings s) {
            return new Options(s.gradAccum, s.maxGradNorm, s.dropout, s.seed, s.logEvery, s.evalEvery, s.checkpointEvery);
        }
    }

    /** Periodic validation of a classification model (null for tasks validated elsewhere). */
    public interface Validator {
        Evaluator.Result validate() throws IOException;
    }

    private final LossModel<B> model;
    private final Module weights;
    private final FlavaConfig config;
    private final AdamW optimizer;
    private final NDManager manager;
    private Data<B> data;
    private final Options s;
    private final LrSchedule schedule;
    private final long totalSteps;
    private final CheckpointStore store;
    private final TrainState st;
    private final List<Double> losses = new ArrayList<>();
    private List<TrainingListener> listeners = List.of();
    private PrintStream out = new PrintStream(OutputStream.nullOutputStream());
    private BooleanSupplier cancelRequested = () -> false;
    private Validator validator;
    private GradientSync sync = GradientSync.NONE;
    private boolean primary = true;
    private Path lastCheckpoint;
    private long lastSaved;

    /**
     * @param model the model, trained and checkpointed (a {@link Module} that is a {@link LossModel})
     * @param config written into the checkpoints' weights' metadata (null for a model without one)
     * @param data the training data; its batches are grouped by {@code s.gradAccum} into steps
     * @param s accumulation, clipping, dropout, seed, log/eval/checkpoint intervals ({@link Options#of} a run's settings)
     * @param store where checkpoints go
     * @param state where the run stands (fresh, or restored from {@code resumedFrom}); the loop advances it
     * @param resumedFrom the checkpoint the run resumed from, or null
     */
    public <M extends Module & LossModel<B>> TrainingLoop(M model, FlavaConfig config, AdamW optimizer,
            NDManager manager, Data<B> data, Options s, LrSchedule schedule, long totalSteps,
            CheckpointStore store, TrainState state, Path resumedFrom) {
        this.model = model;
        this.weights = model;
        this.config = config;
        this.optimizer = optimizer;
        this.manager = manager;
        this.data = data;
        this.s = s;
        this.schedule = schedule;
        this.totalSteps = totalSteps;
        this.store = store;
        this.st = state;
        this.lastCheckpoint = resumedFrom;
        this.lastSaved = resumedFrom != null ? state.step : -1;
    }

    /** Who hears of steps, validations and checkpoints, in this order. */
    public TrainingLoop<B> listeners(List<TrainingListener> listeners) {
        this.listeners = List.copyOf(listeners);
        return this;
    }

    /** Where the loop's own lines go (why it stopped); default nowhere. */
    public TrainingLoop<B> log(PrintStream out) {
        this.out = Objects.requireNonNull(out, "out");
        return this;
    }

    /** Asked before every step: true stops the loop at that step boundary. */
    public TrainingLoop<B> cancelWhen(BooleanSupplier cancelRequested) {
        this.cancelRequested = Objects.requireNonNull(cancelRequested, "cancelRequested");
        return this;
    }

    /** Validation every {@code eval_every} steps, keeping the best model as {@code best/}; default none. */
    public TrainingLoop<B> validator(Validator validator) {
        this.validator = validator;
        return this;
    }

    /** Where each step's gradients go before they are used (data-parallel training); default {@link GradientSync#NONE}. */
    public TrainingLoop<B> gradientSync(GradientSync sync) {
        this.sync = Objects.requireNonNull(sync, "sync");
        return this;
    }

    /**
     * Data-parallel training as rank {@code rank} of {@code worldSize} processes: this rank trains on its
     * {@link Data#shard shard} of each global batch, its gradients (and losses) pass through {@code sync} (a
     * {@link DataParallelSync}), and only rank 0 reports to the listeners, validates and writes checkpoints. Every rank
     * starts from the same state (the same init or checkpoint) and runs the same number of steps.
     */
    public TrainingLoop<B> dataParallel(int rank, int worldSize, GradientSync sync) {
        this.data = data.shard(rank, worldSize);
        this.sync = Objects.requireNonNull(sync, "sync");
        this.primary = rank == 0;
        return this;
    }

    /** Whether this process reports, validates and writes checkpoints (rank 0, or the only process). */
    public boolean primary() {
        return primary;
    }

    /** Trains until the run's total steps, a cancel request, or a non-finite loss. */
    public Outcome run() throws IOException {
        TrainingStep<B> step = new TrainingStep<>(model, optimizer, manager, sync);
        int epoch = st.epoch;
        int startBatch = st.nextBatch;
        while (st.step < totalSteps) {
            Iterator<B> batches = data.epoch(epoch, startBatch);
            boolean any = false;
            List<B> micro;
            while (st.step < totalSteps && !cancelRequested.getAsBoolean() && !(micro = next(batches)).isEmpty()) {
                any = true;
                if (!trainOn(step, epoch, micro)) {
                    return new Outcome(losses, true, false, lastCheckpoint, lastSaved);
                }
            }
            if (st.step < totalSteps && cancelRequested.getAsBoolean()) {
                return new Outcome(losses, false, true, lastCheckpoint, lastSaved);
            }
            if (!any && startBatch == 0) {
                throw new IllegalStateException("epoch " + epoch + " delivered no usable training sample");
            }
            if (st.step < totalSteps) {
                epoch++;
                startBatch = 0;
                st.epoch = epoch;
                st.nextBatch = 0;
            }
        }
        return new Outcome(losses, false, false, lastCheckpoint, lastSaved);
    }

    /** The next optimizer step's micro-batches (empty at the end of the epoch). */
    private List<B> next(Iterator<B> batches) {
        List<B> micro = new ArrayList<>();
        while (micro.size() < s.gradAccum && batches.hasNext()) {
            micro.add(batches.next());
        }
        return micro;
    }

    /** One optimizer step, then its reports, validation and checkpoint; false when a non-finite loss stopped the run. */
    private boolean trainOn(TrainingStep<B> step, int epoch, List<B> micro) throws IOException {
        double lr = schedule.lr(st.step);
        long t0 = System.nanoTime();
        Engine.getInstance().setRandomSeed(Long.hashCode(TrainState.stepSeed(s.seed, st.step)));
        TrainingStep.Result r = step.run(micro, lr, s.maxGradNorm, st.step % Math.max(1, s.logEvery) == 0, s.dropout);
        if (!r.applied()) {
            out.printf("%nstopping: the loss is %s at step %d (lr %.3g); no update was made for it. "
                    + "The last good checkpoint is %s.%n", r.loss(), st.step, lr,
                    lastCheckpoint == null ? "none (none was written yet)" : lastCheckpoint);
            return false;
        }
        int samples = micro.stream().mapToInt(data::samples).sum();
        double seconds = (System.nanoTime() - t0) / 1e9;
        st.consumed(epoch, data.index(micro.get(micro.size() - 1)), samples);
        st.lastLoss = r.loss();
        losses.add(r.loss());
        TrainingListener.Step event = new TrainingListener.Step(st.step, totalSteps, r.loss(), lr, r.gradNorm(),
                samples, seconds, epochProgress(), r.parts());
        st.step++;
        if (!primary) {
            return true;
        }
        for (TrainingListener l : listeners) {
            l.onStep(event);
        }
        if (validator != null && s.evalEvery > 0 && st.step % s.evalEvery == 0 && st.step < totalSteps) {
            validate();
        }
        if (s.checkpointEvery > 0 && st.step % s.checkpointEvery == 0) {
            checkpoint();
        }
        return true;
    }

    /** Fractional epoch of the current data position. */
    public double epochProgress() {
        return st.epoch + (double) st.nextBatch / Math.max(1, data.batchesPerEpoch());
    }

    /**
     * Runs the validator, reports it, and keeps the model as {@code best} when it is the best so far.
     *
     * @throws IllegalStateException without a validator
     */
    public Evaluator.Result validate() throws IOException {
        if (validator == null) {
            throw new IllegalStateException("this loop has no validator");
        }
        Evaluator.Result ev = validator.validate();
        TrainingListener.Validation event = new TrainingListener.Validation(st.step, epochProgress(), ev);
        for (TrainingListener l : listeners) {
            l.onValidation(event);
        }
        if (st.bestValAccuracy == null || ev.accuracy() > st.bestValAccuracy) {
            st.bestValAccuracy = ev.accuracy();
            st.bestStep = st.step;
            checkpointed(new TrainingListener.Checkpoint(st.step, store.saveBest(weights, config, optimizer, st), true));
        }
        return ev;
    }

    /**
     * Saves the current step as the latest checkpoint, unless it already is; returns the latest (null if none). Only
     * the primary process writes; the others return the checkpoint they started from.
     */
    public Path checkpoint() throws IOException {
        if (primary && lastSaved != st.step) {
            lastCheckpoint = store.save(weights, config, optimizer, st);
            lastSaved = st.step;
            checkpointed(new TrainingListener.Checkpoint(lastSaved, lastCheckpoint, false));
        }
        return lastCheckpoint;
    }

    private void checkpointed(TrainingListener.Checkpoint event) throws IOException {
        for (TrainingListener l : listeners) {
            l.onCheckpoint(event);
        }
    }
}
