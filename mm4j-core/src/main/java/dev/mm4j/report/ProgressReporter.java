package dev.mm4j.report;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Progress for long jobs (training steps, downloaded bytes). On a terminal it draws a bar (a {@link ConsoleBar}:
 * the CLI module installs {@code me.tongfei:progressbar}'s; plain lines when none is installed) with rate/ETA
 * and an extra message (loss, samples/s); when the process has
 * no console (CI, output piped to a file) it degrades to plain log lines printed at most every
 * {@code plainInterval}, plus one at the end. {@code MM4J_PROGRESS=bar|plain|off} overrides the choice.
 *
 * <p>Not thread-safe: update it from one thread.
 */
public final class ProgressReporter implements AutoCloseable {

    /** How progress is shown. */
    public enum Mode {
        /** bar on a console, plain lines otherwise (or what {@code MM4J_PROGRESS} says). */
        AUTO,
        BAR,
        PLAIN,
        OFF;

        /** AUTO → BAR or PLAIN (or whatever {@code MM4J_PROGRESS} names); other modes stay. */
        public Mode resolve() {
            if (this != AUTO) return this;
            String env = System.getenv("MM4J_PROGRESS");
            if (env != null && !env.isBlank()) {
                try {
                    Mode m = valueOf(env.trim().toUpperCase(Locale.ROOT));
                    if (m != AUTO) return m;
                } catch (IllegalArgumentException ignored) {
                    // fall through to detection
                }
            }
            return System.console() != null ? BAR : PLAIN;
        }
    }

    public static final Duration DEFAULT_PLAIN_INTERVAL = Duration.ofSeconds(30);

    private final String task;
    private final long total;
    private final String unit;
    private final long unitSize;
    private final Mode mode;
    private final PrintStream out;
    private final long plainIntervalNanos;
    private final LongSupplier nanoClock;
    private final long startValue;
    private final long startNanos;
    private final ConsoleBar bar;
    private long current;
    private long lastPrintNanos;
    private boolean printedAny;
    private String extra = "";
    private boolean closed;

    /**
     * @param task a short name shown first ("train", a file name)
     * @param total the goal (steps, bytes), or -1 when unknown
     * @param unit the unit's name ("step", "MiB")
     * @param unitSize how many counted items make one unit (1 for steps, {@code 1 << 20} for MiB)
     * @param start the value counting starts from (a resumed run's step, bytes already on disk)
     * @param mode how to show progress
     * @param out where the bar / lines go (normally System.err)
     * @param plainInterval the least time between two plain lines
     * @param nanoClock a monotonic clock in ns ({@code System::nanoTime}; injectable for tests)
     */
    public ProgressReporter(String task, long total, String unit, long unitSize, long start, Mode mode,
            PrintStream out, Duration plainInterval, LongSupplier nanoClock) {
        this.task = task;
        this.total = total;
        this.unit = unit;
        this.unitSize = Math.max(1, unitSize);
        Mode resolved = mode.resolve();
        ConsoleBar.Factory bars = resolved == Mode.BAR ? ConsoleBar.installed().orElse(null) : null;
        this.mode = resolved == Mode.BAR && bars == null ? Mode.PLAIN : resolved;
        this.out = out;
        this.plainIntervalNanos = plainInterval.toNanos();
        this.nanoClock = nanoClock;
        this.startValue = start;
        this.current = start;
        this.startNanos = nanoClock.getAsLong();
        this.bar = bars == null ? null : bars.open(task, total, unit, unitSize, start, out);
    }

    /** A reporter for training steps on System.err ({@code total} optimizer steps, resuming at {@code start}). */
    public static ProgressReporter forTraining(String task, long totalSteps, long start, Mode mode) {
        return new ProgressReporter(task, totalSteps, "step", 1, start, mode, System.err,
                DEFAULT_PLAIN_INTERVAL, System::nanoTime);
    }

    /** A reporter for a download on System.err ({@code totalBytes} -1 when unknown). */
    public static ProgressReporter forBytes(String task, long totalBytes, long start, Mode mode) {
        return new ProgressReporter(task, totalBytes, "MiB", 1L << 20, start, mode, System.err,
                Duration.ofSeconds(10), System::nanoTime);
    }

    public long current() {
        return current;
    }

    /** Sets the progress to {@code value}. */
    public void stepTo(long value) {
        current = value;
        if (bar != null) bar.stepTo(value);
        maybePrint(false);
    }

    /** Adds {@code delta} to the progress. */
    public void stepBy(long delta) {
        stepTo(current + delta);
    }

    /** Sets the text shown after the counts (e.g. "loss 1.23"). */
    public void setExtra(String message) {
        extra = message == null ? "" : message;
        if (bar != null) bar.setExtraMessage(extra);
    }

    /** Training: moves to {@code step} and shows loss and samples/s (NaN values are left out). */
    public void update(long step, double loss, double samplesPerSec) {
        StringBuilder sb = new StringBuilder();
        if (!Double.isNaN(loss)) sb.append(String.format(Locale.ROOT, "loss %.4f", loss));
        if (!Double.isNaN(samplesPerSec)) {
            if (sb.length() > 0) sb.append(" | ");
            sb.append(String.format(Locale.ROOT, "%.1f samples/s", samplesPerSec));
        }
        setExtra(sb.toString());
        stepTo(step);
    }

    private void maybePrint(boolean force) {
        if (mode != Mode.PLAIN) return;
        long now = nanoClock.getAsLong();
        if (force || !printedAny || now - lastPrintNanos >= plainIntervalNanos) {
            out.println(plainLine(now));
            out.flush();
            lastPrintNanos = now;
            printedAny = true;
        }
    }

    /** The plain log line for the current state (what PLAIN mode prints). */
    public String plainLine() {
        return plainLine(nanoClock.getAsLong());
    }

    private String plainLine(long now) {
        StringBuilder sb = new StringBuilder();
        sb.append('[').append(task).append("] ").append(fmtCount(current));
        if (total >= 0) {
            sb.append('/').append(fmtCount(total));
            double pct = total == 0 ? 100.0 : 100.0 * current / total;
            sb.append(String.format(Locale.ROOT, " (%.1f%%)", pct));
        }
        if (unitSize == 1) sb.append(' ').append(unit).append(current == 1 ? "" : "s");
        else sb.append(' ').append(unit);
        if (!extra.isEmpty()) sb.append(" | ").append(extra);
        long elapsed = now - startNanos;
        sb.append(" | elapsed ").append(fmtDuration(elapsed));
        long done = current - startValue;
        if (total >= 0 && done > 0 && current < total) {
            long eta = (long) ((double) elapsed * (total - current) / done);
            sb.append(" | ETA ").append(fmtDuration(eta));
        }
        return sb.toString();
    }

    private String fmtCount(long v) {
        if (unitSize == 1) return Long.toString(v);
        return String.format(Locale.ROOT, "%.1f", (double) v / unitSize);
    }

    static String fmtDuration(long nanos) {
        long s = Math.max(0, nanos / 1_000_000_000L);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    }

    /** Ends the bar, or prints a final plain line. Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (bar != null) bar.close();
        else maybePrint(true);
    }
}
