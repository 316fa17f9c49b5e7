package dev.mm4j.serve;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dynamic batching, for every route that runs a model: inputs wait in a queue; one worker takes the first, gathers
 * what arrives within {@code maxWaitMs} (at most {@code maxBatch}) and runs them in one pass (a function from the
 * batch's inputs to their outputs, in order). At most {@code maxQueue} inputs wait (queued or gathered, not yet in a
 * pass); beyond that new ones are refused at once (the caller answers 503). Inputs whose caller gave up are skipped.
 *
 * @param <I> what a request queues (a question, a text's ids, an image's pixels)
 * @param <O> what it gets back
 */
final class Batcher<I, O> implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Batcher.class);

    private record Job<I, O>(I input, CompletableFuture<O> future) {}

    private final String name;
    private final Function<List<I>, List<O>> pass;
    private final int maxBatch;
    private final long maxWaitNanos;
    private final BlockingQueue<Job<I, O>> queue = new LinkedBlockingQueue<>();
    private final int maxQueue;
    private final AtomicInteger waiting = new AtomicInteger();
    private final IntConsumer batchSizes;
    private final Thread worker;
    private volatile boolean accepting = true;

    /**
     * @param name the worker thread's name and what the log calls a failed pass
     * @param pass runs a batch: one output per input, in order
     * @param batchSizes told each pass's size
     */
    Batcher(String name, Function<List<I>, List<O>> pass, int maxBatch, long maxWaitMs, int maxQueue,
            IntConsumer batchSizes) {
        if (maxBatch < 1 || maxQueue < 1 || maxWaitMs < 0) {
            throw new IllegalArgumentException("max batch and max queue must be >= 1 and max wait >= 0");
        }
        this.name = name;
        this.pass = pass;
        this.maxBatch = maxBatch;
        this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(maxWaitMs);
        this.maxQueue = maxQueue;
        this.batchSizes = batchSizes;
        this.worker = new Thread(this::run, name);
        this.worker.setDaemon(true);
        this.worker.start();
    }

    /** Queues an input; the future completes with its output. @throws RejectedExecutionException when full or closing */
    CompletableFuture<O> submit(I input) {
        if (!accepting) {
            throw new RejectedExecutionException("shutting down");
        }
        int before = waiting.getAndUpdate(n -> n < maxQueue ? n + 1 : n);
        if (before >= maxQueue) {
            throw new RejectedExecutionException("queue full (" + before + " waiting)");
        }
        Job<I, O> job = new Job<>(input, new CompletableFuture<>());
        queue.add(job);
        return job.future;
    }

    /** Inputs waiting now (queued or gathered into a batch not yet started). */
    int depth() {
        return waiting.get();
    }

    private void run() {
        while (accepting || !queue.isEmpty()) {
            List<Job<I, O>> batch = new ArrayList<>(maxBatch);
            try {
                Job<I, O> first = queue.poll(100, TimeUnit.MILLISECONDS);
                if (first == null) {
                    continue;
                }
                batch.add(first);
                long deadline = System.nanoTime() + maxWaitNanos;
                while (batch.size() < maxBatch) {
                    long left = deadline - System.nanoTime();
                    Job<I, O> next = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
                    if (next == null) {
                        break;
                    }
                    batch.add(next);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                waiting.addAndGet(-batch.size());
                batch.forEach(j -> j.future.completeExceptionally(e));
                return;
            }
            waiting.addAndGet(-batch.size());
            batch.removeIf(j -> j.future.isDone()); // timed out while waiting
            if (batch.isEmpty()) {
                continue;
            }
            try {
                List<O> outputs = pass.apply(batch.stream().map(Job::input).toList());
                batchSizes.accept(batch.size());
                for (int i = 0; i < batch.size(); i++) {
                    batch.get(i).future.complete(outputs.get(i));
                }
            } catch (RuntimeException | Error e) {
                log.error("{}: a batch of {} failed", name, batch.size(), e);
                batch.forEach(j -> j.future.completeExceptionally(e));
            }
        }
    }

    /** Stops accepting, runs what is queued, then stops the worker. */
    @Override
    public void close() {
        accepting = false;
        try {
            worker.join(TimeUnit.MINUTES.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
