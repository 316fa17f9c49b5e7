package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuestionTokenizerTest {
    static QuestionTokenizer tok;

    @BeforeAll
    static void open() throws IOException {
        tok = QuestionTokenizer.bertBaseUncased();
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    @Test
    void knownIds() {
        assertArrayEquals(new long[] {101, 2054, 2515, 1996, 3696, 2360, 1029, 102}, tok.encode("what does the sign say?"));
        assertArrayEquals(new long[] {101, 2054, 2515, 1996, 3696, 2360, 1029, 102}, tok.encode("What does the SIGN say?"));
        assertArrayEquals(new long[] {101, 102}, tok.encode(""));
        assertEquals(512, tok.maxLength());
    }

    @Test
    void padsTo512WithZeros() {
        long[] ids = tok.encodePadded("what does the sign say?", 512);
        assertEquals(512, ids.length);
        assertEquals(102, ids[7]);
        for (int i = 8; i < 512; i++) {
            assertEquals(0, ids[i]);
        }
    }

    @Test
    void truncatesKeepingSep() throws IOException {
        String longQ = "the ".repeat(600) + "sign";
        long[] ids = tok.encode(longQ);
        assertEquals(512, ids.length);
        assertEquals(101, ids[0]);
        assertEquals(1996, ids[510]);
        assertEquals(102, ids[511]);
        long[] short6 = tok.encodePadded("what does the sign say?", 6);
        assertArrayEquals(new long[] {101, 2054, 2515, 1996, 3696, 102}, short6);
        try (QuestionTokenizer t8 = QuestionTokenizer.bertBaseUncased(8)) {
            assertArrayEquals(new long[] {101, 1996, 1996, 1996, 1996, 1996, 1996, 102}, t8.encode(longQ));
            assertEquals(16, t8.encodePadded(longQ, 16).length); // truncated to 8, then padded
            assertEquals(0, t8.encodePadded(longQ, 16)[8]);
        }
    }

    /** The full text's ids truncated to 512 as before the bound: a tokenizer that reads (almost) everything. */
    private static long[] fullThenTruncated(String text) throws IOException {
        try (QuestionTokenizer all = QuestionTokenizer.bertBaseUncased(1 << 20)) {
            long[] ids = all.encode(text);
            if (ids.length <= 512) {
                return ids;
            }
            long[] out = java.util.Arrays.copyOf(ids, 512);
            out[511] = 102;
            return out;
        }
    }

    @Test
    void textIsCutAtTheBoundBeforeTokenizingWithTheSameIds() throws IOException {
        assertEquals(512 * 64, tok.maxChars());
        try (QuestionTokenizer small = QuestionTokenizer.bertBaseUncased(16)) {
            assertEquals(128 * 64, small.maxChars(), "a small max length still reads 128 tokens' worth");
            assertEquals(44, small.encoded("what" + " does the sign say".repeat(10) + "?").untruncatedLength());
        }
        String[] words = {"what", "does", "the", "sign", "say", "about", "parking", "on", "sundays", "?", "unbelievably"};
        StringBuilder b = new StringBuilder();
        for (int i = 0; b.length() <= tok.maxChars() + 10; i++) {
            b.append(words[(i * 7) % words.length]).append(i % 5 == 0 ? "  " : " ");
        }
        String normal = "what does the sign say?";
        String firstCut = b.substring(0, 512 * 8 + 3); // just over the first cut
        String bound = b.substring(0, tok.maxChars() + 1); // just over the bound
        // sparse words (24 characters per token): the first cut gives too few ids, the second enough
        String sparse = ("sign" + " ".repeat(20)).repeat(1500);
        for (String t : List.of(normal, firstCut, bound, sparse)) {
            QuestionTokenizer.Encoded e = tok.encoded(t);
            assertArrayEquals(fullThenTruncated(t), e.ids(), "ids of a text of " + t.length() + " characters");
            assertEquals(t.length() > 512 * 8 ? 512 : 6 + 2, e.ids().length);
            assertEquals(t.length() > 512 * 8, e.truncated());
        }
        assertEquals(true, tok.encoded(bound).cut());
        assertEquals(false, tok.encoded(firstCut.substring(0, 4000)).cut());
        // past the bound only whitespace: not cut, nothing lost
        assertEquals(false, tok.encoded("sign " + " ".repeat(tok.maxChars() * 2)).truncated());
        // a text whose words are over 64 characters apart loses what lies past the bound, and says so
        QuestionTokenizer.Encoded sparser = tok.encoded(("sign" + " ".repeat(100)).repeat(1000));
        assertEquals(true, sparser.cut());
        assertEquals(true, sparser.truncated());
        assertEquals(tok.maxChars() / 104 + 1 + 2, sparser.ids().length);
    }

    @Test
    void hugeTextCostsNoMoreThanTheBound() {
        String huge = "word ".repeat(1900 * 1024); // 9.7 MB: 17-35 s and ~1 GB of RSS when tokenized whole
        long t0 = System.nanoTime();
        QuestionTokenizer.Encoded e = tok.encoded(huge);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(512, e.ids().length);
        assertEquals(true, e.truncated());
        assertEquals(true, e.cut());
        assertEquals(2 + 512 * 8 / 5, e.untruncatedLength(), "only the first cut was tokenized");
        assertEquals(true, ms < 3_000, "took " + ms + " ms");
        assertEquals(true, tok.tokens(huge).size() <= tok.maxChars());
    }

    @Test
    void vocabTxtEqualsTokenizerJson(@TempDir Path dir) throws IOException {
        // write bert-base-uncased's vocab.txt from the tokenizer.json's vocab, ordered by id
        JsonNode root;
        try (InputStream in = getClass().getResourceAsStream(QuestionTokenizer.DEFAULT_RESOURCE)) {
            root = new ObjectMapper().readTree(in);
        }
        JsonNode vocab = root.get("model").get("vocab");
        String[] byId = new String[vocab.size()];
        for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            byId[e.getValue().asInt()] = e.getKey();
        }
        Path vocabTxt = dir.resolve("vocab.txt");
        Files.writeString(vocabTxt, String.join("\n", byId) + "\n");
        List<String> questions = new ArrayList<>(List.of(
                "what does the sign say?",
                "What brand is the phone on the left?",
                "who wrote 'Überraschung' in 1984, the café's owner?",
                "what is the number on jersey #23?",
                "qwertyuiopasdfghjkl zxcvbnm",
                "  leading and trailing   spaces  ",
                "電話 number?"));
        try (QuestionTokenizer fromTxt = QuestionTokenizer.load(vocabTxt, 512)) {
            for (String q : questions) {
                assertArrayEquals(tok.encode(q), fromTxt.encode(q), q);
                assertArrayEquals(tok.encodePadded(q, 32), fromTxt.encodePadded(q, 32), q);
            }
        }
    }

    @Test
    void missingFileIsAClearError() {
        IOException e = assertThrows(IOException.class, () -> QuestionTokenizer.load(Path.of("/nonexistent/vocab.txt"), 512));
        assertEquals("tokenizer file not found: /nonexistent/vocab.txt", e.getMessage());
    }
}
