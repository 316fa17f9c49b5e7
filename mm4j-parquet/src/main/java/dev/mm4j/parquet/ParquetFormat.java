package dev.mm4j.parquet;

import dev.mm4j.data.DatasetFormat;
import dev.mm4j.data.VqaDataset;
import java.nio.file.Path;
import java.util.List;

/** Hugging Face TextVQA parquet shards ({@link TextVqaParquetReader}), installed as a {@link DatasetFormat}. */
public final class ParquetFormat implements DatasetFormat {

    @Override
    public String extension() {
        return "parquet";
    }

    @Override
    public VqaDataset open(List<Path> files) {
        return new TextVqaParquetReader(files);
    }
}
