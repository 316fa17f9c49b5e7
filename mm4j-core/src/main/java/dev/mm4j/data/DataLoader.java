package dev.mm4j.data;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns samples into {@link Batch}es the way the tutorial's {@code DataLoader} does (file order, fixed padding
 * to 512), with worker threads for decode / resize / tokenize.
 *
 * <p><b>Order.</b> Each epoch has an order of sample positions: file order, or, with {@code shuffle}, a
 * permutation drawn from {@code Random(seed, epoch)} (the same for a given seed and epoch, whatever the
 * threads do). Batch {@code k} holds the usable records among positions {@code [k*B, (k+1)*B)}; a skipped
 * record makes its batch smaller instead of shifting later batches, so {@code startBatch} resumes exactly
 * without decoding what came before. A batch whose records were all skipped is not emitted.
 *
 * <p><b>Bad records</b> (missing/unreadable/undecodable image, an image over the transform's pixel limit, empty
 * question, no answers when {@code requireAnswers}) are skipped with one warning each, counted, and summarised at the end of the
 * epoch. If no record of an epoch is usable, or an epoch read from its start has no records at all (an empty
 * split), iteration fails with an {@link IllegalStateException} explaining why. Worker failures are rethrown on
 * the consumer thread; nothing blocks forever. Questions longer than the tokenizer's maximum length are truncated
 * (as the tutorial's tokenizer does) and counted: one warning per epoch says how many.
 *
 * <p>{@link #iterator()} runs epoch 0, then 1, ... on successive calls; {@link #epoch(int, int)} picks one.
 * Not for concurrent iteration by several consumers.
 */
public final class DataLoader implements Iterable<Batch>, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DataLoader.class);
    /** Give up early when this many records in a row from the start of an epoch are all unusable. */
    static final int ALL_BAD_EARLY_LIMIT = 1000;

    private final List<VqaSample> list; // null while streaming an Iterable
    private final Iterable<VqaSample> iterable;
    private final ImageTransform transform;
    private final QuestionTokenizer tokenizer;
    private final AnswerVocab vocab;
    private final int batchSize;
    private final Padding padding;
    private final int workers;
    private final int prefetch;
    private final boolean shuffle;
    private final long seed;
    private final boolean dropLast;
    private final boolean requireAnswers;
    private final boolean failWhenNothingUsable;
    private final ExecutorService pool;
    private final Set<String> warned = ConcurrentHashMap.newKeySet();
    private final Stats stats = new Stats();
    private int nextEpoch;
    private volatile int lastEpochSkipped;
    private volatile int lastEpochTruncated;
    private volatile Map<String, Integer> lastEpochReasons = Map.of();

    private DataLoader(Builder b) {
        this.list = b.list;
        this.iterable = b.iterable;
        this.transform = Objects.requireNonNull(b.transform, "transform");
        this.tokenizer = Objects.requireNonNull(b.tokenizer, "tokenizer");
        this.vocab = b.vocab;
        if (b.batchSize < 1 || b.workers < 1 || b.prefetch < 1) {
            throw new IllegalArgumentException("batchSize, workers and prefetch must be >= 1 (got " + b.batchSize
                    + ", " + b.workers + ", " + b.prefetch + ")");
        }
        if (b.requireAnswers && vocab == null) {
            throw new IllegalArgumentException("requireAnswers needs an answer vocab for the labels");
        }
        this.batchSize = b.batchSize;
        this.padding = b.padding;
        this.workers = b.workers;
        this.prefetch = b.prefetch;
        this.shuffle = b.shuffle;
        this.seed = b.seed;
        this.dropLast = b.dropLast;
        this.requireAnswers = b.requireAnswers;
        this.failWhenNothingUsable = b.failWhenNothingUsable;
        AtomicInteger n = new AtomicInteger();
        this.pool = Executors.newFixedThreadPool(workers, r -> {
            Thread t = new Thread(r, "mm4j-loader-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    public static Builder builder(List<VqaSample> samples) {
        return new Builder(List.copyOf(samples), null);
    }

    /** A streaming source (e.g. a large parquet reader); materialised only when {@code shuffle} is on. */
    public static Builder builder(Iterable<VqaSample> samples) {
        if (samples instanceof List<VqaSample> l) {
            return builder(l);
        }
        return new Builder(null, Objects.requireNonNull(samples, "samples"));
    }

    /** Batches per epoch, or -1 if unknown (streaming source not yet materialised). */
    public int batchesPerEpoch() {
        List<VqaSample> l = list();
        if (l == null) {
            return -1;
        }
        return dropLast ? l.size() / batchSize : (l.size() + batchSize - 1) / batchSize;
    }

    public int batchSize() {
        return batchSize;
    }

    /** Records skipped in the last finished (or current) epoch. */
    public int skipped() {
        return lastEpochSkipped;
    }

    /** Questions of the last finished epoch that were longer than the tokenizer's maximum length (and cut). */
    public int truncated() {
        return lastEpochTruncated;
    }

    /** Per-reason skip counts of the last finished epoch. */
    public Map<String, Integer> skippedByReason() {
        return lastEpochReasons;
    }

    /** Cumulative per-stage timings across all epochs. */
    public Stats stats() {
        return stats;
    }

    private List<VqaSample> materialised;

    private synchronized List<VqaSample> list() {
        if (list != null) {
            return list;
        }
        if (shuffle && materialised == null) {
            List<VqaSample> all = new ArrayList<>();
            iterable.forEach(all::add);
            materialised = Collections.unmodifiableList(all);
            LOG.info("read {} samples into memory to shuffle them", all.size());
        }
        return materialised;
    }

    /** Epochs 0, 1, 2, ... on successive calls, each from its first batch. */
    @Override
    public Iterator<Batch> iterator() {
        return epoch(nextEpoch++, 0);
    }

    /** One epoch, starting at batch {@code startBatch} (0 = from the beginning). */
    public Iterator<Batch> epoch(int epoch, int startBatch) {
        if (startBatch < 0) {
            throw new IllegalArgumentException("startBatch must be >= 0, got " + startBatch);
        }
        nextEpoch = Math.max(nextEpoch, epoch + 1);
        List<VqaSample> l = list();
        Iterator<VqaSample> source;
        long skipPositions = (long) startBatch * batchSize;
        if (l != null) {
            int[] order = order(l.size(), epoch);
            source = new Iterator<>() {
                int p = (int) Math.min(skipPositions, order.length);

                @Override
                public boolean hasNext() {
                    return p < order.length;
                }

                @Override
                public VqaSample next() {
                    return l.get(order[p++]);
                }
            };
        } else {
            source = iterable.iterator();
            for (long i = 0; i < skipPositions && source.hasNext(); i++) {
                source.next();
            }
        }
        return new EpochIterator(source, epoch, startBatch);
    }

    /** The epoch's order of positions: identity, or a seeded Fisher-Yates shuffle. */
    int[] order(int n, int epoch) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        if (shuffle) {
            Random rnd = new Random(seed * 0x9E3779B97F4A7C15L + epoch);
            for (int i = n - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        return order;
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }

    /** One processed sample, or the reason it was skipped. */
    private record Item(VqaSample sample, float[] image, long[] ids, long label, String reasonKind, String reason,
            int untruncatedTokens) {}

    private Item process(VqaSample s) {
        String q = s.question();
        if (q == null || q.isBlank()) {
            return bad(s, "empty question", "the question is empty");
        }
        if (requireAnswers && (s.answers() == null || s.answers().isEmpty())) {
            return bad(s, "no answers", "no answers (required for training)");
        }
        if (s.image() == null) {
            return bad(s, "no image", "no image");
        }
        long t0 = System.nanoTime();
        byte[] bytes;
        try {
            bytes = s.image().readBytes();
        } catch (NoSuchFileException e) {
            return bad(s, "image file missing", "image file missing: " + s.image().describe());
        } catch (IOException | RuntimeException e) {
            return bad(s, "image unreadable", "cannot read image " + s.image().describe() + ": " + e);
        }
        long t1 = System.nanoTime();
        float[] img;
        long t2;
        try {
            java.awt.image.BufferedImage bi = transform.decodeImage(bytes, s.image().describe());
            t2 = System.nanoTime();
            img = transform.apply(bi);
        } catch (ImageTransform.ImageTooLargeException e) {
            return bad(s, "image too large", e.getMessage());
        } catch (IOException | RuntimeException e) {
            return bad(s, "image undecodable", e.getMessage());
        }
        long t3 = System.nanoTime();
        QuestionTokenizer.Encoded tokens = tokenizer.encoded(q);
        long[] ids = tokens.ids();
        long t4 = System.nanoTime();
        long label = vocab == null ? 0 : Labels.label(s.answers(), vocab);
        stats.read.add(t1 - t0);
        stats.decode.add(t2 - t1);
        stats.resize.add(t3 - t2);
        stats.tokenize.add(t4 - t3);
        stats.samples.increment();
        return new Item(s, img, ids, label, null, null, tokens.untruncatedLength());
    }

    private Item bad(VqaSample s, String kind, String reason) {
        // a cancelled task (consumer gave up, loader closed) fails on the interrupt: not the record's fault
        if (!Thread.currentThread().isInterrupted() && warned.add(s.describe() + "\u0000" + kind)) {
            LOG.warn("skipping {}: {}", s.describe(), reason);
        }
        return new Item(s, null, null, 0, kind, reason, 0);
    }

    private final class EpochIterator implements Iterator<Batch> {
        private final Iterator<VqaSample> source;
        private final int epoch;
        private final int startBatch;
        private final ArrayDeque<List<Future<Item>>> inFlight = new ArrayDeque<>();
        private int nextBatchIndex; // index of the next batch to submit
        private int nextEmitIndex; // index of the batch at the head of inFlight
        private Batch ready;
        private boolean finished;
        private int seen;
        private int good;
        private int skippedCount;
        private int truncated;
        private int longest;
        private final Map<String, Integer> reasons = new TreeMap<>();
        private String firstReason;

        EpochIterator(Iterator<VqaSample> source, int epoch, int startBatch) {
            this.source = source;
            this.epoch = epoch;
            this.startBatch = startBatch;
            this.nextBatchIndex = startBatch;
            this.nextEmitIndex = startBatch;
            fill();
        }

        /** Keep up to {@code prefetch} batches submitted. */
        private void fill() {
            while (inFlight.size() < prefetch && source.hasNext()) {
                List<VqaSample> chunk = new ArrayList<>(batchSize);
                while (chunk.size() < batchSize && source.hasNext()) {
                    chunk.add(source.next());
                }
                if (chunk.size() < batchSize && dropLast) {
                    break;
                }
                List<Future<Item>> futures = new ArrayList<>(chunk.size());
                for (VqaSample s : chunk) {
                    futures.add(pool.submit(() -> process(s)));
                }
                inFlight.add(futures);
                nextBatchIndex++;
            }
        }

        @Override
        public boolean hasNext() {
            while (ready == null && !finished) {
                List<Future<Item>> head = inFlight.poll();
                if (head == null) {
                    finish();
                    break;
                }
                int index = nextEmitIndex++;
                List<Item> items = new ArrayList<>(head.size());
                try {
                    for (Future<Item> f : head) {
                        items.add(f.get());
                    }
                } catch (InterruptedException e) {
                    cancelAll(head);
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while loading batch " + index + " of epoch " + epoch, e);
                } catch (ExecutionException e) {
                    cancelAll(head);
                    throw new IllegalStateException("loader worker failed on batch " + index + " of epoch " + epoch
                            + ": " + e.getCause(), e.getCause());
                }
                fill();
                List<Item> usable = new ArrayList<>(items.size());
                for (Item it : items) {
                    seen++;
                    if (it.reasonKind() == null) {
                        usable.add(it);
                        good++;
                        if (it.untruncatedTokens() > it.ids().length) {
                            truncated++;
                            longest = Math.max(longest, it.untruncatedTokens());
                        }
                    } else {
                        skippedCount++;
                        reasons.merge(it.reasonKind(), 1, Integer::sum);
                        if (firstReason == null) {
                            firstReason = it.sample().describe() + ": " + it.reason();
                        }
                    }
                }
                lastEpochSkipped = skippedCount;
                if (failWhenNothingUsable && good == 0 && seen >= ALL_BAD_EARLY_LIMIT) {
                    cancelAll(null);
                    throw nothingUsable();
                }
                if (!usable.isEmpty()) {
                    ready = collate(usable, index);
                }
            }
            return ready != null;
        }

        private void cancelAll(List<Future<Item>> head) {
            if (head != null) {
                head.forEach(f -> f.cancel(true));
            }
            for (List<Future<Item>> fs : inFlight) {
                fs.forEach(f -> f.cancel(true));
            }
            inFlight.clear();
            finished = true;
        }

        private IllegalStateException nothingUsable() {
            lastEpochSkipped = skippedCount;
            lastEpochReasons = Collections.unmodifiableMap(new TreeMap<>(reasons));
            return new IllegalStateException("none of the " + seen + " records of epoch " + epoch
                    + " could be used (skipped: " + reasons + "); first problem: " + firstReason
                    + (iterable instanceof VqaDataset ds ? "; dataset: " + ds.describe() : ""));
        }

        private void finish() {
            finished = true;
            lastEpochSkipped = skippedCount;
            lastEpochReasons = Collections.unmodifiableMap(new TreeMap<>(reasons));
            if (failWhenNothingUsable && seen == 0 && startBatch == 0) {
                throw new IllegalStateException("no records to load: " + (iterable instanceof VqaDataset ds
                        ? ds.describe() + " is empty" : "the sample list is empty"));
            }
            if (failWhenNothingUsable && seen > 0 && good == 0) {
                throw nothingUsable();
            }
            lastEpochTruncated = truncated;
            if (truncated > 0) {
                LOG.warn("epoch {}: {} of {} questions were longer than the maximum length of {} tokens and were "
                        + "truncated (the longest had {}); raise max_length to keep them whole", epoch, truncated, good,
                        tokenizer.maxLength(), longest);
            }
            if (skippedCount > 0) {
                LOG.warn("epoch {}: skipped {} of {} records ({})", epoch, skippedCount, seen, reasons);
            } else {
                LOG.debug("epoch {}: {} records, none skipped", epoch, seen);
            }
        }

        @Override
        public Batch next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            Batch b = ready;
            ready = null;
            return b;
        }

        private Batch collate(List<Item> items, int index) {
            int n = items.size();
            int plane = transform.outputLength();
            float[] images = new float[n * plane];
            int seqLen;
            if (padding == Padding.FIXED) {
                seqLen = tokenizer.maxLength();
            } else {
                seqLen = 0;
                for (Item it : items) {
                    seqLen = Math.max(seqLen, it.ids().length);
                }
            }
            long[] ids = new long[n * seqLen]; // zeros = [PAD]
            long[] labels = new long[n];
            List<VqaSample> samples = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Item it = items.get(i);
                System.arraycopy(it.image(), 0, images, i * plane, plane);
                System.arraycopy(it.ids(), 0, ids, i * seqLen, Math.min(seqLen, it.ids().length));
                labels[i] = it.label();
                samples.add(it.sample());
            }
            return new Batch(images, ids, seqLen, labels, Collections.unmodifiableList(samples), transform.height(),
                    transform.width(), epoch, index);
        }
    }

    /** Cumulative wall time per stage, summed over worker threads. */
    public static final class Stats {
        final LongAdder read = new LongAdder();
        final LongAdder decode = new LongAdder();
        final LongAdder resize = new LongAdder();
        final LongAdder tokenize = new LongAdder();
        final LongAdder samples = new LongAdder();

        public long samples() {
            return samples.sum();
        }

        private double perSample(LongAdder a) {
            long n = samples.sum();
            return n == 0 ? 0 : a.sum() / 1e6 / n;
        }

        public double readMsPerSample() {
            return perSample(read);
        }

        public double decodeMsPerSample() {
            return perSample(decode);
        }

        /** ToTensor + resize. */
        public double resizeMsPerSample() {
            return perSample(resize);
        }

        public double tokenizeMsPerSample() {
            return perSample(tokenize);
        }

        @Override
        public String toString() {
            return String.format("%d samples; ms/sample: read %.2f, decode %.2f, to-tensor+resize %.2f, tokenize %.3f",
                    samples(), readMsPerSample(), decodeMsPerSample(), resizeMsPerSample(), tokenizeMsPerSample());
        }
    }

    /** Settings; defaults are the tutorial's (file order, FIXED padding, batch size 32 is the caller's choice). */
    public static final class Builder {
        private final List<VqaSample> list;
        private final Iterable<VqaSample> iterable;
        private ImageTransform transform = new ImageTransform();
        private QuestionTokenizer tokenizer;
        private AnswerVocab vocab;
        private int batchSize = 32;
        private Padding padding = Padding.FIXED;
        private int workers = 2;
        private int prefetch = 4;
        private boolean shuffle;
        private long seed;
        private boolean dropLast;
        private boolean requireAnswers;
        private boolean failWhenNothingUsable = true;

        private Builder(List<VqaSample> list, Iterable<VqaSample> iterable) {
            this.list = list;
            this.iterable = iterable;
        }

        public Builder transform(ImageTransform t) {
            this.transform = t;
            return this;
        }

        public Builder tokenizer(QuestionTokenizer t) {
            this.tokenizer = t;
            return this;
        }

        /** Needed for labels; without it every label is 0. */
        public Builder vocab(AnswerVocab v) {
            this.vocab = v;
            return this;
        }

        public Builder batchSize(int n) {
            this.batchSize = n;
            return this;
        }

        public Builder padding(Padding p) {
            this.padding = Objects.requireNonNull(p);
            return this;
        }

        public Builder workers(int n) {
            this.workers = n;
            return this;
        }

        /** Batches decoded ahead of the consumer (the bound on memory). */
        public Builder prefetch(int n) {
            this.prefetch = n;
            return this;
        }

        public Builder shuffle(boolean on, long seed) {
            this.shuffle = on;
            this.seed = seed;
            return this;
        }

        public Builder dropLast(boolean on) {
            this.dropLast = on;
            return this;
        }

        /** Training splits: records without answers are skipped. */
        public Builder requireAnswers(boolean on) {
            this.requireAnswers = on;
            return this;
        }

        /**
         * Whether an epoch in which no record is usable fails (default true: a whole split of bad records is
         * a mistake). Off for a slice of a larger split (a Spark partition), where it only means "all skipped".
         */
        public Builder failWhenNothingUsable(boolean on) {
            this.failWhenNothingUsable = on;
            return this;
        }

        public DataLoader build() {
            return new DataLoader(this);
        }
    }
}
