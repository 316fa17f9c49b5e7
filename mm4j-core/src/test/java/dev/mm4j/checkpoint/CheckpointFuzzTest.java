package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fuzzing of both checkpoint readers on the tiny fixture: the torch.save archive as PyTorch wrote it
 * (STORED), the same archive with DEFLATED entries, and a safetensors file of it. Every mutant must either be
 * refused with a {@link CheckpointException} or load bit-exact (names, dtypes, shapes, every byte of data).
 * The one exception is the safetensors format, which has no checksum: a mutant that changes only bytes of the
 * data section or of a name/dtype/metadata string in the header may load "as written", i.e. every tensor with
 * the original shape and exactly the (mutated) file bytes at the original position; anything else is a failure.
 *
 * <p>{@code -Dmm4j.fuzz.mutants=N} sets the number of mutants per input (default 1000; the deflated archive gets a
 * third), {@code -Dmm4j.fuzz.seconds=S} the time budget per input (default 15 s: on a busy machine the seeded
 * sequence is cut short, at least 100 mutants per input run); the counts are printed either way. A bigger run:
 * {@code mvn -B -ntp -q test -Dtest=CheckpointFuzzTest -Dmm4j.fuzz.mutants=20000 -Dmm4j.fuzz.seconds=600}.
 */
class CheckpointFuzzTest {
    @TempDir Path tmp;

    private static final int MUTANTS = Integer.getInteger("mm4j.fuzz.mutants", 1000);
    /** Wall-clock budget per input; on a busy machine fewer mutants run (the seeded sequence is cut, not changed). */
    private static final long BUDGET_NANOS = Long.getLong("mm4j.fuzz.seconds", 15) * 1_000_000_000L;
    private static final long SEED = Long.getLong("mm4j.fuzz.seed", 20261128L);

    /** What happened to a mutant. */
    enum Outcome { REFUSED, BIT_EXACT, AS_WRITTEN, OTHER }

    /** The original's content, to compare loads against. */
    record Tensor(String name, DType dtype, long[] shape, byte[] data) {}

    private static List<Tensor> snapshot(StateDict sd) {
        List<Tensor> out = new ArrayList<>();
        for (Map.Entry<String, HostTensor> e : sd.asMap().entrySet()) {
            ByteBuffer b = e.getValue().data();
            byte[] d = new byte[b.remaining()];
            b.get(d);
            out.add(new Tensor(e.getKey(), e.getValue().dtype(), e.getValue().shape(), d));
        }
        return out;
    }

    private static boolean same(List<Tensor> a, List<Tensor> b) {
        if (a.size() != b.size()) return false;
        for (int i = 0; i < a.size(); i++) {
            Tensor x = a.get(i), y = b.get(i);
            if (!x.name().equals(y.name()) || x.dtype() != y.dtype() || !Arrays.equals(x.shape(), y.shape())
                    || !Arrays.equals(x.data(), y.data())) return false;
        }
        return true;
    }

    /** A mutation: the mutated bytes and a short description for failure messages. */
    record Mutant(byte[] bytes, String what) {}

    private static final byte[] INTERESTING_BYTES = {0, (byte) 0xff, 0x7f, (byte) 0x80, 1, ' ', '{', '}', '"', '0', '9', ',', '\\'};

    /**
     * One to {@code maxOps} random mutations; positions are drawn half the time from {@code hot} (structure:
     * headers, central directory, pickle) and otherwise anywhere.
     */
    static Mutant mutate(byte[] original, int[][] hot, Random rnd, int maxOps) {
        byte[] b = original.clone();
        StringBuilder what = new StringBuilder();
        int ops = 1 + rnd.nextInt(maxOps);
        for (int k = 0; k < ops; k++) {
            int pos;
            if (rnd.nextBoolean() && hot.length > 0) {
                int[] r = hot[rnd.nextInt(hot.length)];
                pos = Math.min(b.length - 1, r[0] + rnd.nextInt(Math.max(1, r[1] - r[0])));
            } else {
                pos = rnd.nextInt(b.length);
            }
            pos = Math.max(0, Math.min(pos, b.length - 1));
            int op = rnd.nextInt(10);
            switch (op) {
                case 0, 1 -> { int bit = rnd.nextInt(8); b[pos] ^= (byte) (1 << bit); what.append("flip bit ").append(bit).append(" @").append(pos); }
                case 2 -> { b[pos] = (byte) rnd.nextInt(256); what.append("random byte @").append(pos); }
                case 3 -> { b[pos] = INTERESTING_BYTES[rnd.nextInt(INTERESTING_BYTES.length)]; what.append("byte ").append(b[pos]).append(" @").append(pos); }
                case 4 -> {
                    long[] values = {0, -1, 1, Integer.MAX_VALUE, Integer.MIN_VALUE, b.length, b.length - 1, b.length + 1,
                            rnd.nextInt(65536), 0xffffffffL, Long.MAX_VALUE};
                    long v = values[rnd.nextInt(values.length)];
                    int width = rnd.nextBoolean() ? 4 : 8;
                    for (int i = 0; i < width && pos + i < b.length; i++) b[pos + i] = (byte) (v >>> (8 * i));
                    what.append("int").append(width * 8).append(' ').append(v).append(" @").append(pos);
                }
                case 5 -> { int n = rnd.nextInt(b.length); b = Arrays.copyOf(b, n); what.append("truncate to ").append(n); }
                case 6 -> {
                    byte[] extra = new byte[1 + rnd.nextInt(64)];
                    rnd.nextBytes(extra);
                    byte[] c = Arrays.copyOf(b, b.length + extra.length);
                    System.arraycopy(extra, 0, c, b.length, extra.length);
                    b = c;
                    what.append("append ").append(extra.length);
                }
                case 7 -> {
                    byte[] extra = new byte[1 + rnd.nextInt(16)];
                    rnd.nextBytes(extra);
                    if (rnd.nextBoolean()) Arrays.fill(extra, (byte) ' ');
                    byte[] c = new byte[b.length + extra.length];
                    System.arraycopy(b, 0, c, 0, pos);
                    System.arraycopy(extra, 0, c, pos, extra.length);
                    System.arraycopy(b, pos, c, pos + extra.length, b.length - pos);
                    b = c;
                    what.append("insert ").append(extra.length).append(" @").append(pos);
                }
                case 8 -> {
                    int n = Math.min(1 + rnd.nextInt(16), b.length - pos);
                    byte[] c = new byte[b.length - n];
                    System.arraycopy(b, 0, c, 0, pos);
                    System.arraycopy(b, pos + n, c, pos, b.length - pos - n);
                    b = c;
                    what.append("delete ").append(n).append(" @").append(pos);
                }
                default -> {
                    int n = 1 + rnd.nextInt(32);
                    int from = rnd.nextInt(b.length);
                    int len = Math.min(n, Math.min(b.length - from, b.length - pos));
                    System.arraycopy(b.clone(), from, b, pos, len);
                    what.append("copy ").append(len).append(" from ").append(from).append(" @").append(pos);
                }
            }
            if (b.length == 0) break;
            what.append("; ");
        }
        return new Mutant(b, what.toString());
    }

    /** Counts per outcome, and the first few unexpected ones. */
    static final class Tally {
        final Map<Outcome, Integer> counts = new TreeMap<>();
        final List<String> others = new ArrayList<>();
        final Map<String, Integer> refusals = new TreeMap<>();
        long slowestNanos;

        void add(Outcome o) {
            counts.merge(o, 1, Integer::sum);
        }

        int get(Outcome o) {
            return counts.getOrDefault(o, 0);
        }

        @Override
        public String toString() {
            return "refused " + get(Outcome.REFUSED) + ", loaded bit-exact " + get(Outcome.BIT_EXACT)
                    + ", loaded as written (no checksum in the format) " + get(Outcome.AS_WRITTEN) + ", anything else "
                    + get(Outcome.OTHER) + String.format(" (slowest mutant %.1f ms)", slowestNanos / 1e6);
        }
    }

    /** Reads a mutant and classifies the result; {@code asWritten} judges loads that differ (null: none allowed). */
    private Tally fuzz(String label, byte[] original, int[][] hot, int maxOps, boolean safetensors, int count, long seed)
            throws IOException {
        Path orig = tmp.resolve("orig-" + label);
        Files.write(orig, original);
        List<Tensor> expected;
        try (StateDict sd = Checkpoints.read(orig)) {
            expected = snapshot(sd);
        }
        SafetensorsLayout layout = safetensors ? SafetensorsLayout.of(original, expected) : null;
        Random rnd = new Random(seed);
        Tally tally = new Tally();
        long deadline = System.nanoTime() + BUDGET_NANOS;
        int done = 0;
        for (int i = 0; i < count && (i < 100 || System.nanoTime() < deadline); i++, done++) {
            Mutant m = mutate(original, hot, rnd, maxOps);
            Path p = tmp.resolve(label + "-" + i);
            Files.write(p, m.bytes());
            long t0 = System.nanoTime();
            Outcome o;
            String detail = null;
            try (StateDict sd = safetensors ? SafeTensors.read(p) : TorchCheckpoints.read(p)) {
                List<Tensor> got = snapshot(sd);
                if (same(expected, got)) {
                    o = Outcome.BIT_EXACT;
                } else if (layout != null && layout.loadedAsWritten(original, m.bytes(), got)) {
                    o = Outcome.AS_WRITTEN;
                } else {
                    o = Outcome.OTHER;
                    detail = "loaded with different content";
                }
            } catch (CheckpointException e) {
                o = Outcome.REFUSED;
                if (e.getMessage().lines().count() != 1 || e.getMessage().length() > CheckpointException.MAX_MESSAGE + 3) {
                    o = Outcome.OTHER;
                    detail = "refused, but not in one line: " + e.getMessage();
                }
                String msg = e.getMessage().replace(p.toString(), "FILE");
                tally.refusals.merge(msg.replaceAll("\\([^)]*\\)", "(..)").replaceAll("'[^']*'", "'X'").replaceAll("[0-9]+", "N"), 1, Integer::sum);
            } catch (Throwable e) {
                o = Outcome.OTHER;
                detail = e.toString();
            }
            tally.slowestNanos = Math.max(tally.slowestNanos, System.nanoTime() - t0);
            tally.add(o);
            if (o == Outcome.OTHER && tally.others.size() < 10) tally.others.add("#" + i + " [" + m.what() + "]: " + detail);
            Files.delete(p);
        }
        System.out.printf("fuzz %-24s %d mutants%s: %s%n", label, done, done < count ? " (time budget reached)" : "", tally);
        return tally;
    }

    /** The original safetensors layout, for judging loads of mutants that the format cannot tell from the original. */
    record SafetensorsLayout(int headerEnd, List<long[]> ranges, List<Tensor> original) {
        static SafetensorsLayout of(byte[] file, List<Tensor> tensors) {
            int n = (int) ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            List<long[]> ranges = new ArrayList<>();
            long at = 8 + n;
            for (Tensor t : tensors) { // our writer lays tensors out in header order
                ranges.add(new long[] {at, at + t.data().length});
                at += t.data().length;
            }
            assertEquals(file.length, at, "the writer's layout");
            return new SafetensorsLayout(8 + n, ranges, tensors);
        }

        /**
         * The same number of tensors with the original shapes, each tensor's data exactly the mutant's bytes at the
         * original position (raw, when its dtype is unchanged), and names and dtypes (of the same size) changed only
         * if the mutation touched the header (not its length field).
         */
        boolean loadedAsWritten(byte[] before, byte[] mutant, List<Tensor> got) {
            if (mutant.length != before.length || got.size() != ranges.size()) return false;
            boolean headerTouched = false;
            for (int i = 0; i < headerEnd; i++) {
                if (before[i] != mutant[i]) {
                    if (i < 8) return false;
                    headerTouched = true;
                }
            }
            for (int i = 0; i < got.size(); i++) {
                Tensor t = got.get(i), o = original.get(i);
                long[] r = ranges.get(i);
                if (!Arrays.equals(t.shape(), o.shape()) || t.dtype().size() != o.dtype().size()) return false;
                if (!headerTouched && (!t.name().equals(o.name()) || t.dtype() != o.dtype())) return false;
                if (t.dtype() == o.dtype() && !Arrays.equals(Arrays.copyOfRange(mutant, (int) r[0], (int) r[1]), t.data())) return false;
            }
            return true;
        }
    }

    // ------------------------------------------------------------------ inputs

    /** The same archive with every entry DEFLATED (java.util.zip's writer, with data descriptors). */
    static byte[] deflated(Path zip) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        try (java.util.zip.ZipFile in = new java.util.zip.ZipFile(zip.toFile()); ZipOutputStream out = new ZipOutputStream(bo)) {
            for (ZipEntry e : java.util.Collections.list(in.entries())) {
                out.putNextEntry(new ZipEntry(e.getName()));
                try (var is = in.getInputStream(e)) {
                    out.write(is.readAllBytes());
                }
                out.closeEntry();
            }
        }
        return bo.toByteArray();
    }

    /** Structure of a zip: local headers (+ 64 bytes), the pickle, the central directory to the end. */
    static int[][] zipHotSpots(byte[] zip) {
        ZipLayout z = ZipLayout.of(zip);
        List<int[]> hot = new ArrayList<>();
        for (ZipLayout.Entry e : z.entries().values()) {
            hot.add(new int[] {e.localHeader(), e.data() + 8});
            if (e.name().endsWith("data.pkl")) hot.add(new int[] {e.data(), e.data() + e.compressedSize()});
        }
        hot.add(new int[] {(int) z.centralDirectory(), zip.length});
        hot.add(new int[] {(int) z.endOfCentralDirectory(), zip.length});
        return hot.toArray(new int[0][]);
    }

    @Test
    void mutantsAreRefusedOrLoadBitExact() {
        // each input stops at its time budget; a mutant that hangs a reader fails the test here
        assertTimeoutPreemptively(java.time.Duration.ofNanos(3 * BUDGET_NANOS).plusSeconds(120), this::fuzzAll);
    }

    private void fuzzAll() throws IOException {
        byte[] pt = Files.readAllBytes(TorchCheckpointsTest.fixture("flava_classification.pt"));
        byte[] deflated = deflated(TorchCheckpointsTest.fixture("flava_classification.pt"));
        Path stPath = tmp.resolve("fixture.safetensors");
        try (StateDict sd = TorchCheckpoints.read(TorchCheckpointsTest.fixture("flava_classification.pt"))) {
            SafeTensors.write(stPath, sd.asMap(), Map.of("format", "pt"));
        }
        byte[] st = Files.readAllBytes(stPath);
        int headerEnd = 8 + (int) ByteBuffer.wrap(st).order(ByteOrder.LITTLE_ENDIAN).getLong(0);

        long t0 = System.nanoTime();
        Map<String, Tally> all = new LinkedHashMap<>();
        all.put("torch.save (stored)", fuzz("pt", pt, zipHotSpots(pt), 3, false, MUTANTS, SEED));
        all.put("torch.save (deflated)", fuzz("pt-deflated", deflated, zipHotSpots(deflated), 3, false, MUTANTS / 3, SEED + 1));
        all.put("safetensors", fuzz("safetensors", st, new int[][] {{0, headerEnd}, {st.length - 64, st.length}}, 1, true,
                MUTANTS, SEED + 2));
        int total = 0;
        for (Map.Entry<String, Tally> e : all.entrySet()) {
            Tally t = e.getValue();
            total += t.counts.values().stream().mapToInt(Integer::intValue).sum();
            assertEquals(0, t.get(Outcome.OTHER), e.getKey() + ": " + t + "\n" + String.join("\n", t.others));
            // the mutations reach both sides: structure that must be refused, and bytes that do not matter (or, in
            // safetensors, that the format cannot check)
            assertTrue(t.get(Outcome.REFUSED) > 0 && t.get(Outcome.BIT_EXACT) + t.get(Outcome.AS_WRITTEN) > 0, e.getKey() + ": " + t);
            if (Boolean.getBoolean("mm4j.fuzz.verbose")) t.refusals.forEach((k, v) -> System.out.printf("  %6d  %s%n", v, k));
        }
        System.out.printf("fuzz total: %d mutants in %.1f s%n", total, (System.nanoTime() - t0) / 1e9);
    }
}
