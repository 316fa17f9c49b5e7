package dev.mm4j.cli;

import ai.djl.Device;
import dev.mm4j.eval.LabelledBundleEvaluation;
import dev.mm4j.util.AtomicFiles;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** What evaluate and predict print for a model fine-tuned on labelled text / images ({@link LabelledBundleEvaluation}). */
final class LabelledEvaluation {
    private LabelledEvaluation() {}

    static boolean isLabelledBundle(Path model) {
        return LabelledBundleEvaluation.isLabelledBundle(model);
    }

    static int evaluate(Path model, Path data, String split, int batchSize, int limit, Path predictions, Device device,
            String precision) throws Exception {
        LabelledBundleEvaluation e = LabelledBundleEvaluation.run(model, data, split, batchSize, limit, device, precision);
        AtomicFiles.writeString(predictions, e.predictionsJsonl());
        if (e.metrics() == null) {
            System.out.printf("%d predictions (%s, split %s has no labels; head %s) written to %s%n", e.count(), data,
                    split, e.head(), predictions);
            return 0;
        }
        System.out.printf("accuracy %.2f%%, macro-F1 %.2f%% over %d examples (%s, split %s; head %s); predictions written "
                + "to %s%n", 100 * e.metrics().accuracy(), 100 * e.metrics().macroF1(), e.count(), data, split, e.head(),
                predictions);
        System.out.print(e.metrics().table("  "));
        return 0;
    }

    static int predict(Path model, Path image, String text, String textPair, int k, Device device, String precision)
            throws Exception {
        LabelledBundleEvaluation.Classified c = LabelledBundleEvaluation.classify(model, image, text, textPair, device,
                precision);
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < c.classes().size(); i++) {
            order.add(i);
        }
        order.sort(Comparator.comparingDouble(i -> -c.probabilities()[i]));
        for (int i : order.subList(0, Math.min(k, order.size()))) {
            System.out.printf("  %-30s %6.2f%%%n", c.classes().get(i), 100 * c.probabilities()[i]);
        }
        return 0;
    }
}
