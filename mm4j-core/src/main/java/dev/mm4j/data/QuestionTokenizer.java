package dev.mm4j.data;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The tutorial's question tokenizer: BERT uncased WordPiece, {@code [CLS] question [SEP]}, ids padded
 * with 0 to {@code maxLength} (default 512) and truncated beyond it, keeping {@code [SEP]} last (as
 * Hugging Face truncation does for a single sequence).
 *
 * <p>The default vocabulary is bert-base-uncased's, read from this module's resource {@link #DEFAULT_RESOURCE} (the
 * Hugging Face {@code tokenizer.json} of bert-base-uncased's WordPiece vocabulary, Apache-2.0; see NOTICE), found on
 * the class path and on the module path alike. A tokenizer file's own padding/truncation settings are switched off; padding and
 * truncation are done here. Instances are meant to be shared by loader threads; {@link #close()} frees
 * the native tokenizer.
 */
public final class QuestionTokenizer implements AutoCloseable {
    public static final int DEFAULT_MAX_LENGTH = 512;
    public static final String DEFAULT_RESOURCE = "/dev/mm4j/data/bert-base-uncased-tokenizer.json";
    public static final long PAD_ID = 0;

    private static final Map<String, String> OPTIONS =
            Map.of("padding", "false", "truncation", "false", "addSpecialTokens", "true");

    private final HuggingFaceTokenizer tokenizer;
    private final int maxLength;
    private final String source;

    private QuestionTokenizer(HuggingFaceTokenizer tokenizer, int maxLength, String source) {
        if (maxLength < 2) {
            tokenizer.close();
            throw new IllegalArgumentException("maxLength must be at least 2 ([CLS] and [SEP]), got " + maxLength);
        }
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
        this.source = source;
    }

    /** bert-base-uncased from the classpath, max length 512. */
    public static QuestionTokenizer bertBaseUncased() throws IOException {
        return bertBaseUncased(DEFAULT_MAX_LENGTH);
    }

    /** bert-base-uncased from the classpath. */
    public static QuestionTokenizer bertBaseUncased(int maxLength) throws IOException {
        try (InputStream in = QuestionTokenizer.class.getResourceAsStream(DEFAULT_RESOURCE)) {
            if (in == null) {
                throw new IOException("tokenizer resource " + DEFAULT_RESOURCE + " missing: it ships in mm4j-core's jar");
            }
            return new QuestionTokenizer(HuggingFaceTokenizer.newInstance(in, OPTIONS), maxLength,
                    "classpath:" + DEFAULT_RESOURCE);
        }
    }

    /**
     * A user's tokenizer: a Hugging Face {@code tokenizer.json}, or a BERT {@code vocab.txt} (any file not
     * ending in {@code .json}), which is turned into an uncased BERT WordPiece tokenizer.
     */
    public static QuestionTokenizer load(Path file, int maxLength) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("tokenizer file not found: " + file);
        }
        if (file.getFileName().toString().endsWith(".json")) {
            try (InputStream in = Files.newInputStream(file)) {
                return new QuestionTokenizer(HuggingFaceTokenizer.newInstance(in, OPTIONS), maxLength, file.toString());
            } catch (RuntimeException e) {
                throw new IOException(file + ": not a valid tokenizer.json: " + e.getMessage(), e);
            }
        }
        return fromVocabTxt(file, maxLength, true);
    }

    /** A BERT WordPiece tokenizer from a {@code vocab.txt} (one token per line, id = line number). */
    public static QuestionTokenizer fromVocabTxt(Path vocabTxt, int maxLength, boolean lowercase) throws IOException {
        List<String> tokens = AnswerVocab.splitLines(Files.readString(vocabTxt, StandardCharsets.UTF_8));
        byte[] json = bertTokenizerJson(tokens, lowercase, vocabTxt.toString());
        try (InputStream in = new ByteArrayInputStream(json)) {
            return new QuestionTokenizer(HuggingFaceTokenizer.newInstance(in, OPTIONS), maxLength, vocabTxt.toString());
        }
    }

    /** A minimal Hugging Face tokenizer.json for BERT WordPiece (what BertTokenizerFast builds from vocab.txt). */
    static byte[] bertTokenizerJson(List<String> tokens, boolean lowercase, String source) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = om.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ObjectNode vocab = om.createObjectNode();
        for (int i = 0; i < tokens.size(); i++) {
            if (!vocab.has(tokens.get(i))) {
                vocab.put(tokens.get(i), i);
            }
        }
        for (String special : new String[] {"[UNK]", "[CLS]", "[SEP]"}) {
            if (!vocab.has(special)) {
                throw new IOException(source + ": vocab.txt has no " + special + " token; not a BERT vocabulary");
            }
        }
        ArrayNode added = root.putArray("added_tokens");
        for (String special : new String[] {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
            if (vocab.has(special)) {
                ObjectNode t = added.addObject();
                t.put("id", vocab.get(special).asInt());
                t.put("content", special);
                t.put("single_word", false);
                t.put("lstrip", false);
                t.put("rstrip", false);
                t.put("normalized", false);
                t.put("special", true);
            }
        }
        ObjectNode norm = root.putObject("normalizer");
        norm.put("type", "BertNormalizer");
        norm.put("clean_text", true);
        norm.put("handle_chinese_chars", true);
        norm.putNull("strip_accents");
        norm.put("lowercase", lowercase);
        root.putObject("pre_tokenizer").put("type", "BertPreTokenizer");
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "BertProcessing");
        post.putArray("sep").add("[SEP]").add(vocab.get("[SEP]").asInt());
        post.putArray("cls").add("[CLS]").add(vocab.get("[CLS]").asInt());
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "WordPiece");
        dec.put("prefix", "##");
        dec.put("cleanup", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "WordPiece");
        model.put("unk_token", "[UNK]");
        model.put("continuing_subword_prefix", "##");
        model.put("max_input_chars_per_word", 100);
        model.set("vocab", vocab);
        return om.writeValueAsBytes(root);
    }

    public int maxLength() {
        return maxLength;
    }

    /** Where the vocabulary came from, for messages. */
    public String source() {
        return source;
    }

    /** {@code [CLS] tokens [SEP]} ids, unpadded, truncated to {@link #maxLength()} (the last id stays [SEP]). */
    public long[] encode(String question) {
        return encoded(question).ids();
    }

    /**
     * Ids as {@link #encode} gives them, and how many there were before truncation.
     *
     * @param untruncatedLength ids before truncation; for a text cut before tokenizing ({@code cut}), the ids of the
     *     part tokenized (a lower bound)
     * @param cut whether the text was longer than {@link #maxChars()} and its tail (with more than whitespace) was not
     *     tokenized
     */
    public record Encoded(long[] ids, int untruncatedLength, boolean cut) {
        public Encoded(long[] ids, int untruncatedLength) {
            this(ids, untruncatedLength, false);
        }

        /** Whether the question was longer than the maximum length and lost tokens. */
        public boolean truncated() {
            return cut || untruncatedLength > ids.length;
        }
    }

    /**
     * The most characters per token a text is read at: a text of more than {@code max(maxLength, 128) *
     * MAX_CHARS_PER_TOKEN} characters is cut (at a word boundary) before the tokenizer sees it, so a huge text costs no
     * more than this (128: a small max length still reads a few thousand characters, so counts stay exact for them).
     * WordPiece tokens average 4-6 characters with their whitespace (and a word of over 100 characters is one
     * {@code [UNK]}), so any text whose words are not almost all over 64 characters long keeps all its first
     * {@code maxLength} tokens.
     */
    public static final int MAX_CHARS_PER_TOKEN = 64;
    /** The first, cheaper cut tried ({@code max(maxLength, 128) * 8} characters): enough for ordinary text. */
    static final int FIRST_CHARS_PER_TOKEN = 8;

    /** The longest text (in characters) read by {@link #encode}: {@code max(maxLength, 128) * MAX_CHARS_PER_TOKEN}. */
    public int maxChars() {
        return maxChars(maxLength);
    }

    private static int maxChars(int limit) {
        return (int) Math.min(Integer.MAX_VALUE, (long) Math.max(limit, MIN_CUT_TOKENS) * MAX_CHARS_PER_TOKEN);
    }

    private static long firstCut(int limit) {
        return (long) Math.max(limit, MIN_CUT_TOKENS) * FIRST_CHARS_PER_TOKEN;
    }

    private static final int MIN_CUT_TOKENS = 128;

    /**
     * {@code text} cut to at most {@code maxChars} characters at a word boundary: before the last whitespace at or
     * before {@code maxChars} (at {@code maxChars} when there is none, never inside a surrogate pair); unchanged if
     * it is not longer.
     */
    public static String cut(String text, int maxChars) {
        if (text.length() <= maxChars) {
            return text;
        }
        int end = maxChars;
        while (end > 0 && !Character.isWhitespace(text.charAt(end))) {
            end--;
        }
        if (end == 0) {
            end = Character.isLowSurrogate(text.charAt(maxChars)) ? maxChars - 1 : maxChars;
        }
        return text.substring(0, end);
    }

    /** {@link #encode}, saying whether (and from how many ids) the question was truncated. */
    public Encoded encoded(String question) {
        return encode(question, maxLength);
    }

    /**
     * Tokenizes at most {@link #maxChars(int)} characters: a longer text is cut at a word boundary, first at
     * {@link #firstCut(int)} characters, then at the bound; the cut part is used once it gives at least {@code limit}
     * ids, which are then exactly the first ids of the whole text (tokens do not cross whitespace).
     */
    private Encoded encode(String question, int limit) {
        String text = question == null ? "" : question;
        if (text.length() <= firstCut(limit)) {
            return truncate(tokenizer.encode(text, true, false).getIds(), limit, false);
        }
        int max = maxChars(limit);
        long[] ids = null;
        String part = text;
        for (long chars = firstCut(limit); ; chars = Math.min(max, chars * 4)) {
            part = cut(text, (int) Math.min(max, chars));
            ids = tokenizer.encode(part, true, false).getIds();
            if (ids.length >= limit || part.length() == text.length() || chars >= max) {
                break;
            }
        }
        return truncate(ids, limit, !blankFrom(text, part.length()));
    }

    private static boolean blankFrom(String text, int from) {
        for (int i = from; i < text.length(); i++) {
            if (!Character.isWhitespace(text.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    private static Encoded truncate(long[] ids, int limit, boolean cut) {
        if (ids.length <= limit) {
            return new Encoded(ids, ids.length, cut);
        }
        long[] out = Arrays.copyOf(ids, limit);
        out[limit - 1] = ids[ids.length - 1]; // [SEP]
        return new Encoded(out, ids.length, cut);
    }

    /** {@link #encode} truncated to {@code min(length, maxLength)} and right-padded with 0 to {@code length}. */
    public long[] encodePadded(String question, int length) {
        if (length < 2) {
            throw new IllegalArgumentException("length must be at least 2, got " + length);
        }
        long[] ids = encode(question, Math.min(length, maxLength)).ids();
        return ids.length == length ? ids : Arrays.copyOf(ids, length); // zero = [PAD]
    }

    /**
     * For {@link #encodePadded}'s ids: whether each position continues the word before it (a {@code ##} word
     * piece), for whole-word masking; false at [CLS], [SEP] (also the one that ends a truncated text) and [PAD].
     * Reads the text up to the same bound as {@link #encodePadded} (at most {@link #maxChars(int)} characters).
     */
    public boolean[] continuations(String question, int length) {
        int limit = Math.min(length, maxLength);
        String[] pieces = tokenizer.encode(cut(question == null ? "" : question, maxChars(limit)), true, false).getTokens();
        int kept = Math.min(pieces.length, limit);
        boolean[] out = new boolean[length];
        for (int i = 0; i < kept - 1; i++) {
            out[i] = pieces[i].startsWith("##");
        }
        return out;
    }

    /** The word pieces (for debugging and messages), of at most {@link #maxChars()} characters. */
    public List<String> tokens(String question) {
        return Arrays.asList(tokenizer.encode(cut(question, maxChars()), true, false).getTokens());
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
