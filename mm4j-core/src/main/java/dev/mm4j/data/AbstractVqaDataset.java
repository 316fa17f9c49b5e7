package dev.mm4j.data;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The base of a {@link VqaDataset} reader (the JSON and manifest readers here, the parquet reader of mm4j-parquet): tracks
 * open iterators (closed with the dataset) and the skipped-record count of the last pass.
 */
public abstract class AbstractVqaDataset implements VqaDataset {
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

    /**
     * A pass that reads candidate records one by one and skips those that cannot be used: each is warned about (on
     * the first pass) and counted; the count and a summary are recorded when the pass reaches its end.
     */
    protected abstract class CheckedPass implements SampleIterator {
        private final boolean detailed = firstPass();
        private final org.slf4j.Logger log;
        private final String unit;
        private VqaSample next;
        private long used;
        private long skipped;
        private boolean done;
        private boolean closed;

        /** @param unit what a skipped record is called in the summary, e.g. "malformed row(s)" */
        protected CheckedPass(org.slf4j.Logger log, String unit) {
            this.log = log;
            this.unit = unit;
        }

        /** The next usable sample, or null at the end; {@link #skip} each unusable record on the way. */
        protected abstract VqaSample readNext() throws java.io.IOException;

        /** Releases what the pass reads from. */
        protected abstract void closeSource() throws java.io.IOException;

        /** Skips a record: {@code where} names it (file and line, or record number), {@code why} the field at fault. */
        protected final void skip(String where, String why) {
            skipped++;
            if (detailed) {
                log.warn("{}: skipped, {}", where, why);
            }
        }

        @Override
        public final boolean hasNext() {
            if (next != null) {
                return true;
            }
            if (done) {
                return false;
            }
            try {
                next = readNext();
            } catch (java.io.IOException e) {
                close();
                String name = describe();
                throw VqaDataset.unchecked(e.getMessage() != null && e.getMessage().contains(name)
                        ? e : new java.io.IOException(name + ": " + e.getMessage(), e));
            }
            if (next != null) {
                used++;
                return true;
            }
            done = true;
            finished(skipped);
            if (skipped > 0) {
                log.warn("{}: skipped {} {} of {}", describe(), skipped, unit, used + skipped);
            }
            close();
            return false;
        }

        /** What the pass reads, for messages. */
        protected abstract String describe();

        @Override
        public final VqaSample next() {
            if (!hasNext()) {
                throw new java.util.NoSuchElementException();
            }
            VqaSample s = next;
            next = null;
            return s;
        }

        @Override
        public final void close() {
            if (closed) {
                return;
            }
            closed = true;
            try {
                closeSource();
            } catch (java.io.IOException e) {
                log.debug("closing {}", describe(), e);
            }
            released(this);
        }
    }

    @Override
    public String toString() {
        return describe();
    }
}
