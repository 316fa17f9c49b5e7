package dev.mm4j.data;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A manifest of the caller's own VQA data: one row per question with the fields {@code image} (a path, relative
 * to the manifest's folder or absolute), {@code question}, {@code answers} (optional; none for a test split) and
 * optionally {@code question_id} (default: the row's line number) and {@code image_id} (default: the image path
 * without its extension). Two formats, told by the file extension:
 *
 * <ul>
 *   <li>JSON Lines ({@code .jsonl}): one object per line, {@code answers} a list of strings; blank lines are ignored;
 *   <li>CSV ({@code .csv}, RFC 4180, UTF-8): a header row naming the columns (any order, {@code image} and
 *       {@code question} required), {@code answers} separated by {@value #ANSWER_SEPARATOR}.
 * </ul>
 *
 * <p>A bad row (not JSON, missing or mistyped field, a CSV row with the wrong number of cells) is skipped with one
 * warning naming the file, line and field, and counted in {@link #skippedCount()}; it never stops the pass. A file
 * that is not a manifest at all (no CSV header with the required columns) fails with an IOException naming it.
 */
public final class VqaManifestReader extends AbstractVqaDataset {
    private static final Logger LOG = LoggerFactory.getLogger(VqaManifestReader.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final CsvMapper CSV = new CsvMapper();
    /** Between the answers of a CSV row's {@code answers} cell. */
    public static final String ANSWER_SEPARATOR = "|";

    /** The two manifest formats. */
    public enum Format {
        JSON_LINES, CSV;

        /** The format of a file by its extension ({@code .jsonl}, {@code .csv}), or null when it is neither. */
        public static Format of(Path file) {
            String name = file.getFileName() == null ? "" : file.getFileName().toString().toLowerCase(Locale.ROOT);
            return name.endsWith(".jsonl") ? JSON_LINES : name.endsWith(".csv") ? CSV : null;
        }
    }

    private final Path file;
    private final Format format;
    private final Path base;

    /** A reader of {@code file}, whose format its extension gives ({@code .jsonl} or {@code .csv}). */
    public VqaManifestReader(Path file) {
        this.file = file;
        this.format = Format.of(file);
        if (format == null) {
            throw new IllegalArgumentException(file + " is not a manifest: expected a .jsonl or .csv file");
        }
        this.base = file.toAbsolutePath().getParent();
    }

    @Override
    public OptionalLong sizeIfCheap() {
        return OptionalLong.empty();
    }

    @Override
    public String describe() {
        return file + " (" + (format == Format.CSV ? "CSV" : "JSON Lines") + " manifest)";
    }

    @Override
    protected SampleIterator openPass() {
        try {
            return format == Format.CSV ? new CsvPass() : new JsonLinesPass();
        } catch (IOException e) {
            throw VqaDataset.unchecked(e);
        }
    }

    /** One row's fields before checking; {@code answers} is a List of whatever the row held, or null. */
    private record Row(long line, Object image, Object question, Object answers, Object questionId, Object imageId) {}

    /** Why a row cannot be used (naming the field), or null when it can. */
    private static String problem(Row r) {
        if (!(r.image instanceof String img) || img.isBlank()) {
            return r.image == null ? "field 'image' is missing" : "field 'image' is not a non-empty path";
        }
        if (!(r.question instanceof String)) {
            return r.question == null ? "field 'question' is missing" : "field 'question' is not a string";
        }
        if (r.answers != null) {
            if (!(r.answers instanceof List<?> list)) {
                return "field 'answers' is not a list";
            }
            if (!list.stream().allMatch(a -> a instanceof String)) {
                return "field 'answers' holds a non-string";
            }
        }
        if (r.questionId != null && !(r.questionId instanceof Long)) {
            return "field 'question_id' is not an integer";
        }
        if (r.imageId != null && !(r.imageId instanceof String)) {
            return "field 'image_id' is not a string";
        }
        return null;
    }

    private VqaSample toSample(Row r) {
        String image = (String) r.image;
        @SuppressWarnings("unchecked")
        List<String> answers = r.answers == null ? List.of() : List.copyOf((List<String>) r.answers);
        String imageId = r.imageId != null ? (String) r.imageId : withoutExtension(image);
        long qid = r.questionId != null ? (Long) r.questionId : r.line;
        return new VqaSample(qid, (String) r.question, imageId, answers, new VqaSample.FileImage(base.resolve(image)),
                Map.of(), file.getFileName() + " line " + r.line);
    }

    private static String withoutExtension(String path) {
        int dot = path.lastIndexOf('.');
        return dot > Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) ? path.substring(0, dot) : path;
    }

    /** Reads rows and hands out the good ones; subclasses read the next row of their format. */
    private abstract class Pass extends CheckedPass {
        Pass() {
            super(LOG, "malformed row(s)");
        }

        /** The next row, or null at the end; a row that cannot even be parsed is skipped via {@link #skip(long, String)}. */
        abstract Row nextRow() throws IOException;

        final void skip(long line, String why) {
            skip(file + " line " + line, why);
        }

        @Override
        protected final VqaSample readNext() throws IOException {
            Row r;
            while ((r = nextRow()) != null) {
                String p = problem(r);
                if (p == null) {
                    return toSample(r);
                }
                skip(r.line, p);
            }
            return null;
        }

        @Override
        protected final String describe() {
            return file.toString();
        }
    }

    private final class JsonLinesPass extends Pass {
        private final BufferedReader in;
        private long line;

        JsonLinesPass() throws IOException {
            in = Files.newBufferedReader(file, StandardCharsets.UTF_8);
        }

        @Override
        Row nextRow() throws IOException {
            String text;
            while ((text = in.readLine()) != null) {
                line++;
                if (text.isBlank()) {
                    continue;
                }
                JsonNode n;
                try {
                    n = JSON.readTree(text);
                } catch (JsonProcessingException e) {
                    skip(line, "not valid JSON: " + e.getOriginalMessage().lines().findFirst().orElse("")
                            .replaceAll("\\s*\\(?(start marker )?at \\[Source.*$", ""));
                    continue;
                }
                if (n == null || !n.isObject()) {
                    skip(line, "not a JSON object");
                    continue;
                }
                JsonNode qid = n.get(TextVqaFields.QUESTION_ID);
                Object questionId = qid == null || qid.isNull() ? null
                        : qid.isIntegralNumber() && qid.canConvertToLong() ? (Object) qid.longValue() : qid.toString();
                return new Row(line, value(n.get(TextVqaFields.IMAGE)), value(n.get(TextVqaFields.QUESTION)),
                        value(n.get(TextVqaFields.ANSWERS)), questionId, value(n.get(TextVqaFields.IMAGE_ID)));
            }
            return null;
        }

        /** null, a String, a List of such values, or (for anything else) a marker that is neither. */
        private static Object value(JsonNode n) {
            if (n == null || n.isNull()) {
                return null;
            }
            if (n.isTextual()) {
                return n.asText();
            }
            if (n.isArray()) {
                List<Object> out = new ArrayList<>(n.size());
                n.forEach(x -> out.add(x.isTextual() ? x.asText() : (Object) x));
                return out;
            }
            return n;
        }

        @Override
        protected void closeSource() throws IOException {
            in.close();
        }
    }

    private final class CsvPass extends Pass {
        private final MappingIterator<String[]> rows;
        private final Map<String, Integer> columns = new HashMap<>();
        private int width;

        CsvPass() throws IOException {
            rows = CSV.readerFor(String[].class).with(CsvParser.Feature.WRAP_AS_ARRAY)
                    .readValues(Files.newBufferedReader(file, StandardCharsets.UTF_8));
            try {
                if (!rows.hasNextValue()) {
                    throw new IOException(file + " is not a CSV manifest: the file is empty (expected a header row "
                            + "with the columns image, question, answers)");
                }
                String[] header = rows.nextValue();
                width = header.length;
                for (int i = 0; i < header.length; i++) {
                    columns.putIfAbsent(header[i].strip().toLowerCase(Locale.ROOT), i);
                }
                for (String required : List.of(TextVqaFields.IMAGE, TextVqaFields.QUESTION)) {
                    if (!columns.containsKey(required)) {
                        throw new IOException(file + " is not a CSV manifest: the header row " + Arrays.toString(header)
                                + " has no '" + required + "' column (expected image, question, answers)");
                    }
                }
            } catch (IOException | RuntimeException e) {
                rows.close();
                throw e;
            }
        }

        @Override
        Row nextRow() throws IOException {
            while (rows.hasNextValue()) {
                String[] cells = rows.nextValue();
                JsonLocation at = rows.getParser().currentTokenLocation();
                long line = at == null || at.getLineNr() < 1 ? -1 : at.getLineNr();
                if (cells.length == 1 && cells[0].isBlank() && columns.size() > 1) {
                    continue; // an empty line
                }
                if (cells.length != width) {
                    skip(line, cells.length + " cells where the header has " + width);
                    continue;
                }
                String answers = cell(cells, TextVqaFields.ANSWERS);
                String qid = cell(cells, TextVqaFields.QUESTION_ID);
                Object questionId = null;
                if (qid != null && !qid.isBlank()) {
                    try {
                        questionId = Long.parseLong(qid.strip());
                    } catch (NumberFormatException e) {
                        questionId = qid;
                    }
                }
                String imageId = cell(cells, TextVqaFields.IMAGE_ID);
                return new Row(line, cell(cells, TextVqaFields.IMAGE), cell(cells, TextVqaFields.QUESTION),
                        answers == null || answers.isEmpty() ? null : List.of(answers.split(java.util.regex.Pattern.quote(ANSWER_SEPARATOR), -1)),
                        questionId, imageId == null || imageId.isBlank() ? null : imageId);
            }
            return null;
        }

        private String cell(String[] cells, String column) {
            Integer i = columns.get(column);
            return i == null ? null : cells[i];
        }

        @Override
        protected void closeSource() throws IOException {
            rows.close();
        }
    }
}
