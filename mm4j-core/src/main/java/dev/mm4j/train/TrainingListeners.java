package dev.mm4j.train;

import dev.mm4j.report.MetricsLog;
import dev.mm4j.report.ProgressReporter;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** The listeners a training run (any task) reports through: console lines, metrics.jsonl, the progress bar, RSS. */
public final class TrainingListeners {
    /** The metrics log's name in a run's output folder. */
    public static final String METRICS = "metrics.jsonl";

    private TrainingListeners() {}

    /**
     * A run's metrics log: a resumed run ({@code state.step > 0}) drops the entries of the steps it will run again; a
     * new run starts it afresh.
     */
    public static MetricsLog openMetrics(Path file, TrainState state) throws IOException {
        if (state.step > 0) {
            MetricsLog.truncateAfter(file, state.step - 1);
        } else {
            Files.deleteIfExists(file);
        }
        return MetricsLog.open(file);
    }

    /** "Loss at step i = x" per step (the tutorial's output, when asked for) and a line per validation. */
    public static TrainingListener console(PrintStream out, boolean printLoss) {
        return new TrainingListener() {
            @Override
            public void onStep(Step s) {
                if (printLoss) {
                    out.println("Loss at step " + s.index() + " = " + s.loss());
                }
            }

            @Override
            public void onValidation(Validation v) {
                out.printf("%nvalidation after step %d: VQA accuracy %.2f%% over %d questions%n", v.stepsDone(),
                        100 * v.accuracy(), v.result().count());
            }
        };
    }

    /** Appends every {@code every}-th step (with the loss's parts, if any) and every validation to the run's metrics log. */
    public static TrainingListener metrics(MetricsLog log, int every) {
        int n = Math.max(1, every);
        return new TrainingListener() {
            @Override
            public void onStep(Step s) throws IOException {
                if (s.index() % n == 0) {
                    log.append(MetricsLog.Entry.train(s.index(), s.loss(), s.lr(), s.gradNorm(), s.samplesPerSecond(),
                            s.epoch(), s.lossParts()));
                }
            }

            @Override
            public void onValidation(Validation v) throws IOException {
                log.append(MetricsLog.Entry.validation(v.stepsDone() - 1, v.accuracy(), v.epoch()));
            }
        };
    }

    /** The progress bar (or plain lines on CI): steps, loss, samples/s, ETA. */
    public static final class Progress implements TrainingListener, AutoCloseable {
        private final ProgressReporter reporter;

        public Progress(long total, long start) {
            this.reporter = ProgressReporter.forTraining("train", total, start, ProgressReporter.Mode.AUTO);
        }

        @Override
        public void onStep(Step s) {
            reporter.update(s.index() + 1, s.loss(), s.samplesPerSecond());
        }

        @Override
        public void close() {
            reporter.close();
        }
    }

    /** The process's RSS after the given step counts, printed and kept for the report. */
    public static final class Memory implements TrainingListener {
        private final PrintStream out;
        private final Set<Long> at;
        private final Map<Long, Long> rss = new LinkedHashMap<>();

        public Memory(PrintStream out, Set<Long> at) {
            this.out = out;
            this.at = at;
        }

        @Override
        public void onStep(Step s) {
            long done = s.index() + 1;
            if (at.contains(done)) {
                long bytes = Hardware.rssBytes();
                rss.put(done, bytes);
                out.printf("%nRSS after step %d: %.1f MB (of which JVM heap committed %.1f MB)%n", done, bytes / 1e6,
                        Runtime.getRuntime().totalMemory() / 1e6);
            }
        }

        /** RSS in bytes by step count, in step order. */
        public Map<Long, Long> rssAtStep() {
            return Collections.unmodifiableMap(rss);
        }
    }
}
