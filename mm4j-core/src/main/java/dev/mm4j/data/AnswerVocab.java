package dev.mm4j.data;

import dev.mm4j.util.FileTrees;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The answer vocabulary: one answer per line, class index = line number (0-based). In TextVQA's
 * {@code answers_textvqa_more_than_1.txt} line 0 is {@code <unk>}, so class 0 means "unknown answer".
 *
 * <p>Only the line ending ({@code \n} or {@code \r\n}) is stripped. A repeated line maps to its
 * LATER index (like the tutorial's {@code {a: i for i, a in enumerate(lines)}}), with a warning.
 */
public final class AnswerVocab {
    private static final Logger LOG = LoggerFactory.getLogger(AnswerVocab.class);

    private final List<String> answers;
    private final Map<String, Integer> index;
    private final List<String> duplicates;

    private AnswerVocab(List<String> answers, Map<String, Integer> index, List<String> duplicates) {
        this.answers = answers;
        this.index = index;
        this.duplicates = duplicates;
    }

    /** Line 0 of a built vocabulary: the class of every answer not in it. */
    public static final String UNKNOWN = "<unk>";

    /**
     * Builds a vocabulary from training data, as people do for new VQA data: every human answer of every question is
     * counted; those given at least {@code minCount} times become classes, most frequent first, ties in the order
     * they first occur. Line 0 is {@value #UNKNOWN}. Empty answers, answers holding a line break and
     * {@value #UNKNOWN} itself are not counted.
     *
     * @param source names the data in messages
     * @throws IllegalArgumentException when {@code minCount < 1}, or no answer reaches it
     */
    public static AnswerVocab build(Iterable<VqaSample> samples, int minCount, String source) {
        if (minCount < 1) {
            throw new IllegalArgumentException("vocab_min_count must be at least 1, got " + minCount);
        }
        Map<String, Integer> counts = new java.util.LinkedHashMap<>();
        for (VqaSample s : samples) {
            for (String a : s.answers()) {
                if (!a.isEmpty() && !a.equals(UNKNOWN) && a.indexOf('\n') < 0 && a.indexOf('\r') < 0) {
                    counts.merge(a, 1, Integer::sum);
                }
            }
        }
        List<String> lines = new ArrayList<>();
        lines.add(UNKNOWN);
        counts.entrySet().stream()
                .filter(e -> e.getValue() >= minCount)
                .sorted(Map.Entry.<String, Integer>comparingByValue().reversed()) // stable: ties keep first-seen order
                .forEach(e -> lines.add(e.getKey()));
        if (lines.size() == 1) {
            throw new IllegalArgumentException(source + ": no answer is given at least " + minCount + " time(s) ("
                    + counts.size() + " distinct answers); lower vocab_min_count");
        }
        return fromText(String.join("\n", lines) + "\n", source);
    }

    /** The vocabulary as its file holds it: one answer per line, line index = class id. */
    public String toText() {
        return answers.isEmpty() ? "" : String.join("\n", answers) + "\n";
    }

    public static AnswerVocab load(Path path) throws IOException {
        String text = Files.readString(FileTrees.notADirectory(path, "answer vocabulary"), StandardCharsets.UTF_8);
        if (splitLines(text).isEmpty()) {
            throw new IOException(path + ": the answer vocabulary is empty (expected one answer per line)");
        }
        return fromText(text, path.toString());
    }

    /** Builds a vocab from file contents; {@code source} names it in messages. An empty text is refused. */
    public static AnswerVocab fromText(String text, String source) {
        List<String> lines = splitLines(text);
        if (lines.isEmpty()) {
            throw new IllegalArgumentException(source + ": the answer vocabulary is empty (expected one answer per line)");
        }
        Map<String, Integer> index = new HashMap<>(lines.size() * 2);
        List<String> duplicates = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            Integer previous = index.put(lines.get(i), i);
            if (previous != null) {
                duplicates.add(lines.get(i));
                LOG.warn("{}: answer '{}' appears on line {} and again on line {}; index {} is used (the later one)",
                        source, lines.get(i), previous + 1, i + 1, i);
            }
        }
        return new AnswerVocab(Collections.unmodifiableList(lines), index, List.copyOf(duplicates));
    }

    /** Splits like Python's {@code f.readlines()} + stripping "\n" / "\r\n" only; no final empty line. */
    static List<String> splitLines(String text) {
        List<String> lines = new ArrayList<>();
        int start = 0;
        int n = text.length();
        while (start < n) {
            int nl = text.indexOf('\n', start);
            int end = nl < 0 ? n : nl;
            int contentEnd = (nl >= 0 && end > start && text.charAt(end - 1) == '\r') ? end - 1 : end;
            lines.add(text.substring(start, contentEnd));
            start = nl < 0 ? n : nl + 1;
        }
        return lines;
    }

    /** The answers that occur on more than one line (one entry per repeat), in file order. */
    public List<String> duplicates() {
        return duplicates;
    }

    /** Number of lines (classes). */
    public int size() {
        return answers.size();
    }

    /** The class index of an answer, 0 (unknown) if absent. */
    public int indexOf(String answer) {
        Integer i = answer == null ? null : index.get(answer);
        return i == null ? 0 : i;
    }

    /** Whether the answer is in the vocab at all. */
    public boolean contains(String answer) {
        return answer != null && index.containsKey(answer);
    }

    /** The answer on line {@code index}. */
    public String answer(int index) {
        if (index < 0 || index >= answers.size()) {
            throw new IndexOutOfBoundsException("answer index " + index + " out of range [0, " + answers.size() + ")");
        }
        return answers.get(index);
    }
}
