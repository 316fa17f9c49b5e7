package dev.mm4j.serve;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dynamic batching of embeddings for {@code /v1/embed} and {@code /v1/search}, as {@link Batcher} does for answers:
 * texts (already tokenized) and images (already decoded) wait in one queue; one worker gathers what arrives within
 * {@code maxWaitMs} (at most {@code maxBatch}) and embeds the texts in one forward pass and the images in another. At
 * most {@code maxQueue} inputs wait; beyond that new ones are refused at once (the caller answers 503). Inputs whose
 * caller gave up are skipped.
 */
final class EmbedBatcher implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbedBatcher.class);

    /** A text's ids or an image's pixels (one of them). */
    private record Job(long[] ids, float[] pixels, CompletableFuture<float[]> future) {}

    private final ImageSearch search;
    private final int maxBatch;
    private final long maxWaitNanos;
    private final BlockingQueue<Job> queue = new LinkedBlockingQueue<>();
    private final int maxQueue;
    private final AtomicInteger waiting = new AtomicInteger();
    private final IntConsumer batchSizes;
    private final Thread worker;
    private volatile boolean accepting = true;

    EmbedBatcher(ImageSearch search, int maxBatch, long maxWaitMs, int maxQueue, IntConsumer batchSizes) {
        if (maxBatch < 1 || maxQueue < 1 || maxWaitMs < 0) {
            throw new IllegalArgumentException("max batch and max queue must be >= 1 and max wait >= 0");
        }
        this.search = search;
        this.maxBatch = maxBatch;
        this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(maxWaitMs);
        this.maxQueue = maxQueue;
        this.batchSizes = batchSizes;
        this.worker = new Thread(this::run, "mm4j-embed-batcher");
        this.worker.setDaemon(true);
        this.worker.start();
    }

    /** Queues a text's ids ({@link ImageSearch#textIds}). @throws RejectedExecutionException when full or closing */
    CompletableFuture<float[]> text(long[] ids) {
        return submit(new Job(ids, null, new CompletableFuture<>()));
    }

    /** Queues an image's pixels ({@link ImageSearch#pixels}). @throws RejectedExecutionException when full or closing */
    CompletableFuture<float[]> image(float[] pixels) {
        return submit(new Job(null, pixels, new CompletableFuture<>()));
    }

    private CompletableFuture<float[]> submit(Job job) {
        if (!accepting) {
            throw new RejectedExecutionException("shutting down");
        }
        int before = waiting.getAndUpdate(n -> n < maxQueue ? n + 1 : n);
        if (before >= maxQueue) {
            throw new RejectedExecutionException("queue full (" + before + " waiting)");
        }
        queue.add(job);
        return job.future;
    }

    /** Inputs waiting now (queued or gathered into a batch not yet started). */
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
            List<Job> texts = batch.stream().filter(j -> j.ids != null).toList();
            List<Job> images = batch.stream().filter(j -> j.pixels != null).toList();
            try {
                if (!texts.isEmpty()) {
                    complete(texts, search.embedTexts(texts.stream().map(Job::ids).toList()));
                }
                if (!images.isEmpty()) {
                    complete(images, search.embedPixels(images.stream().map(Job::pixels).toList()));
                }
                batchSizes.accept(batch.size());
            } catch (RuntimeException | Error e) {
                log.error("embedding a batch of {} failed", batch.size(), e);
                batch.forEach(j -> j.future.completeExceptionally(e));
            }
        }
    }

    private static void complete(List<Job> jobs, float[][] vectors) {
        for (int i = 0; i < jobs.size(); i++) {
            jobs.get(i).future.complete(vectors[i]);
        }
    }

    /** Stops accepting, embeds what is queued, then stops the worker. */
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
