package dev.mm4j.spark;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.util.AccumulatorV2;

/**
 * A Spark accumulator of skipped records by reason ("image file missing", "image undecodable", "empty
 * question", ...; the reasons of {@link dev.mm4j.data.DataLoader#skippedByReason()}). Updates from a task
 * attempt that failed are dropped by Spark, so a retried task is counted once.
 */
public final class SkipCounts extends AccumulatorV2<Map<String, Long>, Map<String, Long>> {
    private static final long serialVersionUID = 1L;
    private final TreeMap<String, Long> counts = new TreeMap<>();

    @Override
    public boolean isZero() {
        return counts.isEmpty();
    }

    @Override
    public SkipCounts copy() {
        SkipCounts c = new SkipCounts();
        c.counts.putAll(counts);
        return c;
    }

    @Override
    public void reset() {
        counts.clear();
    }

    @Override
    public void add(Map<String, Long> v) {
        v.forEach((k, n) -> counts.merge(k, n, Long::sum));
    }

    @Override
    public void merge(AccumulatorV2<Map<String, Long>, Map<String, Long>> other) {
        add(other.value());
    }

    @Override
    public Map<String, Long> value() {
        return Collections.unmodifiableMap(new TreeMap<>(counts));
    }

    /** The total over all reasons. */
    public long total() {
        return counts.values().stream().mapToLong(Long::longValue).sum();
    }
}
