package dev.mm4j.train;

import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.eval.AccuracyByType;
import dev.mm4j.eval.Evaluator;
import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.eval.QuestionTypes;
import dev.mm4j.report.ChartRenderer;
import dev.mm4j.report.HtmlReport;
import dev.mm4j.report.MetricsLog;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a finished run leaves in its output folder: {@code metrics.jsonl} (opened at the start),
 * {@code curves.png} (when a {@link ChartRenderer} is installed, as in the CLI), {@code predictions.json}
 * and {@code report.html} (when there is a validation split),
 * and the exported model bundle {@code model/}.
 */
final class RunOutputs {
    static final String METRICS = TrainingListeners.METRICS;
    static final String CURVES = "curves.png";
    static final String PREDICTIONS = "predictions.json";
    static final String REPORT = "report.html";
    static final String MODEL = "model";
    /** Questions with their images shown in the report. */
    static final int REPORT_SAMPLES = 24;
    /** At most this many question types in the by-type table (the rest are grouped as "other"). */
    static final int BY_TYPE_ROWS = 8;

    private RunOutputs() {}

    /** The metrics log: a resumed run drops the entries of the steps it will run again; a new run starts it afresh. */
    static MetricsLog openMetrics(RunSetup run) throws IOException {
        return TrainingListeners.openMetrics(run.outDir.resolve(METRICS), run.state);
    }

    static Path modelDir(RunSetup run) {
        return run.outDir.resolve(MODEL);
    }

    /** The final validation's summary: the majority-answer baseline and the accuracy by question type. */
    record Scores(double baseline, AccuracyByType byType) {}

    /**
     * Writes curves, predictions, report and the model bundle after the final validation {@code ev}
     * (null without a validation split); returns its scores (null likewise).
     */
    static Scores write(RunSetup run, Evaluator.Result ev, Map<Long, Long> rss) throws IOException {
        Path chart = null;
        ChartRenderer charts = ChartRenderer.installed().orElse(null);
        if (charts != null) {
            chart = run.outDir.resolve(CURVES);
            charts.write(MetricsLog.read(run.outDir.resolve(METRICS)), chart);
        }
        Scores scores = null;
        if (ev != null) {
            double baseline = Evaluator.constantAnswerAccuracy(run.val.samples(), run.majorityAnswer);
            scores = new Scores(baseline, AccuracyByType.of(run.val.samples(), ev.predictions(), run.majorityAnswer,
                    QuestionTypes.detect(run.val.samples()), BY_TYPE_ROWS));
            PredictionsWriter.write(run.outDir.resolve(PREDICTIONS), ev.predictions());
            report(run, ev, scores, rss, chart);
        }
        ModelBundle.Info info = new ModelBundle.Info();
        info.maxLength = run.s.maxLength;
        info.padding = run.s.padding;
        info.antialias = run.s.antialias;
        info.normalize = run.s.normalization().key();
        info.trainedSteps = run.state.step;
        ModelBundle.write(modelDir(run), run.model, run.vocab, info, run.tokenizerFile);
        return scores;
    }

    /** The HTML report; {@code chart} null when no curves were drawn. */
    private static void report(RunSetup run, Evaluator.Result ev, Scores scores, Map<Long, Long> rss, Path chart)
            throws IOException {
        double baseline = scores.baseline();
        HtmlReport r = HtmlReport.create("Multimodal4J fine-tuning report");
        r.summary("dataset", run.dataName());
        r.summary("steps", run.state.step);
        r.summary("final training loss", String.format("%.4f", run.state.lastLoss));
        r.summary("validation VQA accuracy", String.format("%.2f%% (%d questions)", 100 * ev.accuracy(), ev.count()));
        r.summary("majority-answer baseline", String.format("%.2f%% (always \"%s\")", 100 * baseline, run.majorityAnswer));
        r.summary("model parameters", String.format("%,d", run.model.parameterCount()));
        rss.forEach((k, v) -> r.summary("RSS after step " + k, String.format("%.1f MB", v / 1e6)));
        r.summary("settings", "settings.yaml");
        r.table(new HtmlReport.Table("VQA accuracy by question type", "types from " + scores.byType().grouping(),
                AccuracyByType.header(), scores.byType().cells()));
        if (chart != null) {
            r.chart(chart);
        }
        for (Evaluator.Answered a : ev.answered()) {
            byte[] img;
            try {
                img = a.sample().image().readBytes();
            } catch (IOException e) {
                img = null;
            }
            r.sample(HtmlReport.Sample.withImageBytes(img, a.sample().question(), a.prediction(), a.sample().answers(),
                    a.score()));
        }
        r.write(run.outDir.resolve(REPORT));
    }
}
