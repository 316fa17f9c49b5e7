package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.HostTensor;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.data.SyntheticPretraining;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.download.PretrainedWeights;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Parameter;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.Pretrainer;
import dev.mm4j.train.TrainingListener;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code finetune --task pretraining} end to end on tiny generated data: a mix of the three sources, every loss part in
 * metrics.jsonl, checkpoints and exact resume, the exported bundle, and a VQA fine-tuning that starts from its encoders;
 * the same through {@link Pretrainer#builder()}.
 */
class PretrainingCommandTest {
    @TempDir static Path tmp;
    static SyntheticPretraining.Written data;
    static Path modelYaml;

    /** A tiny FLAVA with a codebook for its 32x32 images (4x4 patches of 8, a 4x4 token grid). */
    static final String TINY = """
            image_size: 32
            patch_size: 8
            image_hidden_size: 16
            image_num_attention_heads: 2
            image_num_hidden_layers: 1
            image_intermediate_size: 32
            text_hidden_size: 16
            text_num_attention_heads: 2
            text_num_hidden_layers: 1
            text_intermediate_size: 32
            max_position_embeddings: 32
            multimodal_hidden_size: 16
            multimodal_num_attention_heads: 2
            multimodal_num_hidden_layers: 1
            multimodal_intermediate_size: 32
            text_and_image_proj_size: 8
            classifier_hidden_sizes: 16
            codebook_image_size: 32
            image_vocab_size: 64
            codebook_n_hid: 8
            codebook_n_blk_per_group: 1
            """;

    @BeforeAll
    static void generate() throws Exception {
        data = SyntheticPretraining.generate(new SyntheticTextVqa.Options(tmp.resolve("synth"), 24, 8, 2, 5, 96, 64, 1));
        modelYaml = tmp.resolve("tiny.yaml");
        Files.writeString(modelYaml, TINY);
    }

    private record Run(int rc, String out) {}

    private static Run run(String... args) {
        PrintStream stdout = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(buf, true));
            return new Run(Main.commandLine().execute(args), buf.toString());
        } finally {
            System.setOut(stdout);
        }
    }

    private static String[] pretrain(Path out, long steps, String... extra) {
        List<String> a = new ArrayList<>(List.of("finetune", "--task", "pretraining", "--model-config", modelYaml.toString(),
                "--pairs", data.pairs().toString(), "--texts", data.texts().toString(), "--images", data.images() + ":2",
                "--out", out.toString(), "--max-steps", String.valueOf(steps), "--batch-size", "4", "--threads", "1",
                "--set", "seed=3", "--set", "checkpoint_every=2", "--set", "log_every=1", "--set", "pairs_max_length=24",
                "--set", "max_length=24", "--set", "lr=0.0005"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    private static List<JsonNode> metrics(Path out) throws Exception {
        List<JsonNode> l = new ArrayList<>();
        ObjectMapper m = new ObjectMapper();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            l.add(m.readTree(line));
        }
        return l;
    }

    @Test
    void pretrainsResumesExactlyExportsAndVqaStartsFromTheEncoders() throws Exception {
        Path a = tmp.resolve("a");
        Run full = run(pretrain(a, 6));
        assertEquals(0, full.rc, full.out);
        assertTrue(full.out.contains("training: 6 steps"), full.out);
        List<JsonNode> m = metrics(a);
        assertEquals(6, m.size());
        Set<String> parts = new TreeSet<>();
        for (JsonNode e : m) {
            double sum = 0;
            for (var it = e.get("loss_parts").fields(); it.hasNext(); ) {
                var f = it.next();
                parts.add(f.getKey());
                sum += f.getValue().asDouble();
            }
            assertEquals(e.get("loss").asDouble(), sum, 1e-4 * Math.abs(sum), e.toString()); // the total is their sum
        }
        // pairs (contrastive, ITM, MMM), texts (MLM) and images (MIM) were all drawn in 6 steps with these ratios
        assertEquals(new TreeSet<>(List.of("global_contrastive_loss", "itm_loss", "mim_loss", "mlm_loss", "mmm_image_loss",
                "mmm_text_loss")), parts, parts.toString());
        assertTrue(Files.exists(a.resolve("model/model.safetensors")));
        assertTrue(Files.readString(a.resolve("model/bundle.json")).contains(ModelBundle.PRETRAINING_FORMAT));
        assertTrue(Files.readString(a.resolve("report.html")).contains("mlm_loss"));

        // interrupted after 2 steps (the run's model folder removed to continue it), then resumed to 6: the same losses
        Path b = tmp.resolve("b");
        assertEquals(0, run(pretrain(b, 2)).rc);
        deleteTree(b.resolve("model"));
        Run resumed = run(pretrain(b, 6, "--resume"));
        assertEquals(0, resumed.rc, resumed.out);
        assertTrue(resumed.out.contains("resumed from"), resumed.out);
        List<JsonNode> mb = metrics(b);
        assertEquals(6, mb.size());
        for (int i = 0; i < 6; i++) {
            assertEquals(m.get(i).get("loss").asDouble(), mb.get(i).get("loss").asDouble(), 0.0, "step " + i);
            assertEquals(m.get(i).get("loss_parts"), mb.get(i).get("loss_parts"), "step " + i);
        }

        // the pretraining bundle loads back strictly as a pretraining start
        Run again = run(pretrain(tmp.resolve("c"), 1, "--checkpoint", a.resolve("model").toString()));
        assertEquals(0, again.rc, again.out);
        assertTrue(again.out.contains("missing 0 []; unexpected 0 [] (strict)"), again.out);

        // VQA fine-tuning from it: the classification model's encoders are the pretrained ones at step 0
        Path vqaConfig = tmp.resolve("vqa.yaml");
        Files.writeString(vqaConfig, TINY.lines().filter(l -> !l.startsWith("codebook") && !l.startsWith("image_vocab"))
                .reduce("", (x, y) -> x + y + "\n"));
        Run vqa = run("finetune", "--task", "vqa", "--data", tmp.resolve("synth").toString(), "--checkpoint",
                a.resolve("model").toString(), "--model-config", vqaConfig.toString(), "--out",
                tmp.resolve("vqa").toString(), "--max-steps", "1", "--batch-size", "4", "--set", "max_length=24",
                "--set", "val_limit=4", "--threads", "1");
        assertEquals(0, vqa.rc, vqa.out);
        assertTrue(vqa.out.contains("missing 4 [classifier.model.0.bias, classifier.model.0.weight, classifier.model.3.bias, "
                + "classifier.model.3.weight]"), vqa.out); // only the new head starts fresh
        try (NDManager manager = NDManager.newBaseManager();
                StateDict pre = SafeTensors.read(a.resolve("model/model.safetensors"))) {
            FlavaConfig c = FlavaConfig.withKwargs(new FlavaConfig(), new com.fasterxml.jackson.databind.ObjectMapper(
                    new com.fasterxml.jackson.dataformat.yaml.YAMLFactory()).readValue(vqaConfig.toFile(), Map.class));
            c.numClasses = 5;
            FlavaForClassification cls = FlavaForClassification.create(c.validate(), manager);
            PretrainedWeights.resolve(a.resolve("model").toString()).loadInto(cls); // what finetune does at step 0
            int compared = 0;
            for (Map.Entry<String, Parameter> e : cls.stateDictParameters().entrySet()) {
                if (!e.getKey().startsWith("model.")) {
                    continue;
                }
                HostTensor t = pre.asMap().get(e.getKey());
                assertNotNull(t, e.getKey());
                assertArrayEquals(t.toFloatArray(), e.getValue().array().toFloatArray(), e.getKey());
                compared++;
            }
            assertTrue(compared > 50, "compared " + compared);
        }
    }

    @Test
    void theJavaBuilderPretrainsAndItsCancelledRunResumesExactly() throws Exception {
        Map<String, Object> kw = new com.fasterxml.jackson.databind.ObjectMapper(
                new com.fasterxml.jackson.dataformat.yaml.YAMLFactory()).readValue(TINY, Map.class);
        Path full = tmp.resolve("j1");
        List<Double> uninterrupted = builder(kw, full).build().run().losses();
        assertEquals(4, uninterrupted.size());

        Path part = tmp.resolve("j2");
        AtomicReference<Pretrainer> ref = new AtomicReference<>();
        Pretrainer p = builder(kw, part).listener(new TrainingListener() {
            @Override
            public void onStep(Step s) {
                if (s.index() == 1) {
                    ref.get().cancel();
                }
            }
        }).build();
        ref.set(p);
        Pretrainer.Result cancelled = p.run();
        assertEquals(Finetuner.Status.CANCELLED, cancelled.status());
        assertEquals(2, cancelled.steps());
        Pretrainer.Result rest = builder(kw, part).resume(true).build().run();
        assertEquals(Finetuner.Status.COMPLETED, rest.status());
        List<Double> joined = new ArrayList<>(cancelled.losses());
        joined.addAll(rest.losses());
        assertEquals(uninterrupted, joined);
        assertTrue(Files.exists(rest.modelDir().resolve("model.safetensors")));
        assertFalse(rest.lastParts().isEmpty());

        // activation checkpointing recomputes the layers in the backward pass: the same losses
        List<Double> checkpointed = builder(kw, tmp.resolve("j3")).set("activation_checkpointing", true).build().run()
                .losses();
        for (int i = 0; i < 4; i++) {
            assertEquals(uninterrupted.get(i), checkpointed.get(i), 1e-5 * Math.abs(uninterrupted.get(i)), "step " + i);
        }
    }

    private static Pretrainer.Builder builder(Map<String, Object> kw, Path out) {
        return Pretrainer.builder().model(new LinkedHashMap<>(kw)).pairs(data.pairs(), 1).texts(data.texts(), 1)
                .images(data.images(), 1).outputDir(out).maxSteps(4).batchSize(4).seed(7).threads(1)
                .set("max_length", 24).set("pairs_max_length", 24).set("mlm_probability", 0.3)
                .set("itm_probability", 0.25).set("dropout", true).log(new PrintStream(ByteArrayOutputStream.nullOutputStream()));
    }

    private static void deleteTree(Path dir) throws Exception {
        try (var s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
