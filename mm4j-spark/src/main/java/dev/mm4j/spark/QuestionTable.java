package dev.mm4j.spark;

import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.parquet.TextVqaParquetReader;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.OptionalLong;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import scala.Tuple2;

/**
 * A TextVQA split as a Spark DataFrame, one row per question, read with the project's own readers
 * ({@link TextVqaDatasets}) so that the records, their order and the reader-level checks are the ones
 * single-process {@code evaluate} sees:
 *
 * <ul>
 *   <li>Hugging Face parquet shards are read inside the tasks, one task per shard (the image bytes never
 *       pass through the driver); the driver only reads the footers, for each shard's first position.
 *   <li>The official JSON is read on the driver (it is one file that must be parsed whole); rows carry the
 *       image's path, and the executors read the image files (the folder must be visible to them: a shared
 *       file system on a cluster).
 * </ul>
 *
 * {@code position} is the question's place in the split (file order; shards in name order), the order
 * of the output and the key that puts questions into the same batches as single-process evaluation.
 * For parquet, positions come from the footers' row counts; a row the reader drops as malformed (not a
 * bad image or question: those are the loader's skips) leaves a gap, so the batches after it in that shard
 * are cut one position later than in single-process evaluation (same answers up to float rounding).
 */
public final class QuestionTable {
    private QuestionTable() {}

    public static final StructType SCHEMA = new StructType()
            .add("position", DataTypes.LongType, false)
            .add("question_id", DataTypes.LongType, false)
            .add("question", DataTypes.StringType, true)
            .add("image_id", DataTypes.StringType, true)
            .add("answers", DataTypes.createArrayType(DataTypes.StringType, true), true)
            .add("image_path", DataTypes.StringType, true)
            .add("image_bytes", DataTypes.BinaryType, true)
            .add("origin", DataTypes.StringType, true);

    /** The table and its number of rows. */
    public record Table(Dataset<Row> rows, long count) {}

    /** Reads {@code split} of the dataset at {@code data}; {@code limit > 0} keeps the first {@code limit} questions. */
    public static Table read(SparkSession spark, Path data, String split, long limit) throws IOException {
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        try (VqaDataset ds = TextVqaDatasets.open(data, split)) {
            if (ds instanceof TextVqaParquetReader parquet) {
                List<Tuple2<String, Long>> shards = new ArrayList<>();
                long offset = 0;
                for (Path shard : parquet.files()) {
                    if (limit > 0 && offset >= limit) {
                        break;
                    }
                    shards.add(new Tuple2<>(shard.toAbsolutePath().toString(), offset));
                    try (TextVqaParquetReader one = new TextVqaParquetReader(List.of(shard))) {
                        OptionalLong n = one.sizeIfCheap();
                        offset += n.orElseThrow(() -> new IOException(shard + ": no row count in the parquet footer"));
                    }
                }
                long count = limit > 0 ? Math.min(limit, offset) : offset;
                var rdd = jsc.parallelize(shards, Math.max(1, shards.size()))
                        .flatMap(s -> readShard(s._1(), s._2(), limit));
                return new Table(spark.createDataFrame(rdd, SCHEMA), count);
            }
            List<Row> rows = new ArrayList<>();
            for (VqaSample s : ds) {
                if (limit > 0 && rows.size() >= limit) {
                    break;
                }
                rows.add(toRow(rows.size(), s));
            }
            return new Table(spark.createDataFrame(rows, SCHEMA), rows.size());
        }
    }

    private static Iterator<Row> readShard(String shard, long offset, long limit) {
        List<Row> out = new ArrayList<>();
        try (TextVqaParquetReader r = new TextVqaParquetReader(List.of(Path.of(shard)))) {
            long p = offset;
            for (VqaSample s : r) {
                if (limit > 0 && p >= limit) {
                    break;
                }
                out.add(toRow(p++, s));
            }
        }
        return out.iterator();
    }

    static Row toRow(long position, VqaSample s) {
        String path = null;
        byte[] bytes = null;
        if (s.image() instanceof VqaSample.FileImage f) {
            path = f.path().toAbsolutePath().toString();
        } else if (s.image() instanceof VqaSample.BytesImage b) {
            path = b.path();
            bytes = b.bytes();
        }
        return RowFactory.create(position, s.questionId(), s.question(), s.imageId(),
                s.answers() == null ? null : s.answers().toArray(new String[0]), path, bytes, s.origin());
    }

    /** A row back as the sample the readers made (without the extras, which prediction does not use). */
    static VqaSample toSample(Row r) {
        String path = r.isNullAt(5) ? null : r.getString(5);
        VqaSample.ImageSource image = !r.isNullAt(6) ? new VqaSample.BytesImage((byte[]) r.get(6), path)
                : path != null ? new VqaSample.FileImage(Path.of(path)) : null;
        List<String> answers = r.isNullAt(4) ? List.of() : r.getList(4);
        return new VqaSample(r.getLong(1), r.isNullAt(2) ? null : r.getString(2), r.isNullAt(3) ? null : r.getString(3),
                answers, image, java.util.Map.of(), r.isNullAt(7) ? null : r.getString(7));
    }
}
