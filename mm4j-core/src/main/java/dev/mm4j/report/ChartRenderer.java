package dev.mm4j.report;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * Draws a run's training curves as a PNG. The core module holds no charting library: the CLI module installs the
 * JFreeChart renderer ({@code cli.charts.Charts} in mm4j-cli) through {@link ServiceLoader}; without one a run writes no
 * {@code curves.png} and its report has no chart (metrics.jsonl holds the same numbers).
 */
public interface ChartRenderer {

    /** Writes the loss (and validation accuracy) by step of {@code metrics} to {@code png}, atomically. */
    void write(List<MetricsLog.Entry> metrics, Path png) throws IOException;

    /** The installed renderer, if any. */
    static Optional<ChartRenderer> installed() {
        return ServiceLoader.load(ChartRenderer.class, ChartRenderer.class.getClassLoader()).findFirst();
    }
}
