package dev.mm4j.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.ServiceLoader;

/**
 * A dataset file format that the core module does not read itself, installed through {@link ServiceLoader}:
 * module {@code dev.mm4j:mm4j-parquet} reads Hugging Face TextVQA parquet shards ({@code ParquetFormat}), so core
 * carries no parquet or Hadoop jars. {@link TextVqaDatasets} asks for a format by file extension.
 */
public interface DatasetFormat {

    /** The file name extension this format reads, lower case, without the dot ("parquet"). */
    String extension();

    /** Opens {@code files} (the shards of one split, in order) as one dataset. */
    VqaDataset open(List<Path> files) throws IOException;

    /** The installed format for {@code extension}; an IOException naming the module to add when there is none. */
    static DatasetFormat forExtension(String extension) throws IOException {
        for (DatasetFormat f : ServiceLoader.load(DatasetFormat.class, DatasetFormat.class.getClassLoader())) {
            if (f.extension().equals(extension)) {
                return f;
            }
        }
        throw new IOException("no reader for ." + extension + " files on the class path: add module dev.mm4j:mm4j-"
                + extension + " (./mm4j has it)");
    }
}
