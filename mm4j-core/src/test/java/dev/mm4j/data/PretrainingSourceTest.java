package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pretraining sources: text files, image folders, caption manifests. */
class PretrainingSourceTest {
    @TempDir Path tmp;

    @Test
    void textFilesOneTextPerLineAndJsonLinesWithATextField() throws Exception {
        Path txt = tmp.resolve("a.txt");
        Files.writeString(txt, "the red sign says stop\n\n  a second text  \n");
        PretrainingSource.Texts t = PretrainingSource.texts(txt);
        assertEquals(List.of("the red sign says stop", "a second text"), t.texts());
        assertEquals(List.of("a.txt line 1", "a.txt line 3"), t.origins());
        assertEquals(PretrainingSource.Kind.TEXT, t.kind());
        Path jsonl = tmp.resolve("b.jsonl");
        Files.writeString(jsonl, "{\"text\": \"one\", \"id\": 1}\n{\"text\": \"two\"}\n");
        assertEquals(List.of("one", "two"), PretrainingSource.texts(jsonl).texts());
    }

    @Test
    void badLinesAreOneLineErrorsNamingFileAndLine() throws Exception {
        Path jsonl = tmp.resolve("b.jsonl");
        Files.writeString(jsonl, "{\"text\": \"one\"}\n{\"txt\": \"two\"}\n");
        IOException e = assertThrows(IOException.class, () -> PretrainingSource.texts(jsonl));
        assertEquals(jsonl + " line 2: field 'text' is missing", e.getMessage());
        Files.writeString(jsonl, "{\"text\": \"one\"}\n{\"text\": 3}\n");
        e = assertThrows(IOException.class, () -> PretrainingSource.texts(jsonl));
        assertEquals(jsonl + " line 2: field 'text' is not a string", e.getMessage());
        Files.writeString(jsonl, "{\"text\": \"one\"}\n\n{not json\n");
        e = assertThrows(IOException.class, () -> PretrainingSource.texts(jsonl));
        assertTrue(e.getMessage().startsWith(jsonl + " line 3: not a JSON object: "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        Files.writeString(jsonl, "[1, 2]\n");
        e = assertThrows(IOException.class, () -> PretrainingSource.texts(jsonl));
        assertEquals(jsonl + " line 1: not a JSON object", e.getMessage());
        Path empty = tmp.resolve("e.txt");
        Files.writeString(empty, "\n \n");
        e = assertThrows(IOException.class, () -> PretrainingSource.texts(empty));
        assertEquals(empty + " holds no text", e.getMessage());
        Path csv = tmp.resolve("x.csv");
        Files.writeString(csv, "text\nx\n");
        e = assertThrows(IOException.class, () -> PretrainingSource.texts(csv));
        assertEquals(csv + ": a text source must be a .txt (one text per line) or .jsonl (field 'text') file",
                e.getMessage());
    }

    @Test
    void anImageFolderIsReadRecursivelyInPathOrder() throws Exception {
        Files.createDirectories(tmp.resolve("imgs/sub/deeper"));
        Files.write(tmp.resolve("imgs/b.png"), new byte[] {1});
        Files.write(tmp.resolve("imgs/sub/a.JPG"), new byte[] {1});
        Files.write(tmp.resolve("imgs/sub/deeper/c.jpeg"), new byte[] {1});
        Files.writeString(tmp.resolve("imgs/notes.txt"), "not an image");
        PretrainingSource.Images im = PretrainingSource.images(tmp.resolve("imgs"));
        assertEquals(List.of(tmp.resolve("imgs/b.png"), tmp.resolve("imgs/sub/a.JPG"),
                tmp.resolve("imgs/sub/deeper/c.jpeg")), im.images());
        Files.createDirectories(tmp.resolve("none"));
        IOException e = assertThrows(IOException.class, () -> PretrainingSource.images(tmp.resolve("none")));
        assertTrue(e.getMessage().startsWith(tmp.resolve("none") + " holds no image files"), e.getMessage());
    }

    @Test
    void pairsComeFromTheCaptionManifestsRetrievalReads() throws Exception {
        Files.write(tmp.resolve("a.jpg"), new byte[] {1});
        Files.writeString(tmp.resolve("captions_train.jsonl"), "{\"image\": \"a.jpg\", \"text\": \"a sign\"}\n");
        PretrainingSource.Pairs p = PretrainingSource.pairs(tmp, "train");
        assertEquals(List.of("a sign"), p.captions());
        assertEquals(PretrainingSource.Kind.PAIRS, p.kind());
        assertEquals(PretrainingSource.Kind.PAIRS, PretrainingSource.Kind.parse("vl"));
        assertEquals(PretrainingSource.Kind.IMAGE, PretrainingSource.Kind.parse("Image"));
        assertThrows(IllegalArgumentException.class, () -> PretrainingSource.Kind.parse("audio"));
    }
}
