package dev.mm4j.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * FLAVA pretraining batches over a mix of sources, as TorchMultimodal's {@code MultiDataModule} /
 * {@code MultiDataLoader}: before each batch one source is drawn (by the per-source sampling ratios; the
 * reference's default is uniform, {@code random.choice}) and the whole batch comes from it; a source that runs out
 * starts its next epoch (the reference re-creates the exhausted loader), so the stream never ends.
 *
 * <p><b>Order and resume.</b> Everything is a function of {@code (seed, step)}: the source of step {@code s} is
 * drawn from a generator seeded with {@code (seed, s)}; a source's {@code n}-th batch takes positions
 * {@code [k*B, (k+1)*B)} of its epoch {@code e} ({@code n = e * batchesPerEpoch + k}), the epoch's order a seeded
 * shuffle (as {@link DataLoader}); each sample's crop, block mask and BERT masking come from a generator seeded with
 * {@code (seed, step, sample)}, the ITM negatives from one seeded with {@code (seed, step)}. So the same seed gives
 * the same batches whatever the worker threads do and however far ahead {@link #from} prepares batches
 * ({@code prefetch}), and {@link #from(long) from(step + 1)} resumes exactly after {@code step} (the batch records
 * its {@link PretrainingBatch#step() step}). Like the reference's loaders, a
 * source's batches are full ({@code drop_last}): an epoch has {@code max(1, size / B)} batches.
 *
 * <p><b>Per source</b>: text gives {@code text_masked} + {@code mlm_labels} (max length 512, the reference's
 * {@code TEXT_MAX_LENGTH_DEFAULT}); images give {@code image}, {@code image_for_codebook}, {@code image_patches_mask};
 * pairs give all of these with {@code text} and {@code itm_labels} (max length 77, {@code VL_MAX_LENGTH_DEFAULT}).
 * Texts are padded to the maximum length (the reference's {@code padding="max_length"}). Pair captions are
 * masked whole words at a time, text sources token by token, as the reference's VL and MLM datamodules do
 * ({@link MlmMasking}).
 *
 * <p><b>Micro-batches and processes.</b> With {@link Builder#accumulation(int) accumulation} {@code A} and a
 * {@link Builder#shard(int, int) shard} of {@code W} processes, a step is one optimizer step: its source is drawn as
 * above and its global batch is {@code B x A x W} records of it (an epoch has {@code max(1, size / (B x A x W))}
 * steps), cut into {@code A x W} micro-batches of {@code B}: process {@code r} gets micro-batches
 * {@code r*A .. r*A+A-1}, in order, and prepares only those. A sample's draws are seeded by its place in the global
 * batch, so every cut of the same global batches gives the same samples: 2 processes with accumulation 1 see exactly
 * what 1 process with accumulation 2 sees (data-parallel pretraining, PyTorch DDP's semantics with every rank drawing
 * the same source, as TorchMultimodal's ranks do from the same seed). {@code A = W = 1} is the plain loader.
 *
 * <p><b>Bad records</b> (an image that is missing or does not decode) are skipped with one warning each and
 * counted; the batch is smaller. A step whose records were all skipped yields no batch (the iterator goes on with
 * the next step); with several micro-batches per step, a micro-batch whose records were all skipped is an error
 * naming the step (the step's micro-batches cannot be told apart from the next step's, nor the processes kept in
 * step). A source none of whose records can be used is an error.
 */
public final class PretrainingLoader implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PretrainingLoader.class);
    /** {@code TEXT_MAX_LENGTH_DEFAULT}. */
    public static final int DEFAULT_TEXT_MAX_LENGTH = 512;
    /** {@code VL_MAX_LENGTH_DEFAULT}. */
    public static final int DEFAULT_PAIRS_MAX_LENGTH = 77;
    /** The pretraining config's {@code training.batch_size}. */
    public static final int DEFAULT_BATCH_SIZE = 8;

    /**
     * Explicit inputs for one batch, in place of the seeded draws (tests): per sample a crop box, a patch mask, an
     * MLM plan (for the padded ids), and per batch the ITM choices ({@link ItmNegatives#POSITIVE} or a source
     * index). Any of them may be null (drawn as usual).
     */
    public record Overrides(PretrainingImageTransform.CropBox[] crops, long[][] patchMasks, MlmMasking.Plan[] mlmPlans,
            int[] itmChoices) {}

    private final List<PretrainingSource> sources;
    private final double[] cumulative;
    private final int batchSize;
    private final int accumulation;
    private final int rank;
    private final int worldSize;
    private final long seed;
    private final boolean shuffle;
    private final PretrainingImageTransform imageTransform;
    private final BlockMasking blockMasking;
    private final MlmMasking mlm;
    private final MlmMasking textMlm;
    private final ItmNegatives itm;
    private final QuestionTokenizer tokenizer;
    private final int textMaxLength;
    private final int pairsMaxLength;
    private final long maxImagePixels;
    private final boolean pairsWholeWordMask;
    private final List<List<String>> captions = new ArrayList<>();
    private final ExecutorService pool;
    private final ExecutorService assembler;
    private final int prefetch;
    private final Set<String> warned = ConcurrentHashMap.newKeySet();
    private final Map<Integer, Set<Integer>> badRecords = new ConcurrentHashMap<>();
    private final Map<String, Integer> skippedByReason = Collections.synchronizedMap(new TreeMap<>());

    private PretrainingLoader(Builder b) {
        if (b.sources.isEmpty()) {
            throw new IllegalArgumentException("no pretraining source given");
        }
        if (b.batchSize < 1 || b.workers < 1) {
            throw new IllegalArgumentException("batch size and workers must be >= 1 (got " + b.batchSize + ", "
                    + b.workers + ")");
        }
        this.sources = List.copyOf(b.sources);
        this.cumulative = new double[sources.size()];
        double total = 0;
        for (int i = 0; i < sources.size(); i++) {
            double r = b.ratios.get(i);
            total += r;
            cumulative[i] = total;
        }
        for (int i = 0; i < cumulative.length; i++) {
            cumulative[i] /= total;
        }
        this.batchSize = b.batchSize;
        if (b.accumulation < 1 || b.worldSize < 1 || b.rank < 0 || b.rank >= b.worldSize) {
            throw new IllegalArgumentException("accumulation and world size must be >= 1 and rank in 0..world size - 1 "
                    + "(got " + b.accumulation + ", " + b.worldSize + ", " + b.rank + ")");
        }
        this.accumulation = b.accumulation;
        this.rank = b.rank;
        this.worldSize = b.worldSize;
        if (parts() > 1) {
            for (PretrainingSource src : sources) {
                if (src.size() < globalBatch()) {
                    throw new IllegalArgumentException("pretraining source " + src.name() + " has " + src.size()
                            + " records, fewer than one global batch of " + globalBatch() + " (batch size " + batchSize
                            + " x accumulation " + accumulation + " x processes " + worldSize + ")");
                }
            }
        }
        this.seed = b.seed;
        this.shuffle = b.shuffle;
        this.imageTransform = b.imageTransform;
        this.blockMasking = b.blockMasking;
        this.mlm = b.mlm.withProtection(MlmMasking.Protected.ALL_SPECIAL_IDS);
        this.textMlm = b.mlm.withProtection(MlmMasking.Protected.CLS_SEP_PAD);
        this.itm = b.itm;
        this.textMaxLength = b.textMaxLength;
        this.pairsMaxLength = b.pairsMaxLength;
        this.maxImagePixels = b.maxImagePixels;
        this.pairsWholeWordMask = b.pairsWholeWordMask;
        boolean needsText = sources.stream().anyMatch(s -> s.kind() != PretrainingSource.Kind.IMAGE);
        if (needsText && b.tokenizer == null) {
            throw new IllegalArgumentException("text and pair sources need a tokenizer");
        }
        if (needsText && b.tokenizer.maxLength() < Math.max(textMaxLength, pairsMaxLength)) {
            throw new IllegalArgumentException("the tokenizer's maximum length " + b.tokenizer.maxLength()
                    + " is below the text length " + Math.max(textMaxLength, pairsMaxLength));
        }
        this.tokenizer = b.tokenizer;
        for (PretrainingSource s : sources) {
            captions.add(s instanceof PretrainingSource.Pairs p ? p.captions() : null);
        }
        if (b.prefetch < 1) {
            throw new IllegalArgumentException("prefetch must be >= 1, got " + b.prefetch);
        }
        this.prefetch = b.prefetch;
        this.assembler = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "mm4j-pretrain-batches");
            t.setDaemon(true);
            return t;
        });
        AtomicInteger n = new AtomicInteger();
        this.pool = Executors.newFixedThreadPool(b.workers, r -> {
            Thread t = new Thread(r, "mm4j-pretrain-loader-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    public static Builder builder() {
        return new Builder();
    }

    public List<PretrainingSource> sources() {
        return sources;
    }

    public int batchSize() {
        return batchSize;
    }

    /** Records per step over every micro-batch and process: batch size x accumulation x processes. */
    public int globalBatch() {
        return batchSize * parts();
    }

    /** Micro-batches per step over all processes. */
    private int parts() {
        return accumulation * worldSize;
    }

    /** The share of batches each source gets (the normalised ratios). */
    public double[] shares() {
        double[] s = new double[cumulative.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = cumulative[i] - (i == 0 ? 0 : cumulative[i - 1]);
        }
        return s;
    }

    /** Records skipped so far (missing or undecodable images), by reason. */
    public Map<String, Integer> skippedByReason() {
        synchronized (skippedByReason) {
            return Map.copyOf(skippedByReason);
        }
    }

    /** Records skipped so far. */
    public int skipped() {
        return skippedByReason().values().stream().mapToInt(Integer::intValue).sum();
    }

    /** The index of the source step {@code step} draws from. */
    public int sourceAt(long step) {
        if (sources.size() == 1) {
            return 0;
        }
        double u = new Random(mix(seed, step, 0x51DEL)).nextDouble();
        for (int i = 0; i < cumulative.length - 1; i++) {
            if (u < cumulative[i]) {
                return i;
            }
        }
        return cumulative.length - 1;
    }

    /** Batches from step {@code start} on (0 = the beginning; {@code last.step() + 1} resumes); never ends. */
    public Iterator<PretrainingBatch> from(long start) {
        if (start < 0) {
            throw new IllegalArgumentException("start step must be >= 0, got " + start);
        }
        long[] drawn = new long[sources.size()];
        for (long s = 0; s < start; s++) {
            drawn[sourceAt(s)]++;
        }
        return new Iterator<>() {
            long nextSubmit = start;
            final ArrayDeque<Future<PretrainingBatch>> ahead = new ArrayDeque<>();
            PretrainingBatch ready;

            /**
             * Keeps {@code prefetch} steps in preparation (each seeded by its step: order-independent), each as this
             * process's micro-batches of it.
             */
            private void fill() {
                while (ahead.size() < prefetch * accumulation) {
                    long step = nextSubmit++;
                    int src = sourceAt(step);
                    long n = drawn[src]++;
                    for (int a = 0; a < accumulation; a++) {
                        int part = rank * accumulation + a;
                        ahead.add(assembler.submit(() -> make(step, src, n, null, part)));
                    }
                }
            }

            @Override
            public boolean hasNext() {
                while (ready == null) {
                    fill();
                    Future<PretrainingBatch> head = ahead.poll();
                    try {
                        ready = head.get();
                    } catch (InterruptedException e) {
                        ahead.forEach(f -> f.cancel(true));
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException("interrupted while loading a pretraining batch", e);
                    } catch (ExecutionException e) {
                        ahead.forEach(f -> f.cancel(true));
                        ahead.clear();
                        if (e.getCause() instanceof RuntimeException re) {
                            throw re;
                        }
                        throw new IllegalStateException("loading a pretraining batch failed: " + e.getCause(),
                                e.getCause());
                    }
                }
                fill();
                return true;
            }

            @Override
            public PretrainingBatch next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                PretrainingBatch b = ready;
                ready = null;
                return b;
            }
        };
    }

    /** The batch of {@code step} (null if all its records were skipped); this process's first micro-batch of it. */
    public PretrainingBatch batch(long step) {
        return batch(step, null);
    }

    /**
     * The batch of {@code step} with explicit inputs in place of some draws (indexed over the step's global batch);
     * this process's first micro-batch of it.
     */
    public PretrainingBatch batch(long step, Overrides overrides) {
        int src = sourceAt(step);
        long n = 0;
        for (long s = 0; s < step; s++) {
            if (sourceAt(s) == src) {
                n++;
            }
        }
        return make(step, src, n, overrides, rank * accumulation);
    }

    /** Steps (global batches) per epoch of source {@code i}. */
    public int batchesPerEpoch(int i) {
        return Math.max(1, sources.get(i).size() / globalBatch());
    }

    /** The record indices of source {@code src}'s {@code n}-th global batch. */
    int[] positions(int src, long n) {
        int size = sources.get(src).size();
        int bpe = batchesPerEpoch(src);
        long epoch = n / bpe;
        int k = (int) (n % bpe);
        int[] order = order(src, size, epoch);
        int from = k * globalBatch();
        int to = Math.min(size, from + globalBatch());
        int[] out = new int[to - from];
        System.arraycopy(order, from, out, 0, out.length);
        return out;
    }

    private int[] order(int src, int n, long epoch) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        if (shuffle) {
            Random rnd = new Random(mix(seed, epoch, 0xE90C0000L + src));
            for (int i = n - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        return order;
    }

    static long mix(long a, long b, long c) {
        long z = a * 0x9E3779B97F4A7C15L + b * 0xBF58476D1CE4E5B9L + c * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** One processed record: its images (null for text), or why it was skipped. */
    private record Item(int record, String origin, float[] image, float[] forCodebook, long[] patchMask,
            String reasonKind, String reason) {}

    /**
     * Micro-batch {@code part} of step {@code step} (source {@code src}'s {@code n}-th global batch): positions
     * {@code [part*B, (part+1)*B)} of it; null when all its records were skipped (an error with several parts).
     */
    private PretrainingBatch make(long step, int src, long n, Overrides o, int part) {
        PretrainingSource source = sources.get(src);
        int[] records = positions(src, n);
        int count = records.length;
        checkOverrides(o, count);
        // this part's samples: indices [from, to) of the global batch (indices, seeds and overrides are global)
        int from = parts() == 1 ? 0 : Math.min(count, part * batchSize);
        int to = parts() == 1 ? count : Math.min(count, from + batchSize);
        List<Item> items = new ArrayList<>(count);
        for (int i = 0; i < from; i++) {
            items.add(null); // another micro-batch's: not prepared here
        }
        if (source.kind() == PretrainingSource.Kind.TEXT) {
            PretrainingSource.Texts t = (PretrainingSource.Texts) source;
            for (int i = from; i < to; i++) {
                int r = records[i];
                items.add(new Item(r, t.origins().get(r), null, null, null, null, null));
            }
        } else {
            List<Future<Item>> futures = new ArrayList<>(to - from);
            for (int i = from; i < to; i++) {
                int sample = i;
                futures.add(pool.submit(() -> image(src, source, records[sample], step, sample, o)));
            }
            for (Future<Item> f : futures) {
                try {
                    items.add(f.get());
                } catch (InterruptedException e) {
                    futures.forEach(x -> x.cancel(true));
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while loading step " + step, e);
                } catch (ExecutionException e) {
                    futures.forEach(x -> x.cancel(true));
                    throw new IllegalStateException("loader worker failed on step " + step + " (source "
                            + source.name() + "): " + e.getCause(), e.getCause());
                }
            }
        }
        // per-sample indices i refer to the global batch's positions before skipping (overrides and seeds use them)
        List<Integer> kept = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            Item it = items.get(i);
            if (it.reasonKind() == null) {
                kept.add(i);
            } else {
                skip(src, source, it);
            }
        }
        if (kept.isEmpty()) {
            if (parts() > 1) {
                throw new IllegalStateException("step " + step + ": every record of micro-batch " + part + " (source "
                        + source.name() + ", " + (to - from) + " records) was skipped; with gradient accumulation or "
                        + "several processes a micro-batch cannot be left out (see the warnings above)");
            }
            return null;
        }
        return collate(step, src, source, records, items, kept, o);
    }

    private static void checkOverrides(Overrides o, int count) {
        if (o == null) {
            return;
        }
        check("crops", o.crops() == null ? -1 : o.crops().length, count);
        check("patchMasks", o.patchMasks() == null ? -1 : o.patchMasks().length, count);
        check("mlmPlans", o.mlmPlans() == null ? -1 : o.mlmPlans().length, count);
        check("itmChoices", o.itmChoices() == null ? -1 : o.itmChoices().length, count);
    }

    private static void check(String what, int n, int count) {
        if (n >= 0 && n != count) {
            throw new IllegalArgumentException(what + " has " + n + " entries for a batch of " + count);
        }
    }

    private void skip(int src, PretrainingSource source, Item it) {
        skippedByReason.merge(it.reasonKind(), 1, Integer::sum);
        if (warned.add(it.origin() + "\u0000" + it.reasonKind())) {
            LOG.warn("skipping {}: {}", it.origin(), it.reason());
        }
        Set<Integer> bad = badRecords.computeIfAbsent(src, k -> ConcurrentHashMap.newKeySet());
        bad.add(it.record());
        if (bad.size() >= source.size()) {
            throw new IllegalStateException("none of the " + source.size() + " records of source " + source.name()
                    + " could be used; last problem: " + it.origin() + ": " + it.reason());
        }
    }

    private Item image(int src, PretrainingSource source, int record, long step, int sample, Overrides o) {
        VqaSample.ImageSource img;
        String origin;
        if (source instanceof PretrainingSource.Pairs p) {
            CaptionPairs.Pair pair = p.pairs().get(record);
            img = pair.image();
            origin = pair.origin();
        } else {
            Path path = ((PretrainingSource.Images) source).images().get(record);
            img = new VqaSample.FileImage(path);
            origin = path.toString();
        }
        byte[] bytes;
        try {
            bytes = img.readBytes();
        } catch (NoSuchFileException e) {
            return new Item(record, origin, null, null, null, "image file missing", "image file missing: "
                    + img.describe());
        } catch (IOException | RuntimeException e) {
            return new Item(record, origin, null, null, null, "image unreadable", "cannot read image "
                    + img.describe() + ": " + e);
        }
        BufferedImage bi;
        try {
            bi = ImageTransform.decode(bytes, img.describe(), maxImagePixels);
        } catch (ImageTransform.ImageTooLargeException e) {
            return new Item(record, origin, null, null, null, "image too large", e.getMessage());
        } catch (IOException | RuntimeException e) {
            return new Item(record, origin, null, null, null, "image undecodable", e.getMessage());
        }
        Random rnd = new Random(mix(seed, step, sample + 1));
        PretrainingImageTransform.Output out;
        if (o != null && o.crops() != null && o.crops()[sample] != null) {
            out = imageTransform.apply(bi, o.crops()[sample]);
        } else {
            out = imageTransform.apply(bi, rnd);
        }
        long[] mask = o != null && o.patchMasks() != null && o.patchMasks()[sample] != null
                ? checkMask(o.patchMasks()[sample]) : blockMasking.draw(rnd);
        return new Item(record, origin, out.image(), out.imageForCodebook(), mask, null, null);
    }

    private long[] checkMask(long[] mask) {
        if (mask.length != blockMasking.numPatches()) {
            throw new IllegalArgumentException("patch mask has " + mask.length + " entries for a "
                    + blockMasking.height() + "x" + blockMasking.width() + " patch grid");
        }
        return mask.clone();
    }

    private PretrainingBatch collate(long step, int src, PretrainingSource source, int[] records, List<Item> items,
            List<Integer> kept, Overrides o) {
        int b = kept.size();
        List<String> origins = new ArrayList<>(b);
        for (int i : kept) {
            origins.add(items.get(i).origin());
        }
        float[] image = null;
        float[] forCodebook = null;
        long[] patchMask = null;
        int encPlane = 3 * imageTransform.encoderSize() * imageTransform.encoderSize();
        int cbPlane = 3 * imageTransform.codebookSize() * imageTransform.codebookSize();
        int patches = blockMasking.numPatches();
        if (source.kind() != PretrainingSource.Kind.TEXT) {
            image = new float[b * encPlane];
            forCodebook = new float[b * cbPlane];
            patchMask = new long[b * patches];
            for (int k = 0; k < b; k++) {
                Item it = items.get(kept.get(k));
                System.arraycopy(it.image(), 0, image, k * encPlane, encPlane);
                System.arraycopy(it.forCodebook(), 0, forCodebook, k * cbPlane, cbPlane);
                System.arraycopy(it.patchMask(), 0, patchMask, k * patches, patches);
            }
        }
        long[] text = null;
        long[] textMasked = null;
        long[] mlmLabels = null;
        long[] itmLabels = null;
        int seqLen = 0;
        if (source.kind() != PretrainingSource.Kind.IMAGE) {
            boolean pairs = source.kind() == PretrainingSource.Kind.PAIRS;
            seqLen = pairs ? pairsMaxLength : textMaxLength;
            int[] choices = null;
            if (pairs) {
                List<String> caps = captions.get(src);
                int[] all = o != null && o.itmChoices() != null ? o.itmChoices()
                        : itm.draw(caps, records, new Random(mix(seed, step, 0)));
                choices = new int[b];
                for (int k = 0; k < b; k++) {
                    int c = all[kept.get(k)];
                    if (c != ItmNegatives.POSITIVE && (c < 0 || c >= caps.size())) {
                        throw new IllegalArgumentException("ITM choice " + c + " is not a record of " + source.name());
                    }
                    choices[k] = c;
                }
                if (itm.labelsPresent()) {
                    itmLabels = ItmNegatives.labels(choices);
                }
                text = new long[b * seqLen];
            }
            textMasked = new long[b * seqLen];
            mlmLabels = new long[b * seqLen];
            for (int k = 0; k < b; k++) {
                int i = kept.get(k);
                int r = records[i];
                String t;
                if (pairs) {
                    int c = choices[k];
                    t = captions.get(src).get(c == ItmNegatives.POSITIVE ? r : c);
                } else {
                    t = ((PretrainingSource.Texts) source).texts().get(r);
                }
                long[] ids = tokenizer.encodePadded(t, seqLen);
                MlmMasking.Masked m;
                if (o != null && o.mlmPlans() != null && o.mlmPlans()[i] != null) {
                    m = (pairs ? mlm : textMlm).apply(ids, o.mlmPlans()[i]);
                } else {
                    // a sample's text masking has its own generator, apart from its image's
                    Random rnd = new Random(mix(seed, step, -(i + 1)));
                    m = !pairs ? textMlm.apply(ids, rnd)
                            : pairsWholeWordMask
                                    ? mlm.apply(ids, mlm.drawWholeWord(ids, tokenizer.continuations(t, seqLen), rnd))
                                    : mlm.apply(ids, rnd);
                }
                if (text != null) {
                    System.arraycopy(ids, 0, text, k * seqLen, seqLen);
                }
                System.arraycopy(m.textMasked(), 0, textMasked, k * seqLen, seqLen);
                System.arraycopy(m.mlmLabels(), 0, mlmLabels, k * seqLen, seqLen);
            }
        }
        return new PretrainingBatch(source.kind(), source.name(), step, image, imageTransform.encoderSize(),
                forCodebook, imageTransform.codebookSize(), patchMask, blockMasking.height(), blockMasking.width(),
                text, textMasked, mlmLabels, seqLen, itmLabels, Collections.unmodifiableList(origins));
    }

    @Override
    public void close() {
        assembler.shutdownNow();
        pool.shutdownNow();
    }

    /** Settings; the defaults are TorchMultimodal's pretraining defaults. */
    public static final class Builder {
        private final List<PretrainingSource> sources = new ArrayList<>();
        private final List<Double> ratios = new ArrayList<>();
        private int batchSize = DEFAULT_BATCH_SIZE;
        private int accumulation = 1;
        private int rank;
        private int worldSize = 1;
        private long seed;
        private boolean shuffle = true;
        private PretrainingImageTransform imageTransform = new PretrainingImageTransform(true);
        private BlockMasking blockMasking = new BlockMasking();
        private MlmMasking mlm = new MlmMasking();
        private ItmNegatives itm = new ItmNegatives();
        private QuestionTokenizer tokenizer;
        private int textMaxLength = DEFAULT_TEXT_MAX_LENGTH;
        private int pairsMaxLength = DEFAULT_PAIRS_MAX_LENGTH;
        private int workers = 2;
        private int prefetch = 2;
        private long maxImagePixels = ImageTransform.DEFAULT_MAX_IMAGE_PIXELS;
        private boolean pairsWholeWordMask = true;

        private Builder() {}

        /**
         * Whether pair captions are masked whole words at a time (on by default: the reference's VL data uses
         * {@code DataCollatorForWholeWordMask}); text sources always use token-level masking ({@code MLMDataModule}).
         */
        public Builder pairsWholeWordMask(boolean on) {
            this.pairsWholeWordMask = on;
            return this;
        }

        /** A source with sampling ratio 1. */
        public Builder source(PretrainingSource s) {
            return source(s, 1.0);
        }

        /** A source drawn for a share {@code ratio / sum(ratios)} of the batches. */
        public Builder source(PretrainingSource s, double ratio) {
            Objects.requireNonNull(s, "source");
            if (!(ratio > 0) || Double.isInfinite(ratio)) {
                throw new IllegalArgumentException("sampling ratio of source " + s.name() + " must be > 0, got " + ratio);
            }
            sources.add(s);
            ratios.add(ratio);
            return this;
        }

        /** Samples per micro-batch (per process). */
        public Builder batchSize(int n) {
            this.batchSize = n;
            return this;
        }

        /** Micro-batches per step on each process (gradient accumulation; default 1): see the class comment. */
        public Builder accumulation(int micro) {
            this.accumulation = micro;
            return this;
        }

        /**
         * This process's share of every step among {@code worldSize} data-parallel processes (default 0 of 1): see the
         * class comment. Every process builds its loader with the same settings and its own rank.
         */
        public Builder shard(int rank, int worldSize) {
            this.rank = rank;
            this.worldSize = worldSize;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Whether each source's epochs are shuffled (on by default, as the reference's training loaders). */
        public Builder shuffle(boolean on) {
            this.shuffle = on;
            return this;
        }

        public Builder imageTransform(PretrainingImageTransform t) {
            this.imageTransform = Objects.requireNonNull(t);
            return this;
        }

        public Builder blockMasking(BlockMasking m) {
            this.blockMasking = Objects.requireNonNull(m);
            return this;
        }

        /**
         * The masking probability and vocabulary; pairs protect all special ids, texts [CLS], [SEP] and [PAD]
         * (see {@link MlmMasking.Protected}), whatever {@code m}'s own protection.
         */
        public Builder mlm(MlmMasking m) {
            this.mlm = Objects.requireNonNull(m);
            return this;
        }

        public Builder itm(ItmNegatives n) {
            this.itm = Objects.requireNonNull(n);
            return this;
        }

        /** Needed by text and pair sources; its maximum length must cover the text lengths. */
        public Builder tokenizer(QuestionTokenizer t) {
            this.tokenizer = t;
            return this;
        }

        public Builder textMaxLength(int n) {
            if (n < 2) {
                throw new IllegalArgumentException("text max length must be >= 2, got " + n);
            }
            this.textMaxLength = n;
            return this;
        }

        public Builder pairsMaxLength(int n) {
            if (n < 2) {
                throw new IllegalArgumentException("pairs max length must be >= 2, got " + n);
            }
            this.pairsMaxLength = n;
            return this;
        }

        public Builder workers(int n) {
            this.workers = n;
            return this;
        }

        /** Batches {@link #from} prepares ahead of the consumer (the bound on memory). */
        public Builder prefetch(int n) {
            this.prefetch = n;
            return this;
        }

        public Builder maxImagePixels(long n) {
            this.maxImagePixels = n;
            return this;
        }

        public PretrainingLoader build() {
            return new PretrainingLoader(this);
        }
    }
}
