package dev.mm4j.eval;

import dev.mm4j.data.VqaSample;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * VQA accuracy broken down by question type, next to the majority-answer baseline on the same questions.
 *
 * @param grouping how the types were told ({@link QuestionTypes.Grouping#describe})
 * @param rows one row per type, most frequent first (the rarest merged into "other" beyond the requested count)
 * @param overall all questions together
 */
public record AccuracyByType(String grouping, List<Row> rows, Row overall) {

    /** One type: how many questions, the model's mean VQA accuracy and the baseline's. */
    public record Row(String type, long questions, double accuracy, double baseline) {}

    public AccuracyByType {
        rows = List.copyOf(rows);
    }

    /**
     * Scores {@code predictions} (by question id) against the samples' human answers. Samples without a
     * prediction (skipped by the loader) are left out.
     *
     * @param baselineAnswer the majority answer, given to every question for the baseline column
     * @param maxTypes at most this many rows; the rest are merged into {@value QuestionTypes#OTHER}
     */
    public static AccuracyByType of(Iterable<VqaSample> samples, List<PredictionsWriter.Prediction> predictions,
            String baselineAnswer, QuestionTypes.Grouping grouping, int maxTypes) {
        if (maxTypes < 1) {
            throw new IllegalArgumentException("maxTypes must be >= 1, got " + maxTypes);
        }
        Map<Long, String> byId = new HashMap<>();
        for (PredictionsWriter.Prediction p : predictions) {
            byId.put(p.questionId(), p.answer());
        }
        String base = baselineAnswer == null ? "" : baselineAnswer;
        Map<String, Sums> types = new LinkedHashMap<>();
        Sums all = new Sums();
        for (VqaSample s : samples) {
            String answer = byId.get(s.questionId());
            if (answer == null) {
                continue;
            }
            double model = VqaAccuracy.score(answer, s.answers());
            double baseline = VqaAccuracy.score(base, s.answers());
            types.computeIfAbsent(grouping.typeOf(s.question()), k -> new Sums()).add(model, baseline);
            all.add(model, baseline);
        }
        List<Map.Entry<String, Sums>> sorted = new ArrayList<>(types.entrySet());
        sorted.sort(Comparator.comparingLong((Map.Entry<String, Sums> e) -> -e.getValue().n)
                .thenComparing(e -> e.getKey().equals(QuestionTypes.OTHER)) // "other" last among equals
                .thenComparing(Map.Entry::getKey));
        List<Row> rows = new ArrayList<>();
        Sums rest = new Sums();
        for (int i = 0; i < sorted.size(); i++) {
            var e = sorted.get(i);
            boolean fits = sorted.size() <= maxTypes ? true : i < maxTypes - 1;
            if (fits && !e.getKey().equals(QuestionTypes.OTHER)) {
                rows.add(e.getValue().row(e.getKey()));
            } else {
                rest.merge(e.getValue());
            }
        }
        if (rest.n > 0) {
            rows.add(rest.row(QuestionTypes.OTHER));
        }
        return new AccuracyByType(grouping.describe(), rows, all.row("all"));
    }

    /** The type of the row with this name, or null. */
    public Row row(String type) {
        return rows.stream().filter(r -> r.type().equals(type)).findFirst().orElse(null);
    }

    /** Column names of {@link #cells}. */
    public static List<String> header() {
        return List.of("question type", "questions", "VQA accuracy", "majority baseline");
    }

    /** The table as text: one line per type, then "all". */
    public List<List<String>> cells() {
        List<List<String>> out = new ArrayList<>();
        for (Row r : rows) {
            out.add(cells(r));
        }
        out.add(cells(overall));
        return out;
    }

    private List<String> cells(Row r) {
        double share = overall.questions() == 0 ? 0 : 100.0 * r.questions() / overall.questions();
        return List.of(r.type(),
                r == overall ? Long.toString(r.questions()) : String.format(Locale.ROOT, "%d (%.0f%%)", r.questions(), share),
                String.format(Locale.ROOT, "%.2f%%", 100 * r.accuracy()),
                String.format(Locale.ROOT, "%.2f%%", 100 * r.baseline()));
    }

    private static final class Sums {
        long n;
        double model;
        double baseline;

        void add(double m, double b) {
            n++;
            model += m;
            baseline += b;
        }

        void merge(Sums o) {
            n += o.n;
            model += o.model;
            baseline += o.baseline;
        }

        Row row(String type) {
            return new Row(type, n, n == 0 ? 0 : model / n, n == 0 ? 0 : baseline / n);
        }
    }
}
