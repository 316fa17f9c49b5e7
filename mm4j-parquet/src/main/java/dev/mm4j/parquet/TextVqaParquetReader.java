package dev.mm4j.parquet;

import dev.mm4j.data.AbstractVqaDataset;
import dev.mm4j.data.TextVqaFields;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.OptionalLong;
import org.apache.parquet.ParquetReadOptions;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.metadata.BlockMetaData;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.MessageColumnIO;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the Hugging Face hub's TextVQA parquet shards ({@code data/train-00000-of-00020.parquet}, ...),
 * one row group at a time, so a shard (hundreds of MB of embedded JPEGs) is never in memory whole.
 *
 * <p>Columns: {@code image_id} string, {@code question_id} int32 (int64 accepted), {@code question}
 * string, {@code answers} list&lt;string&gt; (null or missing: empty), {@code image}
 * struct&lt;bytes: binary, path: string&gt;, and the extras ({@code question_tokens}, {@code image_width},
 * {@code image_height}, {@code flickr_*_url}, {@code image_classes}, {@code set_name}, and any other
 * column) which go into {@link VqaSample#extras()} as String / Integer / Long / Double / Boolean /
 * List / Map. Images come as {@link VqaSample.BytesImage}. Rows with a missing question, image_id,
 * question_id or image bytes are skipped with a warning naming file and row, and counted.
 */
public final class TextVqaParquetReader extends AbstractVqaDataset {
    private static final Logger LOG = LoggerFactory.getLogger(TextVqaParquetReader.class);

    private final List<Path> files;

    /** @param files the shards of one split, read in this order */
    public TextVqaParquetReader(List<Path> files) {
        if (files.isEmpty()) {
            throw new IllegalArgumentException("no parquet files given");
        }
        this.files = List.copyOf(files);
    }

    public List<Path> files() {
        return files;
    }

    private static ParquetFileReader open(Path file) throws IOException {
        try {
            return ParquetFileReader.open(new LocalInputFile(file), ParquetReadOptions.builder(new PlainParquetConfiguration())
                    .withCodecFactory(ParquetCodecs.INSTANCE).build());
        } catch (RuntimeException e) {
            throw new IOException(file + " is not a readable parquet file: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new IOException(file + " is not a readable parquet file: " + e.getMessage(), e);
        }
    }

    /** Row counts from the footers (cheap: the footer is read, no data pages). */
    @Override
    public OptionalLong sizeIfCheap() {
        long n = 0;
        for (Path f : files) {
            try (ParquetFileReader r = open(f)) {
                for (BlockMetaData b : r.getFooter().getBlocks()) {
                    n += b.getRowCount();
                }
            } catch (IOException e) {
                throw VqaDataset.unchecked(e);
            }
        }
        return OptionalLong.of(n);
    }

    @Override
    public String describe() {
        return files.size() == 1 ? files.get(0) + " (parquet)"
                : files.size() + " parquet shards " + files.get(0).getFileName() + " .. " + files.get(files.size() - 1).getFileName()
                        + " in " + files.get(0).toAbsolutePath().getParent();
    }

    @Override
    protected SampleIterator openPass() {
        return new ParquetPass();
    }

    private final class ParquetPass implements SampleIterator {
        private final boolean detailed = firstPass();
        private int fileIndex = -1;
        private ParquetFileReader reader;
        private Path file;
        private MessageType schema;
        private MessageColumnIO columnIO;
        private RecordReader<Group> rows;
        private long rowsLeftInGroup;
        private long rowInFile;
        private long skipped;
        private VqaSample next;
        private boolean done;
        private boolean closed;

        @Override
        public boolean hasNext() {
            if (next != null) {
                return true;
            }
            if (done) {
                return false;
            }
            try {
                while (true) {
                    if (rowsLeftInGroup > 0) {
                        Group g = rows.read();
                        rowsLeftInGroup--;
                        long row = rowInFile++;
                        String origin = file.getFileName() + " row " + row;
                        try {
                            next = toSample(g, schema, origin);
                            return true;
                        } catch (IllegalArgumentException | ClassCastException e) {
                            skipped++;
                            if (detailed) {
                                LOG.warn("{}: skipped, {}", origin, e.getMessage());
                            }
                            continue;
                        }
                    }
                    if (reader != null) {
                        PageReadStore pages = reader.readNextRowGroup();
                        if (pages != null) {
                            rows = columnIO.getRecordReader(pages, new GroupRecordConverter(schema));
                            rowsLeftInGroup = pages.getRowCount();
                            continue;
                        }
                        reader.close();
                        reader = null;
                    }
                    if (++fileIndex >= files.size()) {
                        done = true;
                        finished(skipped);
                        if (skipped > 0) {
                            LOG.warn("{}: skipped {} malformed row(s)", describe(), skipped);
                        }
                        close();
                        return false;
                    }
                    file = files.get(fileIndex);
                    reader = open(file);
                    schema = reader.getFooter().getFileMetaData().getSchema();
                    columnIO = new ColumnIOFactory().getColumnIO(schema);
                    rowInFile = 0;
                }
            } catch (IOException e) {
                close();
                throw VqaDataset.unchecked(e.getMessage() != null && file != null && e.getMessage().contains(file.toString())
                        ? e : new IOException(file + ": " + e.getMessage(), e));
            } catch (RuntimeException e) {
                close();
                throw VqaDataset.unchecked(new IOException(file + " row " + rowInFile + ": cannot read parquet data: " + e, e));
            }
        }

        @Override
        public VqaSample next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            VqaSample s = next;
            next = null;
            return s;
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            if (reader != null) {
                try {
                    reader.close();
                } catch (IOException e) {
                    LOG.debug("closing {}", file, e);
                }
                reader = null;
            }
            released(this);
        }
    }

    /** One row to a sample; IllegalArgumentException says why a row is unusable. */
    static VqaSample toSample(Group g, GroupType schema, String origin) {
        Map<String, Object> values = new LinkedHashMap<>();
        for (int i = 0; i < schema.getFieldCount(); i++) {
            values.put(schema.getFieldName(i), fieldValue(g, i));
        }
        Object question = values.remove(TextVqaFields.QUESTION);
        Object imageId = values.remove(TextVqaFields.IMAGE_ID);
        Object questionId = values.remove(TextVqaFields.QUESTION_ID);
        Object answers = values.remove(TextVqaFields.ANSWERS);
        Object image = values.remove(TextVqaFields.IMAGE);
        if (!(question instanceof String q)) {
            throw new IllegalArgumentException(question == null ? "missing \"question\"" : "\"question\" is not a string");
        }
        if (!(imageId instanceof String id) || id.isBlank()) {
            throw new IllegalArgumentException(imageId == null ? "missing \"image_id\"" : "\"image_id\" is not a non-empty string");
        }
        if (!(questionId instanceof Integer || questionId instanceof Long)) {
            throw new IllegalArgumentException(questionId == null ? "missing \"question_id\"" : "\"question_id\" is not an integer");
        }
        List<String> answerList = new ArrayList<>();
        if (answers instanceof List<?> list) {
            for (Object a : list) {
                if (!(a instanceof String s)) {
                    throw new IllegalArgumentException("\"answers\" holds a non-string");
                }
                answerList.add(s);
            }
        } else if (answers != null) {
            throw new IllegalArgumentException("\"answers\" is not a list");
        }
        VqaSample.BytesImage img;
        if (image instanceof Map<?, ?> m && m.get("bytes") instanceof byte[] bytes) {
            img = new VqaSample.BytesImage(bytes, m.get("path") instanceof String p ? p : null);
        } else if (image instanceof byte[] bytes) {
            img = new VqaSample.BytesImage(bytes, null);
        } else {
            throw new IllegalArgumentException("no image bytes (\"image\" should be struct<bytes: binary, path: string>)");
        }
        return new VqaSample(((Number) questionId).longValue(), q, id, List.copyOf(answerList), img,
                TextVqaFields.canonicalExtras(values), origin);
    }

    /** The value of field {@code i} of {@code g}: null when absent, a List for repeated fields. */
    private static Object fieldValue(Group g, int i) {
        Type t = g.getType().getType(i);
        int n = g.getFieldRepetitionCount(i);
        if (t.isRepetition(Type.Repetition.REPEATED)) {
            List<Object> out = new ArrayList<>(n);
            for (int k = 0; k < n; k++) {
                out.add(value(g, i, k, t));
            }
            return TextVqaFields.listOf(out);
        }
        return n == 0 ? null : value(g, i, 0, t);
    }

    private static Object value(Group g, int i, int k, Type t) {
        if (t.isPrimitive()) {
            PrimitiveType p = t.asPrimitiveType();
            LogicalTypeAnnotation logical = p.getLogicalTypeAnnotation();
            return switch (p.getPrimitiveTypeName()) {
                case BINARY, FIXED_LEN_BYTE_ARRAY -> logical instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation
                        || logical instanceof LogicalTypeAnnotation.EnumLogicalTypeAnnotation
                        || logical instanceof LogicalTypeAnnotation.JsonLogicalTypeAnnotation
                        ? g.getString(i, k) : g.getBinary(i, k).getBytes();
                case INT32 -> g.getInteger(i, k);
                case INT64 -> g.getLong(i, k);
                case BOOLEAN -> g.getBoolean(i, k);
                case FLOAT -> (double) g.getFloat(i, k);
                case DOUBLE -> g.getDouble(i, k);
                case INT96 -> g.getInt96(i, k).getBytes();
            };
        }
        Group child = g.getGroup(i, k);
        GroupType gt = t.asGroupType();
        if (gt.getLogicalTypeAnnotation() instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation && gt.getFieldCount() == 1) {
            // LIST: <list> { repeated <element-or-group> }; 3-level form wraps each element in a one-field group
            Type rep = gt.getType(0);
            int n = child.getFieldRepetitionCount(0);
            List<Object> out = new ArrayList<>(n);
            for (int e = 0; e < n; e++) {
                if (!rep.isPrimitive() && rep.asGroupType().getFieldCount() == 1) {
                    Group wrapper = child.getGroup(0, e);
                    out.add(fieldValue(wrapper, 0));
                } else {
                    out.add(value(child, 0, e, rep));
                }
            }
            return TextVqaFields.listOf(out);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (int f = 0; f < gt.getFieldCount(); f++) {
            out.put(gt.getFieldName(f), fieldValue(child, f));
        }
        return Collections.unmodifiableMap(out);
    }
}
