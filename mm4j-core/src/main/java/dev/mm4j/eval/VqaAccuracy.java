package dev.mm4j.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The official VQA / TextVQA accuracy: answers are normalized as in {@code vqaEval.py}
 * ({@code processPunctuation} then {@code processDigitArticle}, after replacing {@code \n}/{@code \t} with a
 * space and stripping), and a prediction scores the mean, over the 10 leave-one-out subsets of the human
 * answers, of {@code min(1, #matches among the other 9 / 3)}.
 *
 * <p>Both the prediction and the human answers get the full normalization (as the TextVQA evaluator does,
 * and as {@code vqaEval.py} does whenever the human answers disagree). Quirks of the script are kept on
 * purpose: {@code periodStrip}'s {@code (?!<=\d)} is a look-ahead (not a look-behind), {@code re.sub}'s third
 * argument {@code re.UNICODE} (= 32) is a count, so at most 32 periods are removed, and the capitalized
 * contraction keys ({@code "Im"}, {@code "Ive"}, ...) can never match after lower-casing.
 *
 * <p>Thread-safe: everything is static and immutable; {@link Accumulator} is not thread-safe.
 */
public final class VqaAccuracy {
    private VqaAccuracy() {}

    private static final List<String> PUNCT = List.of(
            ";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?",
            "!");
    // Python 3 str patterns: \d is Unicode-aware
    private static final Pattern COMMA_STRIP = Pattern.compile("(\\d)(,)(\\d)", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern PERIOD_STRIP =
            Pattern.compile("(?!<=\\d)(\\.)(?!\\d)", Pattern.UNICODE_CHARACTER_CLASS);
    /** {@code re.sub(..., re.UNICODE)} passes re.UNICODE (= 32) as the count argument. */
    private static final int PERIOD_STRIP_COUNT = 32;
    private static final List<String> ARTICLES = List.of("a", "an", "the");

    private static final Map<String, String> MANUAL_MAP = Map.ofEntries(
            Map.entry("none", "0"), Map.entry("zero", "0"), Map.entry("one", "1"), Map.entry("two", "2"),
            Map.entry("three", "3"), Map.entry("four", "4"), Map.entry("five", "5"), Map.entry("six", "6"),
            Map.entry("seven", "7"), Map.entry("eight", "8"), Map.entry("nine", "9"), Map.entry("ten", "10"));

    private static final Map<String, String> CONTRACTIONS = Map.ofEntries(
            Map.entry("aint", "ain't"), Map.entry("arent", "aren't"), Map.entry("cant", "can't"),
            Map.entry("couldve", "could've"), Map.entry("couldnt", "couldn't"),
            Map.entry("couldn'tve", "couldn't've"), Map.entry("couldnt've", "couldn't've"),
            Map.entry("didnt", "didn't"), Map.entry("doesnt", "doesn't"), Map.entry("dont", "don't"),
            Map.entry("hadnt", "hadn't"), Map.entry("hadnt've", "hadn't've"), Map.entry("hadn'tve", "hadn't've"),
            Map.entry("hasnt", "hasn't"), Map.entry("havent", "haven't"), Map.entry("hed", "he'd"),
            Map.entry("hed've", "he'd've"), Map.entry("he'dve", "he'd've"), Map.entry("hes", "he's"),
            Map.entry("howd", "how'd"), Map.entry("howll", "how'll"), Map.entry("hows", "how's"),
            Map.entry("Id've", "I'd've"), Map.entry("I'dve", "I'd've"), Map.entry("Im", "I'm"),
            Map.entry("Ive", "I've"), Map.entry("isnt", "isn't"), Map.entry("itd", "it'd"),
            Map.entry("itd've", "it'd've"), Map.entry("it'dve", "it'd've"), Map.entry("itll", "it'll"),
            Map.entry("let's", "let's"), Map.entry("maam", "ma'am"), Map.entry("mightnt", "mightn't"),
            Map.entry("mightnt've", "mightn't've"), Map.entry("mightn'tve", "mightn't've"),
            Map.entry("mightve", "might've"), Map.entry("mustnt", "mustn't"), Map.entry("mustve", "must've"),
            Map.entry("neednt", "needn't"), Map.entry("notve", "not've"), Map.entry("oclock", "o'clock"),
            Map.entry("oughtnt", "oughtn't"), Map.entry("ow's'at", "'ow's'at"), Map.entry("'ows'at", "'ow's'at"),
            Map.entry("'ow'sat", "'ow's'at"), Map.entry("shant", "shan't"), Map.entry("shed've", "she'd've"),
            Map.entry("she'dve", "she'd've"), Map.entry("she's", "she's"), Map.entry("shouldve", "should've"),
            Map.entry("shouldnt", "shouldn't"), Map.entry("shouldnt've", "shouldn't've"),
            Map.entry("shouldn'tve", "shouldn't've"), Map.entry("somebody'd", "somebodyd"),
            Map.entry("somebodyd've", "somebody'd've"), Map.entry("somebody'dve", "somebody'd've"),
            Map.entry("somebodyll", "somebody'll"), Map.entry("somebodys", "somebody's"),
            Map.entry("someoned", "someone'd"), Map.entry("someoned've", "someone'd've"),
            Map.entry("someone'dve", "someone'd've"), Map.entry("someonell", "someone'll"),
            Map.entry("someones", "someone's"), Map.entry("somethingd", "something'd"),
            Map.entry("somethingd've", "something'd've"), Map.entry("something'dve", "something'd've"),
            Map.entry("somethingll", "something'll"), Map.entry("thats", "that's"), Map.entry("thered", "there'd"),
            Map.entry("thered've", "there'd've"), Map.entry("there'dve", "there'd've"),
            Map.entry("therere", "there're"), Map.entry("theres", "there's"), Map.entry("theyd", "they'd"),
            Map.entry("theyd've", "they'd've"), Map.entry("they'dve", "they'd've"), Map.entry("theyll", "they'll"),
            Map.entry("theyre", "they're"), Map.entry("theyve", "they've"), Map.entry("twas", "'twas"),
            Map.entry("wasnt", "wasn't"), Map.entry("wed've", "we'd've"), Map.entry("we'dve", "we'd've"),
            Map.entry("weve", "we've"), Map.entry("werent", "weren't"), Map.entry("whatll", "what'll"),
            Map.entry("whatre", "what're"), Map.entry("whats", "what's"), Map.entry("whatve", "what've"),
            Map.entry("whens", "when's"), Map.entry("whered", "where'd"), Map.entry("wheres", "where's"),
            Map.entry("whereve", "where've"), Map.entry("whod", "who'd"), Map.entry("whod've", "who'd've"),
            Map.entry("who'dve", "who'd've"), Map.entry("wholl", "who'll"), Map.entry("whos", "who's"),
            Map.entry("whove", "who've"), Map.entry("whyll", "why'll"), Map.entry("whyre", "why're"),
            Map.entry("whys", "why's"), Map.entry("wont", "won't"), Map.entry("wouldve", "would've"),
            Map.entry("wouldnt", "wouldn't"), Map.entry("wouldnt've", "wouldn't've"),
            Map.entry("wouldn'tve", "wouldn't've"), Map.entry("yall", "y'all"), Map.entry("yall'll", "y'all'll"),
            Map.entry("y'allll", "y'all'll"), Map.entry("yall'd've", "y'all'd've"),
            Map.entry("y'alld've", "y'all'd've"), Map.entry("y'all'dve", "y'all'd've"), Map.entry("youd", "you'd"),
            Map.entry("youd've", "you'd've"), Map.entry("you'dve", "you'd've"), Map.entry("youll", "you'll"),
            Map.entry("youre", "you're"), Map.entry("youve", "you've"));

    /** The full normalization: {@code \n}/{@code \t} → space, strip, processPunctuation, processDigitArticle. */
    public static String normalize(String answer) {
        String s = answer.replace('\n', ' ').replace('\t', ' ').strip();
        return processDigitArticle(processPunctuation(s));
    }

    /** {@code vqaEval.processPunctuation}, rule for rule (the conditions look at the input text). */
    public static String processPunctuation(String inText) {
        String out = inText;
        boolean commaDigits = COMMA_STRIP.matcher(inText).find();
        for (String p : PUNCT) {
            if (inText.contains(p + " ") || inText.contains(" " + p) || commaDigits) {
                out = out.replace(p, "");
            } else {
                out = out.replace(p, " ");
            }
        }
        Matcher m = PERIOD_STRIP.matcher(out);
        StringBuilder sb = new StringBuilder(out.length());
        int last = 0;
        int n = 0;
        while (n < PERIOD_STRIP_COUNT && m.find()) {
            sb.append(out, last, m.start());
            last = m.end();
            n++;
        }
        sb.append(out, last, out.length());
        return sb.toString();
    }

    /** {@code vqaEval.processDigitArticle}: lower-case, number words → digits, drop articles, contractions. */
    public static String processDigitArticle(String inText) {
        List<String> words = new ArrayList<>();
        for (String w : splitWhitespace(inText.toLowerCase(Locale.ROOT))) {
            w = MANUAL_MAP.getOrDefault(w, w);
            if (!ARTICLES.contains(w)) {
                words.add(w);
            }
        }
        words.replaceAll(w -> CONTRACTIONS.getOrDefault(w, w));
        return String.join(" ", words);
    }

    /** Python's {@code str.split()}: runs of whitespace separate, no empty pieces. */
    private static List<String> splitWhitespace(String s) {
        List<String> out = new ArrayList<>();
        int i = 0;
        int n = s.length();
        while (i < n) {
            while (i < n && isPyWhitespace(s.charAt(i))) i++;
            int start = i;
            while (i < n && !isPyWhitespace(s.charAt(i))) i++;
            if (i > start) out.add(s.substring(start, i));
        }
        return out;
    }

    private static boolean isPyWhitespace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || (c >= 0x1c && c <= 0x1f) || c == 0x85;
    }

    /**
     * The VQA accuracy of one prediction against the human answers (normally 10): the mean over the
     * leave-one-out subsets of {@code min(1, matches / 3)}. Both sides are normalized. With no human
     * answers the score is 0.
     */
    public static double score(String prediction, List<String> answers) {
        if (answers == null || answers.isEmpty()) {
            return 0.0;
        }
        String pred = normalize(prediction == null ? "" : prediction);
        int total = 0;
        boolean[] match = new boolean[answers.size()];
        for (int i = 0; i < answers.size(); i++) {
            match[i] = normalize(answers.get(i)).equals(pred);
            if (match[i]) total++;
        }
        double sum = 0;
        for (boolean mi : match) {
            int others = total - (mi ? 1 : 0);
            sum += Math.min(1.0, others / 3.0);
        }
        return sum / answers.size();
    }

    /**
     * Sums per-question scores into an overall accuracy (in [0, 1]). The sum is exact (each double score is
     * added as the exact decimal it stands for), so the result does not depend on the order the scores come
     * in: merging accumulators of parts of a split (e.g. Spark partitions) gives, bit for bit, what one
     * sequential pass gives. Not thread-safe.
     */
    public static final class Accumulator implements java.io.Serializable {
        private static final long serialVersionUID = 1L;
        private java.math.BigDecimal sum = java.math.BigDecimal.ZERO;
        private long count;

        /** Scores one prediction, adds it, and returns its score. */
        public double add(String prediction, List<String> answers) {
            double s = score(prediction, answers);
            addScore(s);
            return s;
        }

        /** Adds an already computed score. */
        public void addScore(double s) {
            sum = sum.add(new java.math.BigDecimal(s));
            count++;
        }

        /** Merges another accumulator into this one. */
        public void merge(Accumulator other) {
            sum = sum.add(other.sum);
            count += other.count;
        }

        public long count() {
            return count;
        }

        public double sum() {
            return sum.doubleValue();
        }

        /** The mean score (the exact sum divided by the count, rounded once to a double), or 0 when nothing was added. */
        public double accuracy() {
            return count == 0 ? 0.0 : sum.divide(java.math.BigDecimal.valueOf(count), java.math.MathContext.DECIMAL128).doubleValue();
        }

        public void reset() {
            sum = java.math.BigDecimal.ZERO;
            count = 0;
        }
    }
}
