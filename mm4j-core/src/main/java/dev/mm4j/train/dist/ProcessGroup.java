package dev.mm4j.train.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import java.time.Duration;
import java.util.List;

/**
 * The ranks of one data-parallel run, joined through libtorch's c10d (a {@code TCPStore} served by rank 0 and a
 * {@code ProcessGroupGloo}: the engine PyTorch DDP uses on CPU) inside DJL's own libtorch. Collectives work in place
 * on DJL arrays. A peer that dies or stops answering makes every collective fail within the rendezvous timeout.
 * Close it once; not thread-safe.
 */
public final class ProcessGroup implements AutoCloseable {
    private final Rendezvous rendezvous;
    private long group;

    private ProcessGroup(Rendezvous rendezvous, long group) {
        this.rendezvous = rendezvous;
        this.group = group;
    }

    /** Joins the group: blocks until every rank has arrived (or fails after the timeout). */
    public static ProcessGroup open(Rendezvous r) {
        C10d.load();
        long g;
        try {
            g = C10d.openGroup(r.masterAddr(), r.masterPort(), r.selfAddr(), r.rank(), r.worldSize(),
                    r.timeout().toMillis(), r.threads());
        } catch (IllegalStateException e) {
            throw new IllegalStateException(where(r) + "cannot join the process group at " + r.masterAddr() + ":"
                    + r.masterPort() + " within " + seconds(r.timeout()) + ": " + e.getMessage(), e);
        }
        return new ProcessGroup(r, g);
    }

    public int rank() {
        return rendezvous.rank();
    }

    public int worldSize() {
        return rendezvous.worldSize();
    }

    public Duration timeout() {
        return rendezvous.timeout();
    }

    /** Sums each array over all ranks, in place (each array on its own; every rank passes the same shapes in order). */
    public void allReduceSum(List<NDArray> arrays) {
        try (Pending p = startAllReduceSum(arrays)) {
            p.await();
        }
    }

    /**
     * Starts an in-place sum of each array over all ranks (Gloo's threads do the work): the arrays must stay alive and
     * untouched until {@link Pending#await} (or close) returns.
     */
    public Pending startAllReduceSum(List<NDArray> arrays) {
        long g = handle();
        long[] works = new long[arrays.size()];
        int started = 0;
        try {
            for (NDArray a : arrays) {
                works[started] = C10d.startAllReduceSum(g, new long[] {((PtNDArray) a).getHandle()});
                started++;
            }
        } catch (RuntimeException e) {
            Pending partial = new Pending(works, started);
            try {
                partial.close();
            } catch (RuntimeException ignored) {
                // the first failure is the one reported
            }
            throw failure(e);
        }
        return new Pending(works, started);
    }

    /** Started collectives: {@link #await} waits for all and frees them; close does the same if await was not called. */
    public final class Pending implements AutoCloseable {
        private final long[] works;
        private final int count;
        private boolean done;

        private Pending(long[] works, int count) {
            this.works = works;
            this.count = count;
        }

        /** Waits for every started collective (each is freed, also when one failed); rethrows the first failure. */
        public void await() {
            if (done) {
                return;
            }
            done = true;
            RuntimeException first = null;
            for (int i = 0; i < count; i++) {
                try {
                    C10d.awaitWork(works[i]);
                } catch (RuntimeException e) {
                    if (first == null) {
                        first = e;
                    }
                }
            }
            if (first != null) {
                throw failure(first);
            }
        }

        @Override
        public void close() {
            await();
        }
    }

    private RuntimeException failure(RuntimeException e) {
        return new IllegalStateException(where(rendezvous) + "all-reduce failed (a rank died, or did not answer within "
                + seconds(rendezvous.timeout()) + "): " + e.getMessage(), e);
    }

    private long handle() {
        if (group == 0) {
            throw new IllegalStateException("the process group is closed");
        }
        return group;
    }

    private static String where(Rendezvous r) {
        return "rank " + r.rank() + " of " + r.worldSize() + ": ";
    }

    private static String seconds(Duration d) {
        return d.toMillis() / 1000.0 + " s";
    }

    /** Leaves the group and frees its native objects (once). */
    @Override
    public void close() {
        if (group != 0) {
            long g = group;
            group = 0;
            C10d.closeGroup(g);
        }
    }
}
