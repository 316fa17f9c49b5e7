package dev.mm4j.spark;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Padding;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.util.FileTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What the Spark tests run on, made once per test JVM: a generated TextVQA (40 val questions) with three bad
 * records (an empty question, a missing image file, an undecodable image), and a tiny FLAVA bundle with random
 * weights and dynamic padding.
 */
public final class SparkFixtures {
    private SparkFixtures() {}

    public record Fixture(Path data, Path bundle) {}

    private static Fixture fixture;

    public static synchronized Fixture get() throws Exception {
        if (fixture != null) {
            return fixture;
        }
        Path tmp = Files.createTempDirectory("mm4j-spark-test");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                FileTrees.delete(tmp);
            } catch (Exception e) {
                // best effort
            }
        }));
        Path data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 4, 40, 0, 7, 64, 48, 1));
        // bad records: an empty question, a missing image file, an undecodable image
        Path json = data.resolve("TextVQA_0.5.1_val.json");
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = (ObjectNode) om.readTree(json.toFile());
        ArrayNode records = (ArrayNode) root.get("data");
        ((ObjectNode) records.get(3)).put("question", "");
        Files.delete(data.resolve("train_images").resolve(records.get(10).get("image_id").asText() + ".jpg"));
        Files.write(data.resolve("train_images").resolve(records.get(21).get("image_id").asText() + ".jpg"),
                new byte[] {1, 2, 3, 4, 5});
        om.writeValue(json.toFile(), root);

        // a tiny FLAVA with random weights, dynamic padding
        FlavaConfig config = FlavaConfig.fromJson("{\"image_size\":32,\"patch_size\":8,\"image_hidden_size\":32,"
                + "\"image_num_attention_heads\":4,\"image_num_hidden_layers\":1,\"image_intermediate_size\":64,"
                + "\"text_hidden_size\":32,\"text_num_attention_heads\":4,\"text_num_hidden_layers\":1,"
                + "\"text_intermediate_size\":64,\"max_position_embeddings\":32,\"multimodal_hidden_size\":32,"
                + "\"multimodal_num_attention_heads\":4,\"multimodal_num_hidden_layers\":1,\"multimodal_intermediate_size\":64,"
                + "\"text_and_image_proj_size\":16,\"classifier_hidden_sizes\":32,\"num_classes\":"
                + SyntheticTextVqa.answerVocabulary().size() + "}");
        config.maskTextPaddingInMultimodal = true;
        Path bundle = tmp.resolve("model");
        ai.djl.engine.Engine.getInstance().setRandomSeed(13);
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification model = FlavaForClassification.create(config, m);
            // random weights answer at random; a lift for the colour answers makes some answers right, so the
            // accuracy compared below is not 0
            List<String> vocab = SyntheticTextVqa.answerVocabulary();
            float[] bias = new float[vocab.size()];
            for (String c : SyntheticTextVqa.COLOURS) {
                bias[vocab.indexOf(c)] = 2f;
            }
            String last = null;
            for (String name : model.namedParameters().keySet()) {
                if (name.startsWith("classifier.") && name.endsWith(".bias")) {
                    last = name;
                }
            }
            model.namedParameters().get(last).array().set(m.create(bias).duplicate().toFloatArray());
            ModelBundle.Info info = new ModelBundle.Info();
            info.padding = Padding.DYNAMIC;
            info.maxLength = 32;
            ModelBundle.write(bundle, model, AnswerVocab.load(data.resolve("answers.txt")), info, null);
        }
        fixture = new Fixture(data, bundle);
        return fixture;
    }
}
