package dev.mm4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvSchema;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Image-caption pairs for contrastive (retrieval) training and evaluation, from:
 * <ul>
 *   <li>a manifest: JSON Lines ({@code .jsonl}, one {@code {"image": ..., "text": ...}} per line) or CSV ({@code .csv}
 *       with a header naming {@code image} and {@code text}); image paths relative to the manifest's folder;
 *   <li>a folder holding {@code captions_SPLIT.jsonl} (what {@code synth} writes);
 *   <li>else a TextVQA-format dataset's split, the text being the question and its majority answer.
 * </ul>
 */
public final class CaptionPairs {
    /** One image and a text that describes it; {@code origin} names the record in messages. */
    public record Pair(VqaSample.ImageSource image, String text, String origin) {
        /** The image's identity (its path, or the record for embedded bytes): pairs of one image share it. */
        public String imageKey() {
            return image.describe();
        }
    }

    /** The manifest {@code synth} writes for a split ({@code captions_train.jsonl}, ...). */
    public static String manifestName(String split) {
        return "captions_" + split + ".jsonl";
    }

    private CaptionPairs() {}

    /** The pairs of {@code split} of {@code source} (a manifest file is the split itself). */
    public static List<Pair> read(Path source, String split) throws IOException {
        if (Files.isRegularFile(source) && isManifest(source)) {
            return manifest(source);
        }
        if (Files.isDirectory(source) && Files.isRegularFile(source.resolve(manifestName(split)))) {
            return manifest(source.resolve(manifestName(split)));
        }
        List<Pair> out = new ArrayList<>();
        try (VqaDataset ds = TextVqaDatasets.open(source, split)) {
            for (VqaSample s : ds) {
                if (s.answers().isEmpty()) {
                    continue; // no answer, no caption (test split)
                }
                out.add(new Pair(s.image(), s.question() + " " + Labels.majority(s.answers()), s.describe()));
            }
        } catch (IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(source + ": " + e.getMessage(), e);
        }
        if (out.isEmpty()) {
            throw new IOException("split '" + split + "' of " + source + " has no question with answers to make captions of");
        }
        return out;
    }

    static boolean isManifest(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".jsonl") || n.endsWith(".csv");
    }

    /** A JSON Lines or CSV manifest; a record without an image or a text is an error naming it. */
    public static List<Pair> manifest(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        List<Pair> out = new ArrayList<>();
        boolean csv = file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".csv");
        if (csv) {
            CsvMapper m = new CsvMapper();
            try (MappingIterator<Map<String, String>> it = m.readerForMapOf(String.class)
                    .with(CsvSchema.emptySchema().withHeader()).readValues(file.toFile())) {
                int row = 1;
                while (it.hasNext()) {
                    row++;
                    Map<String, String> r = it.next();
                    out.add(pair(dir, r.get("image"), r.get("text"), file.getFileName() + " row " + row));
                }
            } catch (com.fasterxml.jackson.core.JsonProcessingException | RuntimeException e) {
                throw new IOException(file + ": not a CSV manifest with a header 'image,text': " + e.getMessage(), e);
            }
        } else {
            ObjectMapper m = new ObjectMapper();
            List<String> lines = Files.readAllLines(file);
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i).strip();
                if (line.isEmpty()) {
                    continue;
                }
                String where = file.getFileName() + " line " + (i + 1);
                JsonNode n;
                try {
                    n = m.readTree(line);
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new IOException(where + ": not a JSON object: " + e.getOriginalMessage());
                }
                out.add(pair(dir, n.path("image").asText(null), n.path("text").asText(null), where));
            }
        }
        if (out.isEmpty()) {
            throw new IOException(file + " holds no image-text pair");
        }
        return out;
    }

    private static Pair pair(Path dir, String image, String text, String where) throws IOException {
        if (image == null || image.isBlank()) {
            throw new IOException(where + ": field 'image' is missing or empty");
        }
        if (text == null || text.isBlank()) {
            throw new IOException(where + ": field 'text' is missing or empty");
        }
        Path p = dir.resolve(image);
        if (!Files.isRegularFile(p)) {
            throw new IOException(where + ": image " + p + " does not exist");
        }
        return new Pair(new VqaSample.FileImage(p), text, where);
    }
}
