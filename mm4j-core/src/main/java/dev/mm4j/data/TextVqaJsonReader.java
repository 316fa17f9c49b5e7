package dev.mm4j.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.OptionalLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the official TextVQA release, {@code TextVQA_0.5.1_<split>.json}, streaming: the parser walks to
 * the {@code "data"} array and materialises one record at a time, so the ~100 MB train file is never
 * held as one tree. Images are {@code <imagesDir>/<image_id>.jpg}.
 *
 * <p>A malformed record (missing or mistyped question, image_id or question_id; answers not a list of
 * strings) is skipped with one warning naming the file and record index, and counted in
 * {@link #skippedCount()}. A malformed file (not JSON, not an object, no {@code "data"} array) fails
 * with an IOException naming the file. Missing or null {@code answers} (the test split) give an empty
 * answer list.
 */
public final class TextVqaJsonReader extends AbstractVqaDataset {
    private static final Logger LOG = LoggerFactory.getLogger(TextVqaJsonReader.class);
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final JsonFactory FACTORY = MAPPER.getFactory();

    private final Path jsonFile;
    private final Path imagesDir;

    /**
     * @param jsonFile the official json file
     * @param imagesDir the folder holding {@code <image_id>.jpg} (need not exist; reading an image then fails)
     */
    public TextVqaJsonReader(Path jsonFile, Path imagesDir) {
        this.jsonFile = jsonFile;
        this.imagesDir = imagesDir;
    }

    /** The images folder the official layout puts beside {@code jsonFile} for {@code split}. */
    public static Path defaultImagesDir(Path jsonFile, TextVqaSplit split) {
        Path parent = jsonFile.toAbsolutePath().getParent();
        return parent.resolve(split.imagesDir());
    }

    public Path jsonFile() {
        return jsonFile;
    }

    public Path imagesDir() {
        return imagesDir;
    }

    @Override
    public OptionalLong sizeIfCheap() {
        return OptionalLong.empty();
    }

    @Override
    public String describe() {
        return jsonFile + " (official TextVQA json, images in " + imagesDir + ")";
    }

    @Override
    protected SampleIterator openPass() {
        try {
            return new JsonPass();
        } catch (IOException e) {
            throw VqaDataset.unchecked(e);
        }
    }

    /** Opens {@link #jsonFile} and reads every record, for callers that want the checked exception up front. */
    public void checkReadable() throws IOException {
        try (JsonPass pass = new JsonPass()) {
            // opening positions the parser on the data array, which validates the header
        }
    }

    private final class JsonPass implements SampleIterator {
        private final boolean detailed = firstPass();
        private final InputStream in;
        private final JsonParser parser;
        private final String fileName = jsonFile.getFileName().toString();
        private VqaSample next;
        private int index = -1;
        private long skipped;
        private boolean done;
        private boolean closed;

        JsonPass() throws IOException {
            this.in = Files.newInputStream(jsonFile);
            try {
                this.parser = FACTORY.createParser(in);
                parser.setCodec(MAPPER);
                seekData();
            } catch (JsonProcessingException e) {
                in.close();
                throw new IOException(jsonFile + " is not valid TextVQA json: " + e.getOriginalMessage()
                        + " (line " + e.getLocation().getLineNr() + ")", e);
            } catch (IOException | RuntimeException e) {
                in.close();
                throw e;
            }
        }

        private void seekData() throws IOException {
            JsonToken t = parser.nextToken();
            if (t != JsonToken.START_OBJECT) {
                throw new IOException(jsonFile + " is not TextVQA json: expected a top-level object with a \"data\" array, found "
                        + (t == null ? "an empty file" : t.asString() == null ? t.name() : t.asString()));
            }
            while ((t = parser.nextToken()) == JsonToken.FIELD_NAME) {
                String name = parser.currentName();
                JsonToken value = parser.nextToken();
                if ("data".equals(name)) {
                    if (value != JsonToken.START_ARRAY) {
                        throw new IOException(jsonFile + " is not TextVQA json: \"data\" is not an array");
                    }
                    return;
                }
                parser.skipChildren();
            }
            throw new IOException(jsonFile + " is not TextVQA json: no \"data\" array in the top-level object");
        }

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
                    JsonToken t = parser.nextToken();
                    if (t == JsonToken.END_ARRAY || t == null) {
                        if (t == null) {
                            throw new IOException(jsonFile + ": unexpected end of file inside the \"data\" array after record " + index);
                        }
                        done = true;
                        finished(skipped);
                        if (skipped > 0) {
                            LOG.warn("{}: skipped {} malformed record(s) of {}", fileName, skipped, index + 1);
                        }
                        close();
                        return false;
                    }
                    index++;
                    JsonNode node = parser.readValueAsTree();
                    String problem = problem(node);
                    if (problem != null) {
                        skipped++;
                        if (detailed) {
                            LOG.warn("{} record {}: skipped, {}", fileName, index, problem);
                        }
                        continue;
                    }
                    next = toSample(node);
                    return true;
                }
            } catch (JsonProcessingException e) {
                close();
                throw VqaDataset.unchecked(new IOException(jsonFile + " is not valid json near record " + index + ": "
                        + e.getOriginalMessage() + " (line " + e.getLocation().getLineNr() + ")", e));
            } catch (IOException e) {
                close();
                throw VqaDataset.unchecked(e.getMessage() != null && e.getMessage().contains(jsonFile.toString())
                        ? e : new IOException(jsonFile + ": " + e.getMessage(), e));
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

        private VqaSample toSample(JsonNode node) {
            String imageId = node.get(TextVqaFields.IMAGE_ID).asText();
            List<String> answers = new ArrayList<>();
            JsonNode a = node.get(TextVqaFields.ANSWERS);
            if (a != null && a.isArray()) {
                a.forEach(x -> answers.add(x.asText()));
            }
            Map<String, Object> extras = new LinkedHashMap<>();
            Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
            while (fields.hasNext()) {
                Map.Entry<String, JsonNode> f = fields.next();
                switch (f.getKey()) {
                    case TextVqaFields.QUESTION, TextVqaFields.QUESTION_ID, TextVqaFields.IMAGE_ID, TextVqaFields.ANSWERS -> { }
                    default -> extras.put(f.getKey(), toJava(f.getValue()));
                }
            }
            return new VqaSample(
                    node.get(TextVqaFields.QUESTION_ID).asLong(),
                    node.get(TextVqaFields.QUESTION).asText(),
                    imageId,
                    List.copyOf(answers),
                    new VqaSample.FileImage(imagesDir.resolve(imageId + ".jpg")),
                    TextVqaFields.canonicalExtras(extras),
                    fileName + " record " + index);
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            try {
                parser.close();
                in.close();
            } catch (IOException e) {
                LOG.debug("closing {}", jsonFile, e);
            }
            released(this);
        }
    }

    /** Why a record cannot be used, or null when it can. */
    static String problem(JsonNode node) {
        if (!node.isObject()) {
            return "not a json object";
        }
        JsonNode q = node.get(TextVqaFields.QUESTION);
        if (q == null || q.isNull()) {
            return "missing \"question\"";
        }
        if (!q.isTextual()) {
            return "\"question\" is not a string";
        }
        JsonNode img = node.get(TextVqaFields.IMAGE_ID);
        if (img == null || img.isNull()) {
            return "missing \"image_id\"";
        }
        if (!img.isTextual() || img.asText().isBlank()) {
            return "\"image_id\" is not a non-empty string";
        }
        JsonNode qid = node.get(TextVqaFields.QUESTION_ID);
        if (qid == null || qid.isNull()) {
            return "missing \"question_id\"";
        }
        if (!qid.canConvertToLong() || !qid.isIntegralNumber()) {
            return "\"question_id\" is not an integer";
        }
        JsonNode a = node.get(TextVqaFields.ANSWERS);
        if (a != null && !a.isNull()) {
            if (!a.isArray()) {
                return "\"answers\" is not a list";
            }
            for (JsonNode x : a) {
                if (!x.isTextual()) {
                    return "\"answers\" holds a non-string";
                }
            }
        }
        return null;
    }

    /** JSON to plain Java: String, Integer (when it fits) / Long / Double, Boolean, List, LinkedHashMap, null. */
    static Object toJava(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.isTextual()) {
            return n.asText();
        }
        if (n.isIntegralNumber()) {
            return n.canConvertToInt() ? (Object) n.intValue() : (Object) n.longValue();
        }
        if (n.isNumber()) {
            return n.doubleValue();
        }
        if (n.isBoolean()) {
            return n.booleanValue();
        }
        if (n.isArray()) {
            List<Object> out = new ArrayList<>(n.size());
            n.forEach(x -> out.add(toJava(x)));
            return TextVqaFields.listOf(out);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        n.fields().forEachRemaining(e -> out.put(e.getKey(), toJava(e.getValue())));
        return java.util.Collections.unmodifiableMap(out);
    }
}
