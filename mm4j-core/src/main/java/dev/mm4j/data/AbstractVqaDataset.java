package dev.mm4j.data;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/** Tracks open iterators (closed with the dataset) and the skipped-record count of the last pass. */
abstract class AbstractVqaDataset implements VqaDataset {
    private final Set<SampleIterator> open = Collections.synchronizedSet(Collections.newSetFromMap(new IdentityHashMap<>()));
    private final AtomicLong lastSkipped = new AtomicLong();
    private final java.util.concurrent.atomic.AtomicInteger passes = new java.util.concurrent.atomic.AtomicInteger();
    private volatile boolean closed;

    /** Opens one pass; implementations call {@link #finished} when the pass reaches its end. */
    protected abstract SampleIterator openPass();

    @Override
    public final SampleIterator iterator() {
        if (closed) {
            throw new IllegalStateException(describe() + " is closed");
        }
        SampleIterator it = openPass();
        open.add(it);
        return it;
    }

    /**
     * True for the first pass only: readers log one warning per skipped record on the first pass and just
     * the count on later ones (epochs), so a training log is not flooded.
     */
    protected final boolean firstPass() {
        return passes.getAndIncrement() == 0;
    }

    /** Called by an iterator when it is closed (after its pass ended or was abandoned). */
    protected final void released(SampleIterator it) {
        open.remove(it);
    }

    /** Records the skipped count of a pass that reached its end. */
    protected final void finished(long skipped) {
        lastSkipped.set(skipped);
    }

    @Override
    public long skippedCount() {
        return lastSkipped.get();
    }

    @Override
    public void close() {
        closed = true;
        SampleIterator[] its;
        synchronized (open) {
            its = open.toArray(new SampleIterator[0]);
        }
        for (SampleIterator it : its) {
            it.close();
        }
    }

    @Override
    public String toString() {
        return describe();
    }
}
