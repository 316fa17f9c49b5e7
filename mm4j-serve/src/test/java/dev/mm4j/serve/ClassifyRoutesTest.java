package dev.mm4j.serve;

import static dev.mm4j.serve.VqaServerTest.assertError;
import static dev.mm4j.serve.VqaServerTest.multipart;
import static dev.mm4j.serve.VqaServerTest.post;
import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.LabelledExamples;
import dev.mm4j.data.SyntheticLabelled;
import dev.mm4j.eval.LabelledClassifier;
import dev.mm4j.train.ClassificationFinetunerTest;
import dev.mm4j.train.Finetuner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code POST /v1/classify}: a text-pair model and an image model trained by {@code finetune} on labelled data, served;
 * the answers are the library's ({@link LabelledClassifier}) for the same examples, and bad requests are JSON errors.
 */
class ClassifyRoutesTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir static Path tmp;
    static Path textData;
    static Path imageData;
    static Path textModel;
    static Path imageModel;

    @BeforeAll
    static void train() throws Exception {
        textData = tmp.resolve("pairs");
        SyntheticLabelled.textPairs(textData, new SyntheticLabelled.Sizes(16, 6, 0), 1);
        imageData = tmp.resolve("images");
        SyntheticLabelled.renderedSentences(imageData, new SyntheticLabelled.Sizes(8, 4, 0), 32, 1);
        textModel = trained(textData, "text-run");
        imageModel = trained(imageData, "image-run");
    }

    static Path trained(Path data, String out) throws Exception {
        Finetuner.Result r = Finetuner.builder().data(data).noCheckpoint().model(ClassificationFinetunerTest.TINY)
                .maxSteps(2).batchSize(4).seed(3).outputDir(tmp.resolve(out)).set("print_loss", false).build().run();
        assertEquals(Finetuner.Status.COMPLETED, r.status());
        return r.modelDir();
    }

    static ModelServer serve(Path model) throws Exception {
        Callable<LabelledModel> loader = () -> LabelledModel.load(model, Device.cpu(), null, 1_000_000);
        ModelServer s = ModelServer.start(null, null, loader, ModelServer.Settings.defaults().withPort(0));
        s.awaitLoaded();
        return s;
    }

    static VqaServerTest.Reply json(ModelServer s, Object... keyValues) throws Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            Object v = keyValues[i + 1];
            m.put((String) keyValues[i], v instanceof byte[] b ? Base64.getEncoder().encodeToString(b) : v);
        }
        return post(s.uri(), "v1/classify", "application/json", JSON.writeValueAsBytes(m));
    }

    /** The library's class probabilities for the examples, by label. */
    static List<Map<String, Float>> library(Path model, List<LabelledExamples.Example> examples) throws Exception {
        try (LabelledModel m = LabelledModel.load(model, Device.cpu(), null, 1_000_000)) {
            List<String> classes = m.classifier().classes();
            return m.classifier().predict(examples, 8).stream().map(p -> {
                Map<String, Float> byLabel = new LinkedHashMap<>();
                for (int c = 0; c < classes.size(); c++) {
                    byLabel.put(classes.get(c), p.probabilities()[c]);
                }
                return byLabel;
            }).toList();
        }
    }

    @Test
    void textPairsAreClassifiedAsTheLibraryDoes() throws Exception {
        List<LabelledExamples.Example> dev = LabelledExamples.read(textData, "val").examples();
        List<Map<String, Float>> want = library(textModel, dev);
        try (ModelServer s = serve(textModel)) {
            for (int i = 0; i < dev.size(); i++) {
                LabelledExamples.Example e = dev.get(i);
                VqaServerTest.Reply r = json(s, "text", e.text(), "text_pair", e.textPair(), "k", 2);
                assertEquals(200, r.status(), r.body().toString());
                assertEquals("text", r.body().get("head").asText());
                JsonNode classes = r.body().get("classes");
                assertEquals(2, classes.size());
                assertTrue(classes.get(0).get("probability").asDouble() >= classes.get(1).get("probability").asDouble());
                for (JsonNode c : classes) {
                    assertEquals(want.get(i).get(c.get("label").asText()), c.get("probability").asDouble(), 1e-5,
                            e.origin());
                }
            }
            // multipart: the same fields as text
            LabelledExamples.Example e = dev.get(0);
            VqaServerTest.Reply form = multipart(s.uri(), "v1/classify", null, "text", e.text(), "text_pair", e.textPair(),
                    "k", "1");
            assertEquals(200, form.status(), form.body().toString());
            assertEquals(1, form.body().get("classes").size());
            String best = want.get(0).entrySet().stream().max(Map.Entry.comparingByValue()).orElseThrow().getKey();
            assertEquals(best, form.body().get("classes").get(0).get("label").asText());
            assertError(400, json(s, "text_pair", "only a pair"), "text: missing or empty");
            assertError(400, json(s, "text", 3), "text: must be a string");
            assertError(400, json(s, "text", "a", "k", 0), "k: must be");
            assertEquals("text", new ObjectMapper().readTree(VqaServerTest.get(s.uri(), "readyz").body())
                    .get("classifier").get("head").asText());
            assertError(404, post(s.uri(), "v1/answer", "application/json", "{}".getBytes()), "--model");
        }
    }

    @Test
    void imagesAreClassifiedAsTheLibraryDoes() throws Exception {
        List<LabelledExamples.Example> dev = LabelledExamples.read(imageData, "val").examples();
        List<Map<String, Float>> want = library(imageModel, dev);
        try (ModelServer s = serve(imageModel)) {
            for (int i = 0; i < dev.size(); i++) {
                byte[] bytes = Files.readAllBytes(dev.get(i).image());
                VqaServerTest.Reply r = multipart(s.uri(), "v1/classify", bytes);
                assertEquals(200, r.status(), r.body().toString());
                assertEquals("image", r.body().get("head").asText());
                for (JsonNode c : r.body().get("classes")) {
                    assertEquals(want.get(i).get(c.get("label").asText()), c.get("probability").asDouble(), 1e-5);
                }
            }
            assertError(400, json(s, "text", "no image"), "image: missing");
            assertError(415, multipart(s.uri(), "v1/classify", "not an image".getBytes()), "not a recognised image");
            var got = VqaServerTest.get(s.uri(), "v1/classify");
            assertError(405, new VqaServerTest.Reply(got.statusCode(), JSON.readTree(got.body()), got), "use POST");
        }
    }
}
