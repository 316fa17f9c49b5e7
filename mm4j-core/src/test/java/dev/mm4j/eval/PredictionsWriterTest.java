package dev.mm4j.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PredictionsWriterTest {
    @TempDir Path dir;

    @Test
    void writesSubmissionFormat() throws Exception {
        Path f = dir.resolve("out/predictions.json");
        var preds = List.of(new PredictionsWriter.Prediction(34602, "nokia"),
                new PredictionsWriter.Prediction(34603, "say \"hi\" <b>ü</b>"));
        PredictionsWriter.write(f, preds);
        var tree = new ObjectMapper().readTree(f.toFile());
        assertTrue(tree.isArray());
        assertEquals(2, tree.size());
        assertEquals(34602, tree.get(0).get("question_id").intValue());
        assertTrue(tree.get(0).get("question_id").isIntegralNumber());
        assertEquals("nokia", tree.get(0).get("answer").asText());
        var names = new java.util.ArrayList<String>();
        tree.get(1).fieldNames().forEachRemaining(names::add);
        assertEquals(List.of("question_id", "answer"), names);
        assertEquals("say \"hi\" <b>ü</b>", tree.get(1).get("answer").asText());
        assertEquals(preds, PredictionsWriter.read(f));
        try (var s = Files.list(f.getParent())) {
            assertEquals(1, s.count(), "no temp files left behind");
        }
    }
}
