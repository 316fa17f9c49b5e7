package dev.mm4j.parquet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextVqaParquetReaderTest {
    @TempDir Path tmp;

    /** Legacy 2-level lists, int64 ids, an extra column, zstd pages, and some broken rows. */
    private static final MessageType SCHEMA = MessageTypeParser.parseMessageType("""
            message m {
              optional binary image_id (STRING);
              optional int64 question_id;
              optional binary question (STRING);
              optional group image { optional binary bytes; optional binary path (STRING); }
              optional group answers (LIST) { repeated binary array (STRING); }
              optional double ocr_confidence;
            }
            """);

    @Test
    void otherShapesAndMalformedRows() throws IOException {
        Path f = tmp.resolve("train-00000-of-00001.parquet");
        SimpleGroupFactory groups = new SimpleGroupFactory(SCHEMA);
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(f))
                .withConf(new PlainParquetConfiguration()).withCodecFactory(ParquetCodecs.INSTANCE)
                .withType(SCHEMA).withCompressionCodec(CompressionCodecName.ZSTD).withRowGroupRowCountLimit(2).build()) {
            for (int i = 0; i < 5; i++) {
                Group g = groups.newGroup();
                if (i != 1) {
                    g.add("image_id", "img" + i);
                }
                g.add("question_id", 10_000_000_000L + i);
                if (i != 3) {
                    g.add("question", "q" + i + "?");
                }
                if (i != 4) {
                    Group img = g.addGroup("image");
                    img.add("bytes", Binary.fromConstantByteArray(new byte[] {(byte) i, 1, 2}));
                }
                Group answers = g.addGroup("answers");
                answers.add("array", "a" + i);
                answers.add("array", "b");
                g.add("ocr_confidence", 0.5 + i);
                w.write(g);
            }
        }
        try (VqaDataset ds = TextVqaDatasets.open(tmp, "train")) {
            assertEquals(5, ds.sizeIfCheap().orElseThrow()); // rows in the file, before skipping
            List<VqaSample> all = new ArrayList<>();
            ds.forEach(all::add);
            assertEquals(List.of(10_000_000_000L, 10_000_000_002L), all.stream().map(VqaSample::questionId).toList());
            assertEquals(3, ds.skippedCount()); // no image_id, no question, no image
            VqaSample s = all.get(1);
            assertEquals(List.of("a2", "b"), s.answers());
            assertEquals(Map.of("ocr_confidence", 2.5), s.extras());
            assertArrayEquals(new byte[] {2, 1, 2}, s.image().readBytes());
            assertEquals("train-00000-of-00001.parquet row 2", s.origin());
        }
    }

    @Test
    void notParquetFailsNamingTheFile() throws IOException {
        Path f = tmp.resolve("x.parquet");
        Files.writeString(f, "this is not parquet at all, just some text that is long enough");
        try (VqaDataset ds = TextVqaDatasets.open(f, null)) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> ds.iterator().hasNext());
            assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        }
    }
}
