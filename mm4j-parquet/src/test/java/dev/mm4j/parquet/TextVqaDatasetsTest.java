package dev.mm4j.parquet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.TextVqaJsonReader;
import dev.mm4j.data.TextVqaSplit;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextVqaDatasetsTest {
    @TempDir static Path tmp;
    static Path synth;

    @BeforeAll
    static void generate() throws Exception {
        synth = tmp.resolve("synth");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(synth, 6, 4, 3, 1L, 64, 48, 1));
    }

    @Test
    void splitNames() {
        assertEquals(TextVqaSplit.VAL, TextVqaSplit.parse("validation"));
        assertEquals(TextVqaSplit.VAL, TextVqaSplit.parse("VAL"));
        assertEquals("validation", TextVqaSplit.parse("val").hubName());
        assertEquals("val", TextVqaSplit.parse("validation").officialName());
        assertEquals("TextVQA_0.5.1_test.json", TextVqaSplit.TEST.officialJsonName());
        assertThrows(IllegalArgumentException.class, () -> TextVqaSplit.parse("tr"));
    }

    @Test
    void officialFolderAndJsonFile() throws IOException {
        try (VqaDataset ds = TextVqaDatasets.open(synth, "validation")) {
            TextVqaJsonReader r = assertInstanceOf(TextVqaJsonReader.class, ds);
            assertEquals(synth.resolve("TextVQA_0.5.1_val.json"), r.jsonFile());
            assertEquals(synth.resolve("train_images").toAbsolutePath(), r.imagesDir());
            assertEquals(4, ds.size());
        }
        // a json file: its name decides the split (and so the image folder), whatever --split says
        try (VqaDataset ds = TextVqaDatasets.open(synth.resolve("TextVQA_0.5.1_test.json"), "train")) {
            TextVqaJsonReader r = assertInstanceOf(TextVqaJsonReader.class, ds);
            assertEquals(synth.resolve("test_images").toAbsolutePath(), r.imagesDir());
            assertEquals(3, ds.size());
            for (VqaSample s : ds) {
                assertTrue(Files.isRegularFile(((VqaSample.FileImage) s.image()).path()), s.describe());
            }
        }
    }

    @Test
    void parquetFolderFileAndValNames() throws IOException {
        List<VqaSample> val;
        try (VqaDataset ds = TextVqaDatasets.open(synth, "val")) {
            val = ds.stream().toList();
        }
        Path hub = tmp.resolve("hub");
        TextVqaParquetWriter.write(hub.resolve("validation-00000-of-00001.parquet"), val, 100);
        // shards directly in the folder, under either val name
        for (String name : List.of("val", "validation")) {
            try (VqaDataset ds = TextVqaDatasets.open(hub, name)) {
                TextVqaParquetReader r = assertInstanceOf(TextVqaParquetReader.class, ds);
                assertEquals(List.of(hub.resolve("validation-00000-of-00001.parquet")), r.files());
                assertEquals(4, ds.size());
            }
        }
        // a single .parquet file
        try (VqaDataset ds = TextVqaDatasets.open(hub.resolve("validation-00000-of-00001.parquet"), null)) {
            assertEquals(val.get(2).question(), ds.stream().skip(2).findFirst().orElseThrow().question());
        }
        // shards named with the official split name, under data/
        Path hub2 = tmp.resolve("hub2");
        TextVqaParquetWriter.write(hub2.resolve("data").resolve("val-00000-of-00001.parquet"), val, 100);
        try (VqaDataset ds = TextVqaDatasets.open(hub2, "validation")) {
            assertEquals(4, ds.size());
        }
        // the hub's parquet-API layout that `mm4j download` writes: <config>/<split>/N.parquet
        Path cache = tmp.resolve("cache-textvqa");
        TextVqaParquetWriter.write(cache.resolve("default").resolve("validation").resolve("0.parquet"), val, 100);
        try (VqaDataset ds = TextVqaDatasets.open(cache, "val")) {
            TextVqaParquetReader r = assertInstanceOf(TextVqaParquetReader.class, ds);
            assertEquals(List.of(cache.resolve("default/validation/0.parquet")), r.files());
            assertEquals(4, ds.size());
        }
    }

    @Test
    void nothingMatchesListsWhatWasLookedFor() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(empty.resolve("notes.txt"), "x");
        IOException e = assertThrows(IOException.class, () -> TextVqaDatasets.open(empty, "val"));
        String m = e.getMessage();
        assertTrue(m.contains("TextVQA_0.5.1_val.json"), m);
        assertTrue(m.contains("validation-*.parquet"), m);
        assertTrue(m.contains(empty.resolve("data").resolve("validation-*.parquet").toString()), m);
        assertTrue(m.contains("notes.txt"), m);

        assertThrows(java.nio.file.NoSuchFileException.class, () -> TextVqaDatasets.open(tmp.resolve("missing"), "train"));
        assertThrows(IllegalArgumentException.class, () -> TextVqaDatasets.open(synth, null));
        assertThrows(IOException.class, () -> TextVqaDatasets.open(synth.resolve("answers.txt"), "train"));
        // a train folder without a test split
        Files.delete(synth.resolve("TextVQA_0.5.1_test.json"));
        try {
            assertThrows(IOException.class, () -> TextVqaDatasets.open(synth, "test"));
        } finally {
            SyntheticTextVqa.generate(new SyntheticTextVqa.Options(synth, 6, 4, 3, 1L, 64, 48, 1));
        }
    }
}
