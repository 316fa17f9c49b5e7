package dev.mm4j.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mm4j.util.AtomicFiles;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The training metrics log, {@code metrics.jsonl}: one JSON object per line, appended and flushed line by
 * line so a crash loses at most the line being written (a torn line, one that is not a whole JSON
 * object, is skipped with a warning when read back; reopening ends it so later lines stay intact).
 * Fields: {@code step}, {@code loss}, {@code lr}, {@code grad_norm}, {@code samples_per_s},
 * {@code val_accuracy}, {@code epoch}; absent values are left out. Non-finite numbers are written as the
 * strings {@code "NaN"}/{@code "Infinity"} (valid JSON) and read back as such.
 *
 * <p>This file is append-only by design (not rewritten atomically per line); {@link #truncateAfter} rewrites
 * it atomically when a run resumes from an earlier checkpoint.
 */
public final class MetricsLog implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MetricsLog.class);
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /**
     * One line of the log; null fields are absent.
     *
     * @param lossParts the named parts of a training step's loss ({@code "loss_parts": {"mlm": 2.1, ...}}), empty
     *     (absent) when the loss has none
     */
    public record Entry(long step, Double loss, Double lr, Double gradNorm, Double samplesPerS, Double valAccuracy,
            Double epoch, Map<String, Double> lossParts) {

        public Entry {
            lossParts = lossParts == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(lossParts));
        }

        /** A training-step entry. */
        public static Entry train(long step, double loss, double lr, double gradNorm, double samplesPerS,
                double epoch) {
            return train(step, loss, lr, gradNorm, samplesPerS, epoch, Map.of());
        }

        /** A training-step entry with the named parts of its loss. */
        public static Entry train(long step, double loss, double lr, double gradNorm, double samplesPerS,
                double epoch, Map<String, Double> lossParts) {
            return new Entry(step, loss, lr, gradNorm, samplesPerS, null, epoch, lossParts);
        }

        /** A validation entry. */
        public static Entry validation(long step, double valAccuracy, double epoch) {
            return new Entry(step, null, null, null, null, valAccuracy, epoch, Map.of());
        }

        /** Identifies an entry in a log: its kind (validation or training) and step. */
        String key() {
            return (valAccuracy != null ? "val:" : "train:") + step;
        }

        /** The JSON object for this entry. */
        public ObjectNode toJson() {
            ObjectNode n = MAPPER.createObjectNode();
            n.put("step", step);
            put(n, "loss", loss);
            put(n, "lr", lr);
            put(n, "grad_norm", gradNorm);
            put(n, "samples_per_s", samplesPerS);
            put(n, "val_accuracy", valAccuracy);
            put(n, "epoch", epoch);
            if (!lossParts.isEmpty()) {
                ObjectNode parts = n.putObject("loss_parts");
                lossParts.forEach((k, v) -> put(parts, k, v));
            }
            return n;
        }

        private static void put(ObjectNode n, String k, Double v) {
            if (v != null) n.put(k, v.doubleValue());
        }

        /** Parses one JSON object (unknown fields are ignored). */
        public static Entry fromJson(JsonNode n) {
            if (n == null || !n.isObject() || !n.has("step")) {
                throw new IllegalArgumentException("not a metrics entry: " + n);
            }
            Map<String, Double> parts = new LinkedHashMap<>();
            JsonNode p = n.get("loss_parts");
            if (p != null && p.isObject()) {
                p.fieldNames().forEachRemaining(k -> parts.put(k, get(p, k)));
            }
            return new Entry(n.get("step").asLong(), get(n, "loss"), get(n, "lr"), get(n, "grad_norm"),
                    get(n, "samples_per_s"), get(n, "val_accuracy"), get(n, "epoch"), parts);
        }

        private static Double get(JsonNode n, String k) {
            JsonNode v = n.get(k);
            if (v == null || v.isNull()) return null;
            if (v.isNumber()) return v.doubleValue();
            if (v.isTextual()) return Double.parseDouble(v.asText()); // "NaN", "Infinity", "-Infinity"
            throw new IllegalArgumentException("field " + k + " is not a number: " + v);
        }
    }

    private final Path file;
    private final BufferedWriter writer;
    /** (kind, step) of every entry in the file: an entry is written once (see {@link #append}). */
    private final Set<String> written = new HashSet<>();

    private MetricsLog(Path file) throws IOException {
        this.file = file;
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        for (Entry e : read(file)) {
            written.add(e.key());
        }
        boolean tornTail = false;
        if (Files.exists(file) && Files.size(file) > 0) {
            try (var ch = java.nio.channels.FileChannel.open(file, StandardOpenOption.READ)) {
                java.nio.ByteBuffer last = java.nio.ByteBuffer.allocate(1);
                ch.read(last, ch.size() - 1);
                tornTail = last.get(0) != '\n';
            }
        }
        this.writer = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND, StandardOpenOption.WRITE);
        if (tornTail) {
            // a crash left half a line: end it so new entries start on their own line (read() skips it)
            writer.write('\n');
            writer.flush();
        }
    }

    /** Opens (creating if needed) {@code file} for appending. */
    public static MetricsLog open(Path file) throws IOException {
        return new MetricsLog(file);
    }

    public Path file() {
        return file;
    }

    /**
     * Appends one line and flushes it; returns false (writing nothing) when the file already holds an entry of the
     * same kind (training step / validation) for the same step: a resumed run that repeats work done before it was
     * stopped (e.g. the final validation of a finished run) must not log it twice.
     */
    public synchronized boolean append(Entry e) throws IOException {
        if (!written.add(e.key())) {
            LOG.debug("{}: already holds the {} entry of step {}; not written again", file, e.valAccuracy() != null
                    ? "validation" : "training", e.step());
            return false;
        }
        String line;
        try {
            line = MAPPER.writeValueAsString(e.toJson());
        } catch (JsonProcessingException ex) {
            throw new IOException(ex);
        }
        writer.write(line);
        writer.write('\n');
        writer.flush();
        return true;
    }

    @Override
    public synchronized void close() throws IOException {
        writer.close();
    }

    /** Reads every entry back, in file order; a missing file is an empty list; a torn last line is skipped. */
    public static List<Entry> read(Path file) throws IOException {
        List<Entry> out = new ArrayList<>();
        if (!Files.exists(file)) return out;
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty()) continue;
            try {
                out.add(Entry.fromJson(MAPPER.readTree(line)));
            } catch (IOException | IllegalArgumentException e) {
                if (i == lines.size() - 1 || !line.endsWith("}")) {
                    LOG.warn("{}: skipping incomplete line {} ({})", file, i + 1, e.getMessage());
                } else {
                    throw new IOException(file + " line " + (i + 1) + ": " + e.getMessage(), e);
                }
            }
        }
        return out;
    }

    /**
     * Keeps only the entries with {@code step <= maxStep} (for a run resuming from the checkpoint at
     * {@code maxStep}); rewrites the file atomically. Returns how many entries were dropped.
     */
    public static int truncateAfter(Path file, long maxStep) throws IOException {
        List<Entry> all = read(file);
        List<Entry> keep = all.stream().filter(e -> e.step() <= maxStep).toList();
        if (keep.size() == all.size() && Files.exists(file)) {
            // nothing to drop; still rewrite when the file has a torn line, so appends start on a fresh line
            String text = Files.readString(file, StandardCharsets.UTF_8);
            if (text.isEmpty() || text.endsWith("\n")) return 0;
        }
        StringBuilder sb = new StringBuilder();
        for (Entry e : keep) sb.append(MAPPER.writeValueAsString(e.toJson())).append('\n');
        AtomicFiles.writeString(file, sb.toString());
        return all.size() - keep.size();
    }
}
