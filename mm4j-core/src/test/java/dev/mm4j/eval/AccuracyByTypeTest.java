package dev.mm4j.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AccuracyByTypeTest {
    @TempDir Path tmp;

    static VqaSample q(long id, String question, String... answers) {
        return new VqaSample(id, question, "img" + id, List.of(answers), null, Map.of(), "test record " + id);
    }

    static String[] ten(String a, int times, String other) {
        String[] out = new String[10];
        for (int i = 0; i < 10; i++) {
            out[i] = i < times ? a : other;
        }
        return out;
    }

    @Test
    void scoresEachTypeAndTheBaselineOnTheSameQuestions() {
        List<VqaSample> samples = List.of(
                q(1, "what does the sign say?", ten("stop", 10, "stop")),
                q(2, "what is written on the plate?", ten("bank", 2, "bnak")), // 2 matches: 0.6
                q(3, "what colour is the word?", ten("red", 10, "red")),
                q(4, "what color is the label?", ten("blue", 9, "red")), // baseline "red", 1 match: 0.3
                q(5, "what color is the sign?", ten("green", 10, "green")));
        List<PredictionsWriter.Prediction> preds = List.of(
                new PredictionsWriter.Prediction(1, "stop"), new PredictionsWriter.Prediction(2, "bank"),
                new PredictionsWriter.Prediction(3, "blue"), new PredictionsWriter.Prediction(4, "blue"),
                new PredictionsWriter.Prediction(5, "green"));
        AccuracyByType t = AccuracyByType.of(samples, preds, "red", QuestionTypes.SYNTHETIC, 8);

        assertEquals(List.of("reading", "sign colour", "text colour"), t.rows().stream().map(AccuracyByType.Row::type).toList());
        AccuracyByType.Row reading = t.row("reading");
        assertEquals(2, reading.questions());
        assertEquals((1.0 + 0.6) / 2, reading.accuracy(), 1e-12);
        assertEquals(0.0, reading.baseline(), 1e-12);
        AccuracyByType.Row sign = t.row("sign colour");
        assertEquals(1.0, sign.accuracy(), 1e-12);
        assertEquals(0.3 / 2, sign.baseline(), 1e-12);
        AccuracyByType.Row text = t.row("text colour");
        assertEquals(0.0, text.accuracy(), 1e-12);
        assertEquals(1.0, text.baseline(), 1e-12);
        assertEquals(5, t.overall().questions());
        assertEquals((1 + 0.6 + 0 + 1 + 1) / 5, t.overall().accuracy(), 1e-12);
        assertEquals((1 + 0.3) / 5, t.overall().baseline(), 1e-12);
        // the overall figure is the Evaluator's: the mean VQA accuracy over all questions
        VqaAccuracy.Accumulator acc = new VqaAccuracy.Accumulator();
        for (int i = 0; i < samples.size(); i++) {
            acc.add(preds.get(i).answer(), samples.get(i).answers());
        }
        assertEquals(acc.accuracy(), t.overall().accuracy(), 1e-12);
        assertEquals(Evaluator.constantAnswerAccuracy(samples, "red"), t.overall().baseline(), 1e-12);

        assertEquals(List.of("question type", "questions", "VQA accuracy", "majority baseline"), AccuracyByType.header());
        assertEquals(List.of(
                List.of("reading", "2 (40%)", "80.00%", "0.00%"),
                List.of("sign colour", "2 (40%)", "100.00%", "15.00%"),
                List.of("text colour", "1 (20%)", "0.00%", "100.00%"),
                List.of("all", "5", "72.00%", "26.00%")), t.cells());
    }

    @Test
    void questionsWithoutPredictionAreLeftOutAndRareTypesMergeIntoOther() {
        List<VqaSample> samples = new ArrayList<>();
        List<PredictionsWriter.Prediction> preds = new ArrayList<>();
        String[] questions = {"what is the brand?", "what is the number?", "what is the time?", "how many people?",
            "how many cars?", "who is this?", "where is it?", "what is the name?"};
        for (int i = 0; i < questions.length; i++) {
            samples.add(q(i, questions[i], ten("x", 10, "x")));
            if (i != 7) {
                preds.add(new PredictionsWriter.Prediction(i, i % 2 == 0 ? "x" : "y"));
            }
        }
        AccuracyByType t = AccuracyByType.of(samples, preds, "x", QuestionTypes.firstWords(2), 3);
        // "what is" 3 (ids 0,1,2: the 4th, id 7, has no prediction), "how many" 2, then who is + where is -> other
        assertEquals(List.of("what is", "how many", "other"), t.rows().stream().map(AccuracyByType.Row::type).toList());
        assertEquals(3, t.row("what is").questions());
        assertEquals(2.0 / 3, t.row("what is").accuracy(), 1e-12);
        assertEquals(2, t.row("other").questions());
        assertEquals(7, t.overall().questions());
        assertEquals(1.0, t.overall().baseline(), 1e-12);
        assertNull(t.row("who is"));
        assertThrows(IllegalArgumentException.class, () -> AccuracyByType.of(samples, preds, "x", QuestionTypes.firstWords(2), 0));
    }

    @Test
    void firstWordsIsLowerCaseWithoutPunctuation() {
        QuestionTypes.Grouping g = QuestionTypes.firstWords(3);
        assertEquals("what color is", g.typeOf("What color is the sign?"));
        assertEquals("what's the brand", g.typeOf("What's the brand?"));
        assertEquals("how many", g.typeOf("how many?"));
        assertEquals(QuestionTypes.OTHER, g.typeOf("?!"));
        assertThrows(IllegalArgumentException.class, () -> QuestionTypes.firstWords(0));
    }

    @Test
    void generatedQuestionsAreToldBackToTheirKindAndOtherDataFallsBackToFirstWords() throws Exception {
        Path data = tmp.resolve("synth");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 300, 60, 0, 5L, 64, 48, 2));
        Map<String, Integer> counts = new HashMap<>();
        try (VqaDataset ds = TextVqaDatasets.open(data, "train")) {
            assertSame(QuestionTypes.SYNTHETIC, QuestionTypes.detect(ds));
            for (VqaSample s : ds) {
                String type = QuestionTypes.SYNTHETIC.typeOf(s.question());
                counts.merge(type, 1, Integer::sum);
                // the type agrees with the answers: words for reading, colours for the others
                String truth = dev.mm4j.data.Labels.majority(s.answers());
                boolean colour = SyntheticTextVqa.COLOURS.contains(truth);
                assertEquals(type.equals("reading"), !colour, s.question() + " -> " + truth);
            }
        }
        assertEquals(3, counts.size(), counts.toString());
        assertEquals(300, counts.values().stream().mapToInt(Integer::intValue).sum());
        assertEquals(QuestionTypes.OTHER, QuestionTypes.SYNTHETIC.typeOf("what does the poster say?"));
        List<VqaSample> real = List.of(q(1, "what does the sign say?", "a"), q(2, "what brand is this camera?", "b"));
        assertEquals("the question's first 3 words", QuestionTypes.detect(real).describe());
        assertEquals("the question's first 3 words", QuestionTypes.detect(Collections.emptyList()).describe());
    }
}
