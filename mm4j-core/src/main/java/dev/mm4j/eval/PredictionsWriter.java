package dev.mm4j.eval;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes predictions in the EvalAI / TextVQA submission format:
 * {@code [{"question_id": <int>, "answer": "<str>"}, ...]}, atomically (temp file + fsync + rename).
 */
public final class PredictionsWriter {
    private PredictionsWriter() {}

    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** One prediction. */
    public record Prediction(long questionId, String answer) {}

    /** Writes the predictions, in the given order, to {@code target}. */
    public static void write(Path target, List<Prediction> predictions) throws IOException {
        AtomicFiles.write(target, out -> {
            try (JsonGenerator g = MAPPER.getFactory().createGenerator(out, JsonEncoding.UTF8)) {
                g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
                g.writeStartArray();
                for (Prediction p : predictions) {
                    g.writeStartObject();
                    g.writeNumberField("question_id", p.questionId());
                    g.writeStringField("answer", p.answer() == null ? "" : p.answer());
                    g.writeEndObject();
                }
                g.writeEndArray();
            }
        });
    }

    /** Reads a predictions file back (for tests and re-scoring). */
    public static List<Prediction> read(Path file) throws IOException {
        var root = MAPPER.readTree(file.toFile());
        if (!root.isArray()) {
            throw new IOException(file + ": expected a JSON array of {question_id, answer}");
        }
        var out = new java.util.ArrayList<Prediction>(root.size());
        for (var n : root) {
            if (!n.has("question_id") || !n.has("answer")) {
                throw new IOException(file + ": entry without question_id/answer: " + n);
            }
            out.add(new Prediction(n.get("question_id").asLong(), n.get("answer").asText()));
        }
        return out;
    }
}
