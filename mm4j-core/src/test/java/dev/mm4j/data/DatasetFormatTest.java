package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Core reads no parquet itself: without module mm4j-parquet a .parquet dataset is refused, naming the module. */
class DatasetFormatTest {
    @TempDir Path dir;

    @Test
    void parquetWithoutTheParquetModuleNamesTheModule() throws IOException {
        Path file = Files.write(dir.resolve("train-00000-of-00001.parquet"), new byte[] {'P', 'A', 'R', '1'});
        IOException e = assertThrows(IOException.class, () -> TextVqaDatasets.open(file, null));
        assertTrue(e.getMessage().contains("dev.mm4j:mm4j-parquet"), e.getMessage());
        Files.createDirectories(dir.resolve("data"));
        Files.move(file, dir.resolve("data").resolve(file.getFileName()));
        e = assertThrows(IOException.class, () -> TextVqaDatasets.open(dir, "train"));
        assertTrue(e.getMessage().contains("dev.mm4j:mm4j-parquet"), e.getMessage());
    }
}
