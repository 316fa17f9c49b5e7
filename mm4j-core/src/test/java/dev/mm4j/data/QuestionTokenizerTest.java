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

    @Test
    void aPairIsClsASepBSepWithBertTokenTypes() {
        QuestionTokenizer.Pair p = tok.encodePair("what is it?", "it is a cat.");
        assertArrayEquals(new long[] {101, 2054, 2003, 2009, 1029, 102, 2009, 2003, 1037, 4937, 1012, 102}, p.ids());
        assertArrayEquals(new long[] {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}, p.tokenTypeIds());
    }

    @Test
    void aLongPairIsTruncatedLongestFirstKeepingBothSeps() throws Exception {
        try (QuestionTokenizer t8 = QuestionTokenizer.bertBaseUncased(8)) {
            // "what" + 5 pieces of the sentence: the sentence loses pieces until 1 + 1 + 1 + 4 + 1 = 8
            QuestionTokenizer.Pair p = t8.encodePair("what", "it is a cat.");
            assertArrayEquals(new long[] {101, 2054, 102, 2009, 2003, 1037, 4937, 102}, p.ids());
        }
    }
}
