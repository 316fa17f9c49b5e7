package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.LabelledExamples;
import dev.mm4j.data.SyntheticLabelled;
import dev.mm4j.eval.LabelledClassifier;
import dev.mm4j.flava.RequiredEmbedding;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Classification on labelled text and images through {@link Finetuner#builder()}: the head reads the encoder the data
 * has, the run writes classes, bundle, metrics and predictions, and the bundle predicts what the run scored.
 */
public class ClassificationFinetunerTest {
    /** A tiny FLAVA with a one-hidden-layer head: the labelled-classification tests' model (also the server's). */
    public static final Map<String, Object> TINY = Map.ofEntries(Map.entry("image_size", 32), Map.entry("patch_size", 8),
            Map.entry("image_hidden_size", 32), Map.entry("image_num_attention_heads", 2),
            Map.entry("image_num_hidden_layers", 1), Map.entry("image_intermediate_size", 64),
            Map.entry("text_hidden_size", 32), Map.entry("text_num_attention_heads", 2),
            Map.entry("text_num_hidden_layers", 1), Map.entry("text_intermediate_size", 64),
            Map.entry("max_position_embeddings", 40), Map.entry("multimodal_hidden_size", 32),
            Map.entry("multimodal_num_attention_heads", 2), Map.entry("multimodal_num_hidden_layers", 1),
            Map.entry("multimodal_intermediate_size", 64), Map.entry("text_and_image_proj_size", 16),
            Map.entry("classifier_hidden_sizes", 32));

    @TempDir
    Path dir;

    Finetuner.Builder run(Path data, String out) {
        return Finetuner.builder().data(data).noCheckpoint().model(TINY).maxSteps(4).batchSize(8).seed(3)
                .outputDir(dir.resolve(out)).set("print_loss", false);
    }

    @Test
    void textPairsTrainTheTextHeadAndTheBundlePredictsWhatTheRunScored() throws Exception {
        Path data = dir.resolve("pairs");
        SyntheticLabelled.textPairs(data, new SyntheticLabelled.Sizes(40, 24, 6), 1);
        Finetuner f = run(data, "text").build();
        Finetuner.Result r = f.run();
        assertEquals(Finetuner.Status.COMPLETED, r.status());
        assertEquals(4, r.steps());
        ClassificationFinetuner.Result full = f.lastLabelled();
        assertEquals(RequiredEmbedding.TEXT, full.head());
        assertEquals(List.of("entailment", "not_entailment"), full.classes());
        assertEquals("entailment\nnot_entailment\n", Files.readString(r.outDir().resolve("classes.txt")));
        assertEquals(0.5, r.baselineAccuracy(), 1e-12); // balanced dev split
        JsonNode info = new ObjectMapper().readTree(r.modelDir().resolve("bundle.json").toFile());
        assertEquals("classification", info.get("task").asText());
        assertEquals("text", info.get("required_embedding").asText());
        List<String> lines = Files.readAllLines(r.outDir().resolve("predictions.jsonl"));
        assertEquals(24, lines.size());
        long correct = lines.stream().filter(l -> {
            try {
                JsonNode n = new ObjectMapper().readTree(l);
                return n.get("prediction").asText().equals(n.get("label").asText());
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }).count();
        assertEquals(correct / 24.0, r.valAccuracy(), 1e-12);
        JsonNode ev = new ObjectMapper().readTree(r.outDir().resolve("eval.json").toFile());
        assertEquals(r.valAccuracy(), ev.get("accuracy").asDouble(), 1e-6);
        assertEquals(24, ev.get("count").asInt());
        // the exported bundle gives the same predictions
        try (NDManager m = NDManager.newBaseManager(); ModelBundle.Loaded b = ModelBundle.load(r.modelDir(), m)) {
            LabelledClassifier c = LabelledClassifier.of(b);
            var dev = LabelledExamples.read(data, "val").examples();
            assertEquals(String.join("\n", lines) + "\n", c.toJsonLines(c.predict(dev, 5)));
            // GLUE's test file has no labels: predictions still come
            assertEquals(6, c.predict(LabelledExamples.read(data, "test").examples(), 4).size());
        }
    }

    @Test
    void anImageFolderTrainsTheImageHeadAndLossFalls() throws Exception {
        Path data = dir.resolve("rendered");
        SyntheticLabelled.renderedSentences(data, new SyntheticLabelled.Sizes(16, 8, 2), 32, 1);
        Finetuner.Result r = run(data, "image").maxSteps(6).learningRate(3e-3).build().run();
        assertEquals(Finetuner.Status.COMPLETED, r.status());
        JsonNode info = new ObjectMapper().readTree(r.modelDir().resolve("bundle.json").toFile());
        assertEquals("image", info.get("required_embedding").asText());
        assertEquals("negative\npositive\n", Files.readString(r.outDir().resolve("classes.txt")));
        assertEquals(8, Files.readAllLines(r.outDir().resolve("predictions.jsonl")).size());
        assertEquals(6, r.losses().size());
        assertTrue(r.losses().stream().allMatch(l -> Double.isFinite(l) && l > 0), r.losses().toString());
    }

    @Test
    void imageAndTextManifestsTrainTheMultimodalHeadOrTheHeadAsked() throws Exception {
        Path images = dir.resolve("rendered");
        SyntheticLabelled.renderedSentences(images, new SyntheticLabelled.Sizes(12, 6, 0), 32, 2);
        Path memes = dir.resolve("memes");
        Files.createDirectories(memes);
        for (String split : List.of("train", "val")) {
            StringBuilder sb = new StringBuilder();
            int id = 0;
            for (LabelledExamples.Example e : LabelledExamples.read(images, split).examples()) {
                sb.append(String.format("{\"id\": %d, \"img\": \"%s\", \"text\": \"a %s meme\", \"label\": %d}%n", id++,
                        memes.relativize(e.image()).toString().replace('\\', '/'), e.label(), e.label().equals("positive") ? 1 : 0));
            }
            Files.writeString(memes.resolve(split + ".jsonl"), sb.toString());
        }
        Finetuner f = run(memes, "mm").build();
        Finetuner.Result r = f.run();
        assertEquals(RequiredEmbedding.MM, f.lastLabelled().head());
        assertEquals(List.of("0", "1"), f.lastLabelled().classes());
        assertEquals(6, f.lastLabelled().metrics().count());
        Finetuner g = run(memes, "image-of-mm").set("required_embedding", "image").build();
        g.run();
        assertEquals(RequiredEmbedding.IMAGE, g.lastLabelled().head());
        JsonNode info = new ObjectMapper().readTree(r.modelDir().resolve("bundle.json").toFile());
        assertEquals("mm", info.get("required_embedding").asText());
    }

    @Test
    void aHeadTheDataCannotFeedIsAClearError() throws Exception {
        Path data = dir.resolve("pairs");
        SyntheticLabelled.textPairs(data, new SyntheticLabelled.Sizes(8, 4, 0), 1);
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> run(data, "bad").set("required_embedding", "image").build().run());
        assertEquals("required_embedding image needs images, but the data has text", e.getMessage());
    }
}
