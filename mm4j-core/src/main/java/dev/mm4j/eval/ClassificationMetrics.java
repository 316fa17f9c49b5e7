package dev.mm4j.eval;

import dev.mm4j.report.TextTable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Accuracy, macro-F1 and per-class precision / recall / F1 of a classification (scikit-learn's definitions: a class's
 * F1 is 0 when it has no true positive; the macro average runs over the classes that occur in the gold labels or the
 * predictions).
 *
 * @param accuracy the share of correct predictions, in [0, 1]
 * @param macroF1 the unweighted mean of the per-class F1 over the classes that occur
 * @param perClass every class, in class-id order
 * @param count the examples scored
 */
public record ClassificationMetrics(double accuracy, double macroF1, List<PerClass> perClass, int count) {

    /** One class's figures; {@code support} is its number of gold examples, {@code predicted} how often it was predicted. */
    public record PerClass(String name, double precision, double recall, double f1, int support, int predicted) {}

    /**
     * @param gold the gold class ids
     * @param predicted the predicted class ids (the same length)
     * @param classes the class names, by id
     */
    public static ClassificationMetrics of(int[] gold, int[] predicted, List<String> classes) {
        if (gold.length != predicted.length) {
            throw new IllegalArgumentException(gold.length + " gold labels but " + predicted.length + " predictions");
        }
        int k = classes.size();
        int[] tp = new int[k];
        int[] support = new int[k];
        int[] pred = new int[k];
        int correct = 0;
        for (int i = 0; i < gold.length; i++) {
            support[gold[i]]++;
            pred[predicted[i]]++;
            if (gold[i] == predicted[i]) {
                tp[gold[i]]++;
                correct++;
            }
        }
        List<PerClass> per = new ArrayList<>(k);
        double f1Sum = 0;
        int present = 0;
        for (int c = 0; c < k; c++) {
            double p = pred[c] == 0 ? 0 : (double) tp[c] / pred[c];
            double r = support[c] == 0 ? 0 : (double) tp[c] / support[c];
            double f1 = tp[c] == 0 ? 0 : 2 * p * r / (p + r);
            per.add(new PerClass(classes.get(c), p, r, f1, support[c], pred[c]));
            if (support[c] > 0 || pred[c] > 0) {
                f1Sum += f1;
                present++;
            }
        }
        return new ClassificationMetrics(gold.length == 0 ? 0 : (double) correct / gold.length,
                present == 0 ? 0 : f1Sum / present, List.copyOf(per), gold.length);
    }

    /** The accuracy of always predicting the most frequent class of {@code trainGold} on {@code gold}. */
    public static double majorityBaseline(int[] trainGold, int[] gold, int classes) {
        int m = majorityClass(trainGold, classes);
        int hit = 0;
        for (int g : gold) {
            hit += g == m ? 1 : 0;
        }
        return gold.length == 0 ? 0 : (double) hit / gold.length;
    }

    /** The most frequent class id (the lowest id among ties). */
    public static int majorityClass(int[] gold, int classes) {
        int[] n = new int[classes];
        for (int g : gold) {
            n[g]++;
        }
        int m = 0;
        for (int c = 1; c < classes; c++) {
            if (n[c] > n[m]) {
                m = c;
            }
        }
        return m;
    }

    /** The per-class table: class, precision, recall, F1, support. */
    public String table(String indent) {
        List<List<String>> rows = new ArrayList<>();
        for (PerClass c : perClass) {
            rows.add(List.of(c.name(), pct(c.precision()), pct(c.recall()), pct(c.f1()), String.valueOf(c.support())));
        }
        return TextTable.format(indent, List.of("class", "precision", "recall", "F1", "support"), rows);
    }

    /** As JSON: accuracy, macro_f1, count and per_class. */
    public String toJson() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "{\"accuracy\": %.6f, \"macro_f1\": %.6f, \"count\": %d, \"per_class\": [",
                accuracy, macroF1, count));
        for (int i = 0; i < perClass.size(); i++) {
            PerClass c = perClass.get(i);
            sb.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT,
                    "{\"class\": %s, \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"support\": %d, \"predicted\": %d}",
                    quote(c.name()), c.precision(), c.recall(), c.f1(), c.support(), c.predicted()));
        }
        return sb.append("]}\n").toString();
    }

    private static String pct(double v) {
        return String.format(Locale.ROOT, "%.1f%%", 100 * v);
    }

    static String quote(String s) {
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(s);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
