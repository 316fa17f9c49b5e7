package dev.mm4j.train;

import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * What the fine-tuners of the tasks with a run of their own share ({@link ClassificationFinetuner},
 * {@code search.RetrievalFinetuner}): their settings and log, resuming, listeners and cancelling. Their {@code run()}
 * works in a {@link TaskRun} ({@link #openRun}).
 *
 * @param <T> the fine-tuner itself, which the setters return
 */
public abstract class TaskFinetuner<T extends TaskFinetuner<T>> {
    /** The run's settings. */
    protected final FinetuneSettings s;
    /** Where the run's lines go. */
    protected final PrintStream out;
    private final List<TrainingListener> listeners = new ArrayList<>();
    private boolean resume;
    private volatile boolean cancelRequested;

    protected TaskFinetuner(FinetuneSettings settings, PrintStream out) {
        this.s = settings;
        this.out = out;
    }

    /** Continue the run in the output folder from its latest checkpoint (default: a new run, which refuses a used folder). */
    public T resume(boolean resume) {
        this.resume = resume;
        return self();
    }

    /** Receive step and checkpoint events (see {@link TrainingListener}). */
    public T listener(TrainingListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
        return self();
    }

    /**
     * Asks the run to stop; safe from any thread. The run finishes the step in progress, writes a checkpoint and
     * returns with {@link Finetuner.Status#CANCELLED}; {@link #resume(boolean) resume} continues it.
     */
    public void cancel() {
        cancelRequested = true;
    }

    /** Whether the run should stop at the next step boundary (asked before every step). */
    protected boolean cancelRequested() {
        return cancelRequested;
    }

    /** Opens this fine-tuner's run ({@link TaskRun#open}): its output folder, with its resume, listeners and cancel. */
    protected final TaskRun openRun() throws IOException {
        return TaskRun.open(s, resume, out, listeners, this::cancelRequested);
    }

    @SuppressWarnings("unchecked")
    private T self() {
        return (T) this;
    }
}
