package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LabelledExamplesTest {
    @TempDir
    Path dir;

    @Test
    void glueTsvPairsWithNamedLabelsAndDevAsValidation() throws Exception {
        Files.writeString(dir.resolve("train.tsv"), "index\tquestion\tsentence\tlabel\n"
                + "0\twhat is \"it\"?\tit is a cat.\tentailment\n1\twhere?\tno idea\tnot_entailment\n");
        Files.writeString(dir.resolve("dev.tsv"), "index\tquestion\tsentence\tlabel\n7\ta\tb\tentailment\n");
        assertTrue(LabelledExamples.recognizes(dir));
        LabelledExamples.Split train = LabelledExamples.read(dir, "train");
        assertEquals(LabelledExamples.Kind.TEXT, train.kind());
        assertEquals("what is \"it\"?", train.examples().get(0).text()); // GLUE TSV has no quoting
        assertEquals("it is a cat.", train.examples().get(0).textPair());
        assertEquals(List.of("entailment", "not_entailment"), LabelledExamples.classNames(train.examples()));
        LabelledExamples.Example dev = LabelledExamples.read(dir, "val").examples().get(0);
        assertEquals("7", dev.id());
        assertTrue(dev.origin().endsWith("dev.tsv:2"), dev.origin());
    }

    @Test
    void sst2TsvSingleSentenceWithIndexLabelsSortedAsNumbers() throws Exception {
        Files.writeString(dir.resolve("train.tsv"), "sentence\tlabel\nfine\t1\nbad\t0\nok\t10\n");
        LabelledExamples.Split s = LabelledExamples.read(dir, "train");
        assertNull(s.examples().get(0).textPair());
        assertEquals(List.of("0", "1", "10"), LabelledExamples.classNames(s.examples()));
    }

    @Test
    void csvAndJsonLinesTextAndImageTextManifests() throws Exception {
        Path csv = dir.resolve("t.csv");
        Files.writeString(csv, "text,text_pair,label\n\"a, b\",c,yes\nd,e,no\n");
        LabelledExamples.Split s = LabelledExamples.read(csv, "train");
        assertEquals("a, b", s.examples().get(0).text());
        assertEquals("c", s.examples().get(0).textPair());
        Path memes = dir.resolve("memes");
        Files.createDirectories(memes);
        Files.writeString(memes.resolve("train.jsonl"), "{\"id\": 42, \"img\": \"img/42.png\", \"label\": 1, \"text\": \"hi\"}\n");
        LabelledExamples.Split m = LabelledExamples.read(memes, "train");
        assertEquals(LabelledExamples.Kind.IMAGE_TEXT, m.kind());
        assertEquals(memes.resolve("img/42.png").toAbsolutePath().normalize(), m.examples().get(0).image());
        assertEquals("42", m.examples().get(0).id());
    }

    @Test
    void imageFolderClassesAreTheSortedFolderNames() throws Exception {
        Files.createDirectories(dir.resolve("train/positive"));
        Files.createDirectories(dir.resolve("train/negative"));
        Files.write(dir.resolve("train/positive/b.png"), new byte[] {1});
        Files.write(dir.resolve("train/negative/a.jpg"), new byte[] {1});
        Files.write(dir.resolve("train/negative/notes.txt"), new byte[] {1});
        assertTrue(LabelledExamples.recognizes(dir));
        LabelledExamples.Split s = LabelledExamples.read(dir, "train");
        assertEquals(LabelledExamples.Kind.IMAGE, s.kind());
        assertEquals(2, s.examples().size());
        assertEquals("negative", s.examples().get(0).label());
        assertEquals(List.of("negative", "positive"), LabelledExamples.classNames(s.examples()));
        assertFalse(LabelledExamples.has(dir, "val"));
    }

    @Test
    void badRecordsNameFileLineAndField() throws Exception {
        Files.writeString(dir.resolve("train.tsv"), "sentence\tlabel\nfine\t1\nno label here\n");
        Exception e = assertThrows(java.io.IOException.class, () -> LabelledExamples.read(dir, "train"));
        assertTrue(e.getMessage().contains("train.tsv:3: 1 tab-separated cells, the header has 2"), e.getMessage());
        Files.writeString(dir.resolve("train.tsv"), "sentence\tlabel\n\t1\n");
        e = assertThrows(java.io.IOException.class, () -> LabelledExamples.read(dir, "train"));
        assertTrue(e.getMessage().contains("train.tsv:2: field 'sentence' is missing or empty"), e.getMessage());
        e = assertThrows(java.io.IOException.class, () -> LabelledExamples.read(dir, "test"));
        assertTrue(e.getMessage().contains("no test split"), e.getMessage());
    }

    @Test
    void aVqaManifestIsNotLabelledData() throws Exception {
        Files.writeString(dir.resolve("train.jsonl"), "{\"image\": \"a.jpg\", \"question\": \"q\", \"answers\": [\"x\"]}\n");
        assertFalse(LabelledExamples.recognizes(dir));
    }
}
