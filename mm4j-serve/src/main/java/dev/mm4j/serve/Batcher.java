package dev.mm4j.serve;

import dev.mm4j.inference.VqaModel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dynamic batching: queries wait in a queue; one worker takes the first, gathers what arrives within
 * {@code maxWaitMs} (at most {@code maxBatch}) and answers them in one forward pass. At most
 * {@code maxQueue} queries wait (queued or gathered, not yet in a forward pass); beyond that new queries
 * are refused at once (the caller answers 503). Queries whose caller gave up are skipped.
 */
final class Batcher implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Batcher.class);

    private record Job(VqaModel.Query query, int k, CompletableFuture<VqaModel.Result> future) {}

    private final VqaModel model;
    private final int maxBatch;
    private final long maxWaitNanos;
    private final BlockingQueue<Job> queue = new LinkedBlockingQueue<>();
    private final int maxQueue;
    private final AtomicInteger waiting = new AtomicInteger();
    private final IntConsumer batchSizes;
    private final Thread worker;
    private volatile boolean accepting = true;

    Batcher(VqaModel model, int maxBatch, long maxWaitMs, int maxQueue, IntConsumer batchSizes) {
        if (maxBatch < 1 || maxQueue < 1 || maxWaitMs < 0) {
            throw new IllegalArgumentException("max batch and max queue must be >= 1 and max wait >= 0");
        }
        this.model = model;
        this.maxBatch = maxBatch;
        this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(maxWaitMs);
        this.maxQueue = maxQueue;
        this.batchSizes = batchSizes;
        this.worker = new Thread(this::run, "mm4j-batcher");
        this.worker.setDaemon(true);
        this.worker.start();
    }

    /** Queues a query; the future completes with its answers. @throws RejectedExecutionException when full or closing */
    CompletableFuture<VqaModel.Result> submit(VqaModel.Query query, int k) {
        if (!accepting) {
            throw new RejectedExecutionException("shutting down");
        }
        int before = waiting.getAndUpdate(n -> n < maxQueue ? n + 1 : n);
        if (before >= maxQueue) {
            throw new RejectedExecutionException("queue full (" + before + " waiting)");
        }
        Job job = new Job(query, k, new CompletableFuture<>());
        queue.add(job);
        return job.future;
    }

    /** Queries waiting now (queued or gathered into a batch not yet started). */
    int depth() {
        return waiting.get();
    }

    private void run() {
        while (accepting || !queue.isEmpty()) {
            List<Job> batch = new ArrayList<>(maxBatch);
            try {
                Job first = queue.poll(100, TimeUnit.MILLISECONDS);
                if (first == null) {
                    continue;
                }
                batch.add(first);
                long deadline = System.nanoTime() + maxWaitNanos;
                while (batch.size() < maxBatch) {
                    long left = deadline - System.nanoTime();
                    Job next = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
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
            int k = batch.stream().mapToInt(Job::k).max().orElse(1);
            try {
                List<VqaModel.Result> results = model.answer(batch.stream().map(Job::query).toList(), k);
                batchSizes.accept(batch.size());
                for (int i = 0; i < batch.size(); i++) {
                    VqaModel.Result r = results.get(i);
                    int ki = Math.min(batch.get(i).k, r.answers().size());
                    batch.get(i).future.complete(new VqaModel.Result(List.copyOf(r.answers().subList(0, ki)),
                            r.imageCached(), r.batchSize(), r.forwardMs()));
                }
            } catch (RuntimeException | Error e) {
                log.error("forward pass of a batch of {} failed", batch.size(), e);
                batch.forEach(j -> j.future.completeExceptionally(e));
            }
        }
    }

    /** Stops accepting, answers what is queued, then stops the worker. */
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
