package dev.mm4j.data;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The tutorial's training label: the most common human answer, mapped through the answer vocab. */
public final class Labels {
    private Labels() {}

    /**
     * The most frequent answer; ties go to the answer that occurs FIRST in the list (what
     * {@code collections.Counter(answers).most_common(1)} returns). {@code null} for no answers.
     */
    public static String majority(List<String> answers) {
        if (answers == null || answers.isEmpty()) {
            return null;
        }
        Map<String, Integer> counts = new HashMap<>();
        String best = null;
        int bestCount = 0;
        for (String a : answers) {
            counts.merge(a, 1, Integer::sum);
        }
        // walk in order so the first-occurring answer wins a tie
        for (String a : answers) {
            int c = counts.get(a);
            if (c > bestCount) {
                best = a;
                bestCount = c;
            }
        }
        return best;
    }

    /** The vocab index of the majority answer; 0 (unknown) if it is not in the vocab or there are no answers. */
    public static int label(List<String> answers, AnswerVocab vocab) {
        String m = majority(answers);
        return m == null ? 0 : vocab.indexOf(m);
    }
}
