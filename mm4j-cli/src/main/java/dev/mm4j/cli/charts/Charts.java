package dev.mm4j.cli.charts;

import dev.mm4j.report.ChartRenderer;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.util.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * Training charts as PNG (JFreeChart, headless): the loss per step (raw and smoothed), each named part of it when it
 * has parts (pretraining's losses by TorchMultimodal's names), and the validation accuracy per step, sharing the step
 * axis. Files are written atomically.
 */
public final class Charts implements ChartRenderer {
    static {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    public static final int DEFAULT_WIDTH = 1000;
    public static final int DEFAULT_HEIGHT = 700;
    /** Weight of the exponential moving average for the smoothed loss (TensorBoard-style, bias-corrected). */
    public static final double DEFAULT_SMOOTHING = 0.9;

    /** The renderer the CLI module installs (META-INF/services); the static methods draw without one. */
    public Charts() {}

    @Override
    public void write(List<MetricsLog.Entry> metrics, Path png) throws IOException {
        writeLossAccuracyPng(metrics, png);
    }

    /** {@link #writeLossAccuracyPng(List, Path, int, int)} at 1000 x 700. */
    public static void writeLossAccuracyPng(List<MetricsLog.Entry> metrics, Path png) throws IOException {
        writeLossAccuracyPng(metrics, png, DEFAULT_WIDTH, DEFAULT_HEIGHT);
    }

    /**
     * Draws the loss (entries with a finite loss) and its smoothed line, and below it the validation accuracy
     * in percent (entries with {@code val_accuracy}; the panel is left out when there are none), and writes
     * a {@code width x height} PNG atomically.
     */
    public static void writeLossAccuracyPng(List<MetricsLog.Entry> metrics, Path png, int width, int height)
            throws IOException {
        JFreeChart chart = lossAccuracyChart(metrics);
        AtomicFiles.write(png, out -> ChartUtils.writeChartAsPNG(out, chart, width, height));
    }

    /** The chart itself (for callers that render it elsewhere). */
    public static JFreeChart lossAccuracyChart(List<MetricsLog.Entry> metrics) {
        XYSeries loss = new XYSeries("loss", true, true);
        XYSeries smooth = new XYSeries("loss (smoothed)", true, true);
        XYSeries acc = new XYSeries("val accuracy %", true, true);
        double ema = 0;
        int n = 0;
        for (MetricsLog.Entry e : metrics) {
            if (e.loss() != null && Double.isFinite(e.loss())) {
                loss.addOrUpdate((double) e.step(), e.loss().doubleValue());
                n++;
                ema = DEFAULT_SMOOTHING * ema + (1 - DEFAULT_SMOOTHING) * e.loss();
                smooth.addOrUpdate((double) e.step(), ema / (1 - Math.pow(DEFAULT_SMOOTHING, n)));
            }
            if (e.valAccuracy() != null && Double.isFinite(e.valAccuracy())) {
                acc.addOrUpdate((double) e.step(), 100.0 * e.valAccuracy());
            }
        }
        NumberAxis stepAxis = new NumberAxis("step");
        stepAxis.setAutoRangeIncludesZero(false);
        CombinedDomainXYPlot plot = new CombinedDomainXYPlot(stepAxis);
        plot.setGap(12);

        XYSeriesCollection lossData = new XYSeriesCollection();
        lossData.addSeries(loss);
        lossData.addSeries(smooth);
        NumberAxis lossAxis = new NumberAxis("loss");
        lossAxis.setAutoRangeIncludesZero(false);
        XYLineAndShapeRenderer lossRenderer = new XYLineAndShapeRenderer(true, false);
        lossRenderer.setSeriesPaint(0, new Color(120, 160, 220));
        lossRenderer.setSeriesStroke(0, new BasicStroke(1.0f));
        lossRenderer.setSeriesPaint(1, new Color(20, 60, 160));
        lossRenderer.setSeriesStroke(1, new BasicStroke(2.5f));
        XYPlot lossPlot = new XYPlot(lossData, null, lossAxis, lossRenderer);
        style(lossPlot);
        plot.add(lossPlot, 3);

        // a loss in named parts (pretraining: each objective, logged at the steps of the source that trains it)
        java.util.Map<String, XYSeries> parts = new java.util.LinkedHashMap<>();
        for (MetricsLog.Entry e : metrics) {
            e.lossParts().forEach((name, v) -> {
                if (v != null && Double.isFinite(v)) {
                    parts.computeIfAbsent(name, k -> new XYSeries(k, true, true)).addOrUpdate((double) e.step(), v.doubleValue());
                }
            });
        }
        if (!parts.isEmpty()) {
            XYSeriesCollection partData = new XYSeriesCollection();
            parts.values().forEach(partData::addSeries);
            NumberAxis partAxis = new NumberAxis("loss by part");
            partAxis.setAutoRangeIncludesZero(true);
            XYLineAndShapeRenderer partRenderer = new XYLineAndShapeRenderer(true, false);
            for (int i = 0; i < parts.size(); i++) {
                partRenderer.setSeriesStroke(i, new BasicStroke(1.5f));
            }
            XYPlot partPlot = new XYPlot(partData, null, partAxis, partRenderer);
            style(partPlot);
            plot.add(partPlot, 3);
        }

        if (acc.getItemCount() > 0) {
            NumberAxis accAxis = new NumberAxis("val accuracy (%)");
            accAxis.setAutoRangeIncludesZero(false);
            XYLineAndShapeRenderer accRenderer = new XYLineAndShapeRenderer(true, true);
            accRenderer.setSeriesPaint(0, new Color(200, 90, 20));
            accRenderer.setSeriesStroke(0, new BasicStroke(2.0f));
            XYPlot accPlot = new XYPlot(new XYSeriesCollection(acc), null, accAxis, accRenderer);
            style(accPlot);
            plot.add(accPlot, 2);
        }
        JFreeChart chart = new JFreeChart("Training", new Font(Font.SANS_SERIF, Font.BOLD, 16), plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    private static void style(XYPlot p) {
        p.setBackgroundPaint(Color.WHITE);
        p.setDomainGridlinePaint(new Color(220, 220, 220));
        p.setRangeGridlinePaint(new Color(220, 220, 220));
    }
}
