package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LabelsAndVocabTest {

    @Test
    void majorityAndTies() {
        assertEquals("yes", Labels.majority(List.of("no", "yes", "yes", "no", "yes")));
        // tie: first occurrence wins (Counter.most_common order)
        assertEquals("b", Labels.majority(List.of("b", "a", "a", "b", "c")));
        assertEquals("a", Labels.majority(List.of("a", "b", "b", "a")));
        assertEquals("x", Labels.majority(List.of("x")));
        assertNull(Labels.majority(List.of()));
        assertNull(Labels.majority(null));
    }

    @Test
    void labelsThroughVocab() {
        AnswerVocab v = AnswerVocab.fromText("<unk>\nyes\nno\nstop\n", "test");
        assertEquals(3, Labels.label(List.of("stop", "stop", "yes"), v));
        assertEquals(1, Labels.label(List.of("yes", "no"), v)); // tie -> first
        assertEquals(0, Labels.label(List.of("nike", "nike", "yes"), v)); // majority not in vocab -> unknown
        assertEquals(0, Labels.label(List.of(), v));
    }

    @Test
    void vocabLinesAreKeptVerbatim(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("answers.txt");
        Files.write(f, "<unk>\r\n yes\nno \n\nlast".getBytes(StandardCharsets.UTF_8));
        AnswerVocab v = AnswerVocab.load(f);
        assertEquals(5, v.size());
        assertEquals(1, v.indexOf(" yes"));
        assertEquals(0, v.indexOf("yes"));
        assertEquals(2, v.indexOf("no "));
        assertEquals(3, v.indexOf(""));
        assertEquals(4, v.indexOf("last"));
        assertEquals("<unk>", v.answer(0));
        assertThrows(IndexOutOfBoundsException.class, () -> v.answer(5));
    }

    @Test
    void duplicatesLaterIndexWinsWithAWarning(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("answers.txt");
        Files.writeString(f, "<unk>\nyes\nno\nyes\nstop\nno\n");
        PrintStream old = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        AnswerVocab v;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            v = AnswerVocab.load(f);
        } finally {
            System.setErr(old);
        }
        assertEquals(6, v.size());
        assertEquals(3, v.indexOf("yes"));
        assertEquals(5, v.indexOf("no"));
        assertEquals("yes", v.answer(1));
        assertEquals(List.of("yes", "no"), v.duplicates());
        String log = err.toString(StandardCharsets.UTF_8);
        System.out.print(log);
        assertEquals(2, log.lines().filter(l -> l.contains("WARN")).count(), log);
        assertTrue(log.contains("'yes' appears on line 2 and again on line 4"), log);
    }

    @Test
    void anEmptyVocabularyFileIsNamed(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path f = dir.resolve("answers.txt");
        Files.writeString(f, "");
        // before: loaded with 0 classes, and the model later said "num_classes must be positive"
        IOException e = assertThrows(IOException.class, () -> AnswerVocab.load(f));
        assertEquals(f + ": the answer vocabulary is empty (expected one answer per line)", e.getMessage());
    }
}
