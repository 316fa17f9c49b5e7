package dev.mm4j.eval;

import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.VqaSample;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * How questions are grouped into types, for a breakdown of VQA accuracy by type. The type comes from the
 * question text alone, so it works on any TextVQA-format split:
 *
 * <ul>
 *   <li>{@link #SYNTHETIC}: the kinds of question {@code synth} writes (reading, text colour, sign colour), told
 *       from the generator's own templates;
 *   <li>{@link #firstWords}: the first words of the question ("what is the", "what does the", "how many"), like
 *       the {@code question_type} prefixes of the VQA annotations, for real data (TextVQA has no such field).
 * </ul>
 */
public final class QuestionTypes {
    private QuestionTypes() {}

    /** Gives each question text a type. */
    public interface Grouping {
        String typeOf(String question);

        /** What the types are, for a table caption. */
        String describe();
    }

    /** The type given by {@link SyntheticTextVqa.QuestionKind}; a question the generator does not write is "other". */
    public static final Grouping SYNTHETIC = new Grouping() {
        @Override
        public String typeOf(String question) {
            return SyntheticTextVqa.QuestionKind.of(question).map(SyntheticTextVqa.QuestionKind::label).orElse(OTHER);
        }

        @Override
        public String describe() {
            return "the synthetic data's question templates";
        }
    };

    /** The type of questions outside the known ones. */
    public static final String OTHER = "other";

    /** The first {@code n} words of the question, lower case, punctuation dropped ("what color is the sign?" → "what color is"). */
    public static Grouping firstWords(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("n must be >= 1, got " + n);
        }
        return new Grouping() {
            @Override
            public String typeOf(String question) {
                List<String> words = new ArrayList<>();
                for (String w : question.toLowerCase(Locale.ROOT).split("[^\\p{L}\\p{N}']+")) {
                    if (!w.isEmpty() && words.size() < n) {
                        words.add(w);
                    }
                }
                return words.isEmpty() ? OTHER : String.join(" ", words);
            }

            @Override
            public String describe() {
                return "the question's first " + n + " words";
            }
        };
    }

    /** {@link #SYNTHETIC} when every question is one {@code synth} writes, else {@link #firstWords firstWords(3)}. */
    public static Grouping detect(Iterable<VqaSample> samples) {
        boolean any = false;
        for (VqaSample s : samples) {
            if (SyntheticTextVqa.QuestionKind.of(s.question()).isEmpty()) {
                return firstWords(3);
            }
            any = true;
        }
        return any ? SYNTHETIC : firstWords(3);
    }
}
