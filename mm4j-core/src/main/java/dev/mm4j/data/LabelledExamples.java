package dev.mm4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Labelled examples for classification beyond VQA, in the three layouts TorchMultimodal's FLAVA example fine-tunes on:
 * <ul>
 *   <li><b>text</b> ({@link Kind#TEXT}): GLUE's TSV layout (a header row, tab-separated, no quoting: one sentence
 *       column or a pair such as QNLI's {@code question}/{@code sentence}, a {@code label} column), or CSV / JSON Lines
 *       with {@code text} (and {@code text_pair}) and {@code label};</li>
 *   <li><b>image</b> ({@link Kind#IMAGE}): torchvision's {@code ImageFolder} layout, one folder per class under each
 *       split's folder ({@code train/}, {@code val|valid|validation|dev/}, {@code test/}), as RenderedSST2 is
 *       distributed; class names are the sorted folder names (torchvision's order);</li>
 *   <li><b>image + text</b> ({@link Kind#IMAGE_TEXT}): JSON Lines or CSV manifests with {@code img} (or
 *       {@code image}, relative to the manifest's folder), {@code text} and {@code label}, e.g. Hateful Memes.</li>
 * </ul>
 * A folder holds a split as {@code SPLIT.tsv|.csv|.jsonl} (GLUE names its validation split {@code dev}) or as
 * {@code SPLIT/} (ImageFolder); a single file is the training split. Labels are names or indices (strings here);
 * {@link #classNames} orders them. A record without a usable field fails with one line naming file, line and field.
 */
public final class LabelledExamples {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> IMAGE_EXTENSIONS = PretrainingSource.IMAGE_EXTENSIONS;
    /** Sentence-pair columns of the GLUE tasks (first, second), tried in this order. */
    private static final List<String[]> PAIR_COLUMNS = List.of(new String[] {"question", "sentence"},
            new String[] {"sentence1", "sentence2"}, new String[] {"question1", "question2"},
            new String[] {"premise", "hypothesis"}, new String[] {"text", "text_pair"});
    private static final List<String> SINGLE_COLUMNS = List.of("sentence", "text");
    /** The names a validation split goes by, tried in this order. */
    public static final List<String> VALIDATION_NAMES = List.of("val", "valid", "validation", "dev");

    private LabelledExamples() {}

    /** What the examples hold, which decides the head that reads them (TorchMultimodal's required_embedding). */
    public enum Kind {
        TEXT, IMAGE, IMAGE_TEXT;

        /** TorchMultimodal's name of the embedding the head reads: text, image or mm. */
        public String requiredEmbedding() {
            return this == TEXT ? "text" : this == IMAGE ? "image" : "mm";
        }
    }

    /**
     * One example.
     *
     * @param id the record's id (the file's {@code id}/{@code idx}/{@code index} column, or the image's path)
     * @param text the text (or the pair's first), null for images alone
     * @param textPair the pair's second text, or null
     * @param image the image file, or null for text alone
     * @param label the label as written (name or index), or null where the data has none (GLUE test files)
     * @param origin file and line, for messages
     */
    public record Example(String id, String text, String textPair, Path image, String label, String origin) {}

    /** Examples of one split and their kind. */
    public record Split(Kind kind, List<Example> examples, Path source) {}

    /** Whether {@code data} is in one of these layouts (and not a VQA dataset). */
    public static boolean recognizes(Path data) {
        try {
            Path train = find(data, "train");
            return train != null && (Files.isDirectory(train) || kindOfFile(train) != null);
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * The examples of {@code split} (train, val, test; val also finds valid, validation, dev).
     *
     * @throws IOException when the split is missing or a record is unusable (one line naming it)
     */
    public static Split read(Path data, String split) throws IOException {
        Path source = find(data, split);
        if (source == null) {
            throw new IOException(data + ": no " + split + " split (expected " + split + ".tsv, " + split + ".csv, "
                    + split + ".jsonl or an ImageFolder " + split + "/ with one folder per class)");
        }
        if (Files.isDirectory(source)) {
            return new Split(Kind.IMAGE, imageFolder(source), source);
        }
        Kind kind = kindOfFile(source);
        if (kind == null) {
            throw new IOException(source + ": no text or image column (expected a GLUE TSV header, or text / img and "
                    + "label fields)");
        }
        return new Split(kind, records(source), source);
    }

    /** Whether {@code data} has {@code split}. */
    public static boolean has(Path data, String split) {
        try {
            return find(data, split) != null;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * The class names: the labels of {@code examples} sorted (as numbers when they all are, so that label indices
     * keep their meaning; ImageFolder's folder names as torchvision sorts them).
     */
    public static List<String> classNames(List<Example> examples) {
        TreeSet<String> labels = new TreeSet<>();
        for (Example e : examples) {
            if (e.label() != null) {
                labels.add(e.label());
            }
        }
        if (!labels.isEmpty() && labels.stream().allMatch(l -> l.matches("-?\\d+"))) {
            return labels.stream().sorted((a, b) -> Long.compare(Long.parseLong(a), Long.parseLong(b))).toList();
        }
        return List.copyOf(labels);
    }

    private static Path find(Path data, String split) throws IOException {
        if (Files.isRegularFile(data)) {
            return split.equals("train") ? data : null;
        }
        if (!Files.isDirectory(data)) {
            return null;
        }
        List<String> names = split.equals("val") ? VALIDATION_NAMES : List.of(split);
        for (String name : names) {
            for (String ext : List.of(".tsv", ".csv", ".jsonl")) {
                Path f = data.resolve(name + ext);
                if (Files.isRegularFile(f)) {
                    return f;
                }
            }
            Path dir = data.resolve(name);
            if (Files.isDirectory(dir) && isImageFolder(dir)) {
                return dir;
            }
        }
        return null;
    }

    private static boolean isImageFolder(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(Files::isDirectory);
        }
    }

    private static List<Example> imageFolder(Path dir) throws IOException {
        List<Example> out = new ArrayList<>();
        List<Path> classes;
        try (Stream<Path> s = Files.list(dir)) {
            classes = s.filter(Files::isDirectory).sorted().toList();
        }
        for (Path c : classes) {
            String label = c.getFileName().toString();
            try (Stream<Path> s = Files.walk(c)) {
                for (Path f : s.filter(Files::isRegularFile).filter(LabelledExamples::isImage).sorted().toList()) {
                    out.add(new Example(dir.relativize(f).toString(), null, null, f, label, f.toString()));
                }
            }
        }
        if (out.isEmpty()) {
            throw new IOException(dir + ": no image files in its class folders (" + String.join(", ", new TreeSet<>(IMAGE_EXTENSIONS)) + ")");
        }
        return out;
    }

    private static boolean isImage(Path f) {
        String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
        int dot = n.lastIndexOf('.');
        return dot >= 0 && IMAGE_EXTENSIONS.contains(n.substring(dot));
    }

    /** The kind of a TSV / CSV / JSON Lines file from its header or first record; null when it is none of them. */
    static Kind kindOfFile(Path f) throws IOException {
        List<String> columns = columns(f);
        if (columns == null) {
            return null;
        }
        boolean image = columns.contains("img") || columns.contains("image");
        boolean text = textColumns(columns) != null;
        if (!columns.contains("label") && !f.getFileName().toString().startsWith("test")) {
            return null;
        }
        return image && text ? Kind.IMAGE_TEXT : image ? Kind.IMAGE : text ? Kind.TEXT : null;
    }

    private static String[] textColumns(List<String> columns) {
        for (String[] p : PAIR_COLUMNS) {
            if (columns.contains(p[0]) && columns.contains(p[1])) {
                return p;
            }
        }
        for (String c : SINGLE_COLUMNS) {
            if (columns.contains(c)) {
                return new String[] {c};
            }
        }
        return null;
    }

    private static String ext(Path f) {
        String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".tsv") ? "tsv" : n.endsWith(".csv") ? "csv" : n.endsWith(".jsonl") || n.endsWith(".json") ? "jsonl" : "";
    }

    private static List<String> columns(Path f) throws IOException {
        switch (ext(f)) {
            case "tsv" -> {
                try (var r = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
                    String header = r.readLine();
                    return header == null ? null : Arrays.asList(stripBom(header).split("\t", -1));
                }
            }
            case "csv" -> {
                try (var r = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
                    String header = r.readLine();
                    return header == null ? null : Arrays.stream(stripBom(header).split(",", -1)).map(String::trim)
                            .map(s -> s.replace("\"", "")).toList();
                }
            }
            case "jsonl" -> {
                try (var r = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        if (!line.isBlank()) {
                            JsonNode n;
                            try {
                                n = JSON.readTree(line);
                            } catch (IOException e) {
                                return null;
                            }
                            List<String> names = new ArrayList<>();
                            n.fieldNames().forEachRemaining(names::add);
                            return names;
                        }
                    }
                    return null;
                }
            }
            default -> {
                return null;
            }
        }
    }

    private static String stripBom(String s) {
        return s.startsWith("\uFEFF") ? s.substring(1) : s;
    }

    /** The rows of a TSV / CSV / JSON Lines file as column -> value maps, with their line numbers. */
    private static List<Example> records(Path f) throws IOException {
        List<String> columns = columns(f);
        String[] textCols = textColumns(columns);
        String imageCol = columns.contains("img") ? "img" : columns.contains("image") ? "image" : null;
        String idCol = Stream.of("id", "idx", "index").filter(columns::contains).findFirst().orElse(null);
        boolean labelled = columns.contains("label");
        List<Example> out = new ArrayList<>();
        int line = 1;
        for (Map<String, String> row : rows(f, columns)) {
            line++;
            String origin = f + ":" + line;
            String text = textCols == null ? null : field(row, textCols[0], origin);
            String pair = textCols == null || textCols.length < 2 ? null : field(row, textCols[1], origin);
            Path image = null;
            if (imageCol != null) {
                String p = field(row, imageCol, origin);
                image = f.toAbsolutePath().getParent().resolve(p).normalize();
            }
            String label = labelled ? field(row, "label", origin) : null;
            String id = idCol != null && row.get(idCol) != null ? row.get(idCol) : String.valueOf(line - 1);
            out.add(new Example(id, text, pair, image, label, origin));
        }
        if (out.isEmpty()) {
            throw new IOException(f + ": no records");
        }
        return out;
    }

    private static String field(Map<String, String> row, String name, String origin) throws IOException {
        String v = row.get(name);
        if (v == null || v.isEmpty() && !name.equals("text_pair")) {
            throw new IOException(origin + ": field '" + name + "' is missing or empty");
        }
        return v;
    }

    private static List<Map<String, String>> rows(Path f, List<String> columns) throws IOException {
        List<Map<String, String>> out = new ArrayList<>();
        switch (ext(f)) {
            case "tsv" -> {
                List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
                for (int i = 1; i < lines.size(); i++) {
                    if (lines.get(i).isEmpty()) {
                        continue;
                    }
                    String[] cells = lines.get(i).split("\t", -1);
                    if (cells.length != columns.size()) {
                        throw new IOException(f + ":" + (i + 1) + ": " + cells.length + " tab-separated cells, the header has "
                                + columns.size());
                    }
                    Map<String, String> row = new java.util.HashMap<>();
                    for (int c = 0; c < cells.length; c++) {
                        row.put(columns.get(c), cells[c]);
                    }
                    out.add(row);
                }
            }
            case "csv" -> {
                CsvMapper csv = new CsvMapper();
                csv.enable(CsvParser.Feature.WRAP_AS_ARRAY);
                try (Reader r = Files.newBufferedReader(f, StandardCharsets.UTF_8);
                        MappingIterator<String[]> it = csv.readerFor(String[].class).readValues(r)) {
                    boolean header = true;
                    int line = 0;
                    while (it.hasNext()) {
                        String[] cells = it.next();
                        line++;
                        if (header) {
                            header = false;
                            continue;
                        }
                        if (cells.length == 1 && cells[0].isEmpty()) {
                            continue;
                        }
                        if (cells.length != columns.size()) {
                            throw new IOException(f + ":" + line + ": " + cells.length + " cells, the header has " + columns.size());
                        }
                        Map<String, String> row = new java.util.HashMap<>();
                        for (int c = 0; c < cells.length; c++) {
                            row.put(columns.get(c), cells[c]);
                        }
                        out.add(row);
                    }
                }
            }
            default -> {
                List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
                for (int i = 0; i < lines.size(); i++) {
                    if (lines.get(i).isBlank()) {
                        continue;
                    }
                    JsonNode n;
                    try {
                        n = JSON.readTree(lines.get(i));
                    } catch (IOException e) {
                        throw new IOException(f + ":" + (i + 1) + ": not a JSON object");
                    }
                    Map<String, String> row = new java.util.HashMap<>();
                    n.fields().forEachRemaining(e -> row.put(e.getKey(), e.getValue().isNull() ? null : e.getValue().asText()));
                    out.add(row);
                }
            }
        }
        return out;
    }
}
