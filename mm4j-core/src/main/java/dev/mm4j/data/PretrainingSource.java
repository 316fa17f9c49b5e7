package dev.mm4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Stream;

/**
 * One source of pretraining data, as TorchMultimodal's {@code datasets.selected: [image, text, vl]}: image-text
 * pairs ({@code vl}: contrastive, ITM, MMM), text alone ({@code text}: MLM) or images alone ({@code image}: MIM).
 */
public sealed interface PretrainingSource {
    /** What a source holds, and so which objectives its batches train. */
    enum Kind {
        /** Image-text pairs: contrastive + ITM + MMM (TorchMultimodal's {@code vl}). */
        PAIRS,
        /** Text alone: MLM ({@code text}). */
        TEXT,
        /** Images alone: MIM ({@code image}). */
        IMAGE;

        /** {@code pairs}, {@code text} or {@code image} (also TorchMultimodal's {@code vl}), any case. */
        public static Kind parse(String s) {
            String k = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
            return switch (k) {
                case "pairs", "vl" -> PAIRS;
                case "text" -> TEXT;
                case "image" -> IMAGE;
                default -> throw new IllegalArgumentException("source kind must be pairs (vl), text or image, got '"
                        + s + "'");
            };
        }
    }

    /** Image file name endings an image folder is read for. */
    Set<String> IMAGE_EXTENSIONS = Set.of(".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff");

    /** The name in messages and batch records. */
    String name();

    Kind kind();

    /** Number of records. */
    int size();

    /** Image-text pairs (the caption manifests retrieval reads: {@link CaptionPairs}). */
    record Pairs(String name, List<CaptionPairs.Pair> pairs) implements PretrainingSource {
        public Pairs {
            pairs = List.copyOf(pairs);
            if (pairs.isEmpty()) {
                throw new IllegalArgumentException("pairs source '" + name + "' is empty");
            }
        }

        @Override
        public Kind kind() {
            return Kind.PAIRS;
        }

        @Override
        public int size() {
            return pairs.size();
        }

        /** The captions, in record order. */
        public List<String> captions() {
            return pairs.stream().map(CaptionPairs.Pair::text).toList();
        }
    }

    /** Texts, with where each came from ({@code file line N}). */
    record Texts(String name, List<String> texts, List<String> origins) implements PretrainingSource {
        public Texts {
            texts = List.copyOf(texts);
            origins = List.copyOf(origins);
            if (texts.size() != origins.size()) {
                throw new IllegalArgumentException(texts.size() + " texts but " + origins.size() + " origins");
            }
            if (texts.isEmpty()) {
                throw new IllegalArgumentException("text source '" + name + "' is empty");
            }
        }

        @Override
        public Kind kind() {
            return Kind.TEXT;
        }

        @Override
        public int size() {
            return texts.size();
        }
    }

    /** Image files. */
    record Images(String name, List<Path> images) implements PretrainingSource {
        public Images {
            images = List.copyOf(images);
            if (images.isEmpty()) {
                throw new IllegalArgumentException("image source '" + name + "' is empty");
            }
        }

        @Override
        public Kind kind() {
            return Kind.IMAGE;
        }

        @Override
        public int size() {
            return images.size();
        }
    }

    /** Pairs from a caption manifest or a folder / dataset {@link CaptionPairs#read} understands. */
    static Pairs pairs(Path source, String split) throws IOException {
        return new Pairs(source.toString(), CaptionPairs.read(source, split));
    }

    /**
     * Texts from a {@code .txt} file (one text per line; blank lines are skipped, as line breaks between
     * paragraphs) or a {@code .jsonl} file (one object per line with a string field {@code text}; a line that is
     * not such an object is an error naming the file and line).
     */
    static Texts texts(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("text source " + file + " is not a file");
        }
        String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
        boolean jsonl = n.endsWith(".jsonl");
        if (!jsonl && !n.endsWith(".txt")) {
            throw new IOException(file + ": a text source must be a .txt (one text per line) or .jsonl (field 'text') file");
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new IOException(file + ": not UTF-8 text", e);
        }
        ObjectMapper om = jsonl ? new ObjectMapper() : null;
        List<String> texts = new ArrayList<>();
        List<String> origins = new ArrayList<>();
        String shortName = file.getFileName().toString();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty()) {
                continue;
            }
            String where = shortName + " line " + (i + 1);
            String text = line;
            if (jsonl) {
                JsonNode node;
                try {
                    node = om.readTree(line);
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new IOException(file + " line " + (i + 1) + ": not a JSON object: " + e.getOriginalMessage());
                }
                JsonNode t = node == null ? null : node.get("text");
                if (node == null || !node.isObject()) {
                    throw new IOException(file + " line " + (i + 1) + ": not a JSON object");
                }
                if (t == null || !t.isTextual()) {
                    throw new IOException(file + " line " + (i + 1) + ": field 'text' is "
                            + (t == null ? "missing" : "not a string"));
                }
                text = t.asText().strip();
                if (text.isEmpty()) {
                    throw new IOException(file + " line " + (i + 1) + ": field 'text' is empty");
                }
            }
            texts.add(text);
            origins.add(where);
        }
        if (texts.isEmpty()) {
            throw new IOException(file + " holds no text");
        }
        return new Texts(file.toString(), texts, origins);
    }

    /**
     * The image files under {@code dir}, recursively, in path order (files named like images; whether they decode
     * is found out when they are loaded: one that does not is skipped with one warning and counted).
     */
    static Images images(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException("image source " + dir + " is not a folder");
        }
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(Files::isRegularFile).filter(PretrainingSource::isImageName).sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IOException(dir + " holds no image files (" + String.join(", ", new java.util.TreeSet<>(IMAGE_EXTENSIONS))
                    + ")");
        }
        return new Images(dir.toString(), files);
    }

    private static boolean isImageName(Path p) {
        String n = Objects.toString(p.getFileName(), "").toLowerCase(Locale.ROOT);
        int dot = n.lastIndexOf('.');
        return dot >= 0 && IMAGE_EXTENSIONS.contains(n.substring(dot));
    }
}
