package dev.mm4j.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Batch;
import dev.mm4j.data.Labels;
import dev.mm4j.data.VqaSample;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.ModelStep;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/** Runs a classification model over a split and scores it with the official VQA accuracy. */
public final class Evaluator {
    private Evaluator() {}

    /** One answered question (kept for reports). */
    public record Answered(VqaSample sample, String prediction, double score) {}

    /**
     * @param accuracy mean VQA accuracy over the questions
     * @param predictions in the TextVQA server's format
     * @param answered the first {@code keep} questions with their predictions
     */
    public record Result(double accuracy, int count, List<PredictionsWriter.Prediction> predictions,
            List<Answered> answered) {}

    /** Evaluates over the batches of {@code batches} (eval mode, no gradients). */
    public static Result evaluate(FlavaForClassification model, Iterator<Batch> batches, AnswerVocab vocab,
            NDManager manager, int keep) {
        boolean wasTraining = model.isTraining();
        model.setTraining(false);
        VqaAccuracy.Accumulator acc = new VqaAccuracy.Accumulator();
        List<PredictionsWriter.Prediction> predictions = new ArrayList<>();
        List<Answered> answered = new ArrayList<>();
        try {
            while (batches.hasNext()) {
                Batch b = batches.next();
                long[] best;
                try (ModelStep step = ModelStep.open(manager)) {
                    ModelStep.Inputs in = step.unlabelled(b);
                    NDArray logits = model.forward(in.image(), in.text(), null).logits();
                    best = logits.argMax(-1).toLongArray();
                }
                for (int i = 0; i < b.size(); i++) {
                    VqaSample s = b.samples().get(i);
                    String answer = vocab.answer((int) best[i]);
                    double score = acc.add(answer, s.answers());
                    predictions.add(new PredictionsWriter.Prediction(s.questionId(), answer));
                    if (answered.size() < keep) {
                        answered.add(new Answered(s, answer, score));
                    }
                }
            }
        } finally {
            model.setTraining(wasTraining);
        }
        return new Result(acc.accuracy(), (int) acc.count(), predictions, answered);
    }

    /** The answer a majority-answer baseline gives to every question: the most common training label. */
    public static String majorityAnswer(Iterable<VqaSample> train) {
        Map<String, Integer> counts = new HashMap<>();
        String best = null;
        int bestCount = 0;
        for (VqaSample s : train) {
            String a = Labels.majority(s.answers());
            if (a == null) {
                continue;
            }
            int c = counts.merge(a, 1, Integer::sum);
            if (c > bestCount) {
                best = a;
                bestCount = c;
            }
        }
        return best;
    }

    /** VQA accuracy of answering {@code answer} to every question of {@code samples}. */
    public static double constantAnswerAccuracy(Iterable<VqaSample> samples, String answer) {
        VqaAccuracy.Accumulator acc = new VqaAccuracy.Accumulator();
        for (VqaSample s : samples) {
            acc.add(answer == null ? "" : answer, s.answers());
        }
        return acc.accuracy();
    }
}
