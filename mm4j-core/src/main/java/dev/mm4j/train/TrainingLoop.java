package dev.mm4j.train;

import ai.djl.engine.Engine;
import dev.mm4j.data.Batch;
import dev.mm4j.eval.Evaluator;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * The training loop of a run: epochs of batches, one {@link TrainingStep} per optimizer step (seeded
 * from (seed, step) so a resumed run repeats the uninterrupted one), periodic validation (keeping the best
 * checkpoint) and checkpoints. Everything it reports goes to its {@link TrainingListener}s. A cancel request is
 * honoured at the next step boundary: the loop returns with the data position of the last applied step.
 */
final class TrainingLoop {

    /** How the loop ended. */
    record Outcome(List<Double> losses, boolean stoppedOnNonFinite, boolean cancelled, Path lastCheckpoint,
            long lastSavedStep) {}

    private final RunSetup run;
    private final List<TrainingListener> listeners;
    private final PrintStream out;
    private final BooleanSupplier cancelRequested;
    private final TrainingStep step;
    private final List<Double> losses = new ArrayList<>();
    private Path lastCheckpoint;
    private long lastSaved;

    TrainingLoop(RunSetup run, List<TrainingListener> listeners, PrintStream out, BooleanSupplier cancelRequested) {
        this.run = run;
        this.listeners = listeners;
        this.out = out;
        this.cancelRequested = cancelRequested;
        this.step = new TrainingStep(run.model, run.optimizer, run.manager);
        this.lastCheckpoint = run.resumedFrom;
        this.lastSaved = run.resumedFrom != null ? run.state.step : -1;
    }

    Outcome run() throws IOException {
        TrainState st = run.state;
        int epoch = st.epoch;
        int startBatch = st.nextBatch;
        while (st.step < run.totalSteps) {
            Iterator<Batch> batches = run.trainLoader.epoch(epoch, startBatch);
            boolean any = false;
            List<Batch> micro;
            while (st.step < run.totalSteps && !cancelRequested.getAsBoolean() && !(micro = next(batches)).isEmpty()) {
                any = true;
                if (!trainOn(micro)) {
                    return new Outcome(losses, true, false, lastCheckpoint, lastSaved);
                }
            }
            if (st.step < run.totalSteps && cancelRequested.getAsBoolean()) {
                return new Outcome(losses, false, true, lastCheckpoint, lastSaved);
            }
            if (!any && startBatch == 0) {
                throw new IllegalStateException("epoch " + epoch + " delivered no usable training sample");
            }
            if (st.step < run.totalSteps) {
                epoch++;
                startBatch = 0;
                st.epoch = epoch;
                st.nextBatch = 0;
            }
        }
        return new Outcome(losses, false, false, lastCheckpoint, lastSaved);
    }

    /** The next optimizer step's micro-batches (empty at the end of the epoch). */
    private List<Batch> next(Iterator<Batch> batches) {
        List<Batch> micro = new ArrayList<>();
        while (micro.size() < run.s.gradAccum && batches.hasNext()) {
            micro.add(batches.next());
        }
        return micro;
    }

    /** One optimizer step, then its reports, validation and checkpoint; false when a non-finite loss stopped the run. */
    private boolean trainOn(List<Batch> micro) throws IOException {
        FinetuneSettings s = run.s;
        TrainState st = run.state;
        double lr = run.schedule.lr(st.step);
        long t0 = System.nanoTime();
        Engine.getInstance().setRandomSeed(Long.hashCode(TrainState.stepSeed(s.seed, st.step)));
        TrainingStep.Result r = step.run(micro, lr, s.maxGradNorm, st.step % Math.max(1, s.logEvery) == 0, s.dropout);
        if (!r.applied()) {
            out.printf("%nstopping: the loss is %s at step %d (lr %.3g); no update was made for it. "
                    + "The last good checkpoint is %s.%n", r.loss(), st.step, lr,
                    lastCheckpoint == null ? "none (none was written yet)" : lastCheckpoint);
            return false;
        }
        int samples = micro.stream().mapToInt(Batch::size).sum();
        double seconds = (System.nanoTime() - t0) / 1e9;
        Batch last = micro.get(micro.size() - 1);
        st.consumed(last.epoch(), last.index(), samples);
        st.lastLoss = r.loss();
        losses.add(r.loss());
        TrainingListener.Step event = new TrainingListener.Step(st.step, run.totalSteps, r.loss(), lr, r.gradNorm(),
                samples, seconds, run.epochProgress());
        st.step++;
        for (TrainingListener l : listeners) {
            l.onStep(event);
        }
        if (run.valLoader != null && s.evalEvery > 0 && st.step % s.evalEvery == 0 && st.step < run.totalSteps) {
            validate();
        }
        if (s.checkpointEvery > 0 && st.step % s.checkpointEvery == 0) {
            checkpoint();
        }
        return true;
    }

    /** Scores the validation split, reports it, and keeps the model as {@code best} when it is the best so far. */
    Evaluator.Result validate() throws IOException {
        TrainState st = run.state;
        Evaluator.Result ev = Evaluator.evaluate(run.model, run.valLoader.epoch(0, 0), run.vocab, run.manager, RunOutputs.REPORT_SAMPLES);
        TrainingListener.Validation event = new TrainingListener.Validation(st.step, run.epochProgress(), ev);
        for (TrainingListener l : listeners) {
            l.onValidation(event);
        }
        if (st.bestValAccuracy == null || ev.accuracy() > st.bestValAccuracy) {
            st.bestValAccuracy = ev.accuracy();
            st.bestStep = st.step;
            checkpointed(new TrainingListener.Checkpoint(st.step, run.store.saveBest(run.model, run.optimizer, st), true));
        }
        return ev;
    }

    /** Saves the current step as the latest checkpoint, unless it already is. */
    Path checkpoint() throws IOException {
        if (lastSaved != run.state.step) {
            lastCheckpoint = run.store.save(run.model, run.optimizer, run.state);
            lastSaved = run.state.step;
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
