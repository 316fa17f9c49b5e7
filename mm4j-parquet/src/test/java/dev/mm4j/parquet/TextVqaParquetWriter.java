package dev.mm4j.parquet;

import dev.mm4j.data.VqaSample;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;

/**
 * Writes samples as one parquet file in the Hugging Face hub's TextVQA schema (as pyarrow writes it:
 * 3-level lists, {@code image} as struct&lt;bytes, path&gt;), with the image bytes embedded. Used to turn
 * the official layout (or the synthetic set) into hub-style shards, and by the tests.
 */
public final class TextVqaParquetWriter {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(TextVqaParquetWriter.class);
    private TextVqaParquetWriter() {}

    /** The hub's TextVQA schema. */
    public static final MessageType SCHEMA = MessageTypeParser.parseMessageType("""
            message schema {
              optional binary image_id (STRING);
              optional int32 question_id;
              optional binary question (STRING);
              optional group question_tokens (LIST) { repeated group list { optional binary element (STRING); } }
              optional group image { optional binary bytes; optional binary path (STRING); }
              optional int32 image_width;
              optional int32 image_height;
              optional binary flickr_original_url (STRING);
              optional binary flickr_300k_url (STRING);
              optional group answers (LIST) { repeated group list { optional binary element (STRING); } }
              optional group image_classes (LIST) { repeated group list { optional binary element (STRING); } }
              optional binary set_name (STRING);
            }
            """);

    /**
     * Writes {@code samples} to {@code target} (replaced atomically), snappy-compressed, with row groups
     * of at most {@code rowsPerGroup} rows. Extras outside the schema are dropped.
     *
     * <p>Image bytes are copied as they are, without decoding: bytes that do not decode stay in the row,
     * and the loader skips that record when it reads it, as it would from the original. A sample whose
     * image cannot be read at all (file missing, a folder, no permission) has no bytes to embed: it is
     * left out with one warning naming it, and the number left out is logged at the end; compare the
     * returned row count with the input to see it.
     *
     * @return the number of rows written
     */
    public static long write(Path target, Iterable<VqaSample> samples, int rowsPerGroup) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + target.getFileName() + "." + ProcessHandle.current().pid() + "." + System.nanoTime() + ".tmp");
        long n = 0;
        long left = 0;
        SimpleGroupFactory groups = new SimpleGroupFactory(SCHEMA);
        try {
            try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(tmp))
                    .withConf(new PlainParquetConfiguration())
                    .withCodecFactory(ParquetCodecs.INSTANCE)
                    .withType(SCHEMA)
                    .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
                    .withCompressionCodec(CompressionCodecName.SNAPPY)
                    .withRowGroupRowCountLimit(Math.max(1, rowsPerGroup))
                    .withPageRowCountLimit(Math.max(1, Math.min(rowsPerGroup, 20_000)))
                    .build()) {
                for (VqaSample s : samples) {
                    byte[] bytes;
                    try {
                        bytes = s.image().readBytes();
                    } catch (IOException e) {
                        left++;
                        LOG.warn("{}: left out of {}, its image cannot be read: {}", s.describe(), target.getFileName(),
                                e instanceof java.nio.file.NoSuchFileException ? "file missing: " + s.image().describe() : e.toString());
                        continue;
                    }
                    w.write(toGroup(groups, s, bytes));
                    n++;
                }
            }
            AtomicFiles.moveIntoPlace(tmp, target);
            if (left > 0) {
                LOG.warn("{}: wrote {} rows; left out {} sample(s) whose image could not be read", target, n, left);
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        return n;
    }

    private static Group toGroup(SimpleGroupFactory groups, VqaSample s, byte[] imageBytes) {
        Group g = groups.newGroup();
        g.add("image_id", s.imageId());
        g.add("question_id", Math.toIntExact(s.questionId()));
        g.add("question", s.question());
        Map<String, Object> x = s.extras();
        list(g, "question_tokens", x.get("question_tokens"));
        Group image = g.addGroup("image");
        image.add("bytes", org.apache.parquet.io.api.Binary.fromConstantByteArray(imageBytes));
        String path = s.image() instanceof VqaSample.BytesImage b ? b.path() : s.imageId() + ".jpg";
        if (path != null) {
            image.add("path", path);
        }
        if (x.get("image_width") instanceof Number w) {
            g.add("image_width", w.intValue());
        }
        if (x.get("image_height") instanceof Number h) {
            g.add("image_height", h.intValue());
        }
        if (x.get("flickr_original_url") instanceof String u) {
            g.add("flickr_original_url", u);
        }
        if (x.get("flickr_300k_url") instanceof String u) {
            g.add("flickr_300k_url", u);
        }
        list(g, "answers", s.answers());
        list(g, "image_classes", x.get("image_classes"));
        if (x.get("set_name") instanceof String n) {
            g.add("set_name", n);
        }
        return g;
    }

    private static void list(Group g, String field, Object value) {
        if (!(value instanceof List<?> items)) {
            return;
        }
        Group list = g.addGroup(field);
        for (Object item : items) {
            Group wrapper = list.addGroup("list");
            if (item != null) {
                wrapper.add("element", item.toString());
            }
        }
    }
}
