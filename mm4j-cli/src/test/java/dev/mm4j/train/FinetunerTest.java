package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.TorchCheckpoints;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.Padding;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.inference.Answer;
import dev.mm4j.inference.VqaModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Fine-tuning end to end on a generated TextVQA set with a tiny FLAVA: the real readers, loader, model. */
public class FinetunerTest {
    /** A tiny FLAVA (one layer per encoder, width 32) as TorchMultimodal kwargs. */
    public static final Map<String, Object> TINY = Map.ofEntries(
            Map.entry("image_size", 32), Map.entry("patch_size", 8),
            Map.entry("image_hidden_size", 32), Map.entry("image_num_attention_heads", 4),
            Map.entry("image_num_hidden_layers", 1), Map.entry("image_intermediate_size", 64),
            Map.entry("text_hidden_size", 32), Map.entry("text_num_attention_heads", 4),
            Map.entry("text_num_hidden_layers", 1), Map.entry("text_intermediate_size", 64),
            Map.entry("max_position_embeddings", 32),
            Map.entry("multimodal_hidden_size", 32), Map.entry("multimodal_num_attention_heads", 4),
            Map.entry("multimodal_num_hidden_layers", 1), Map.entry("multimodal_intermediate_size", 64),
            Map.entry("text_and_image_proj_size", 16), Map.entry("classifier_hidden_sizes", 32));

    @TempDir
    static Path tmp;
    static Path data;

    @BeforeAll
    static void generate() throws Exception {
        data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 48, 12, 4, 3, 64, 48, 1));
    }

    static FinetuneSettings tiny(String preset, Path out) {
        FinetuneSettings s = FinetuneSettings.preset(preset);
        s.data = data.toString();
        s.out = out.toString();
        s.model = new LinkedHashMap<>(TINY);
        s.maxLength = 32;
        s.checkpoint = "none";
        s.threads = 1;
        return s;
    }

    static String run(FinetuneSettings s, boolean resume, Finetuner.Result[] result) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
            result[0] = Finetuner.builder().settings(s).resume(resume).log(out).build().run();
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void tutorialPresetLoadsAPretrainingLayoutCheckpointAndPrintsThreeLosses() throws Exception {
        // a pretraining-layout .pt (encoders under model.*, an extra head, no classifier), written by our torch.save writer
        Path ckpt = tmp.resolve("pretrained.pt");
        FinetuneSettings s = tiny("tutorial", tmp.resolve("tutorial"));
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification donor = FlavaForClassification.create(s.flavaConfig(7), m); // head not saved
            Map<String, NDArray> sd = new LinkedHashMap<>();
            donor.namedParameters().forEach((n, p) -> {
                if (n.startsWith("model.")) {
                    sd.put(n, p.array());
                }
            });
            sd.put("loss.itm_loss.pooler.dense.weight", m.ones(new ai.djl.ndarray.types.Shape(4, 4)));
            TorchCheckpoints.writeNDArrays(ckpt, sd);
        }
        s.checkpoint = ckpt.toString();
        Finetuner.Result[] r = new Finetuner.Result[1];
        String printed = run(s, false, r);
        assertEquals(3, r[0].steps());
        for (int i = 0; i < 3; i++) {
            assertTrue(printed.contains("Loss at step " + i + " = " + r[0].losses().get(i)), printed);
        }
        assertFalse(printed.contains("Loss at step 3"), "the tutorial stops after 3 steps");
        assertTrue(printed.contains("missing 4 [classifier.model.0.bias, classifier.model.0.weight, classifier.model.3.bias, "
                + "classifier.model.3.weight]; unexpected 1 [loss.itm_loss.pooler.dense.weight]"), printed);
        r[0].losses().forEach(l -> assertTrue(l > 0 && l < 10, "plausible cross-entropy: " + l));
        assertEquals(2, s.batchSize);
        assertEquals(AdamW.Settings.torchDefaults(), s.adamw());
    }

    @Test
    void resumedRunRepeatsTheUninterruptedLossSequence() throws Exception {
        Finetuner.Result[] r = new Finetuner.Result[1];
        FinetuneSettings full = tiny("default", tmp.resolve("full"));
        full.maxSteps = 8;
        full.shuffle = true; // data position and order must survive the restart too
        full.dropout = true; // dropout masks come from (seed, step)
        full.model.put("classifier_dropout", 0.3);
        full.valSplit = "none";
        run(full, false, r);
        List<Double> uninterrupted = r[0].losses();

        FinetuneSettings first = tiny("default", tmp.resolve("split"));
        first.maxSteps = 5;
        first.shuffle = true;
        first.model.put("classifier_dropout", 0.3);
        first.valSplit = "none";
        run(first, false, r);
        FinetuneSettings second = tiny("default", tmp.resolve("split"));
        second.maxSteps = 8;
        second.shuffle = true;
        second.model.put("classifier_dropout", 0.3);
        second.valSplit = "none";
        String printed = run(second, true, r);
        assertTrue(printed.contains("resumed from"), printed);
        assertEquals(3, r[0].losses().size());
        assertEquals(uninterrupted.subList(5, 8), r[0].losses(), "steps 5..7 after resume");
        // the metrics log of the resumed run holds each step once, equal to the uninterrupted run's
        List<Double> logged = MetricsLog.read(tmp.resolve("split/metrics.jsonl")).stream()
                .filter(e -> e.loss() != null).map(MetricsLog.Entry::loss).toList();
        assertEquals(uninterrupted, logged);
    }

    @Test
    void nonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() throws Exception {
        FinetuneSettings s = tiny("default", tmp.resolve("nan"));
        s.lr = 1e12; // diverges within a few steps
        s.maxSteps = 40;
        s.checkpointEvery = 1;
        s.valSplit = "none";
        Finetuner.Result[] r = new Finetuner.Result[1];
        String printed = run(s, false, r);
        assertTrue(r[0].stoppedOnNonFinite(), printed);
        assertTrue(r[0].steps() < 40);
        assertTrue(printed.contains("stopping: the loss is"), printed);
        CheckpointStore store = new CheckpointStore(tmp.resolve("nan"), 2);
        Path latest = store.latest();
        assertEquals(String.format("step-%08d", r[0].steps()), latest.getFileName().toString(),
                "the latest checkpoint is the last step that was applied");
        TrainState st = TrainState.fromJson(Files.readString(latest.resolve("state.json")));
        assertTrue(Double.isFinite(st.lastLoss));
        assertFalse(Files.exists(tmp.resolve("nan/model")), "no export after a non-finite stop");
    }

    @Test
    void validationExportPredictAndEvaluateAgree() throws Exception {
        FinetuneSettings s = tiny("default", tmp.resolve("eval"));
        s.maxSteps = 6;
        s.batchSize = 4;
        s.padding = Padding.DYNAMIC;
        s.normalize = "clip";
        Finetuner.Result[] r = new Finetuner.Result[1];
        String printed = run(s, false, r);
        assertNotNull(r[0].valAccuracy(), printed);
        assertTrue(r[0].valAccuracy() >= 0 && r[0].valAccuracy() <= 1);
        Path out = tmp.resolve("eval");
        for (String f : List.of("settings.yaml", "metrics.jsonl", "predictions.json", "curves.png", "report.html",
                "model/model.safetensors", "model/answers.txt", "model/bundle.json", "checkpoints/latest", "checkpoints/best/model.safetensors")) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        List<PredictionsWriter.Prediction> preds = PredictionsWriter.read(out.resolve("predictions.json"));
        assertEquals(12, preds.size(), "one prediction per validation question");
        // accuracy by question type: the generator's kinds, adding up to the overall figure; printed and in the report
        dev.mm4j.eval.AccuracyByType byType = r[0].byType();
        assertEquals(12, byType.overall().questions());
        assertEquals(r[0].valAccuracy(), byType.overall().accuracy(), 1e-9);
        assertEquals(r[0].baselineAccuracy(), byType.overall().baseline(), 1e-9);
        assertEquals(12, byType.rows().stream().mapToLong(dev.mm4j.eval.AccuracyByType.Row::questions).sum());
        assertTrue(byType.rows().stream().allMatch(row -> List.of("reading", "text colour", "sign colour").contains(row.type())),
                byType.toString());
        assertTrue(java.util.regex.Pattern.compile(String.format("(?m)^ +all +12 +%.2f%% +%.2f%%$", 100 * r[0].valAccuracy(),
                100 * r[0].baselineAccuracy())).matcher(printed).find(), printed);
        String report = Files.readString(out.resolve("report.html"));
        assertTrue(report.contains("<h2>VQA accuracy by question type</h2>"), report);
        assertTrue(report.contains(String.format("<td>all</td><td>12</td><td>%.2f%%</td>", 100 * r[0].valAccuracy())), report);
        try (Stream<Path> tmpLeft = Files.walk(out)) {
            assertTrue(tmpLeft.noneMatch(p -> p.getFileName().toString().contains(".tmp")), "no temp files left");
        }
        try (NDManager m = NDManager.newBaseManager(); ModelBundle.Loaded b = ModelBundle.load(out.resolve("model"), m)) {
            assertEquals(Padding.DYNAMIC, b.info().padding);
            assertEquals("fp32", b.info().precision, "bundle.json records the precision the run trained in");
            assertEquals(dev.mm4j.nn.Precision.FP32, b.model().precision());
            assertTrue(b.model().config().maskTextPaddingInMultimodal, "dynamic padding masks text padding in the multimodal encoder");
            assertEquals("clip", b.info().normalize, "the bundle keeps the training transform's normalization");
            assertEquals(ImageTransform.Normalize.CLIP, b.transform().normalize());
            Path img;
            try (Stream<Path> imgs = Files.list(data.resolve("train_images"))) {
                img = imgs.findFirst().orElseThrow();
            }
            List<Answer> top;
            try (VqaModel vm = VqaModel.load(out.resolve("model"))) {
                top = vm.answer(Files.readAllBytes(img), "what does the sign say?", 3);
            }
            assertEquals(3, top.size());
            assertTrue(top.get(0).probability() >= top.get(1).probability());
            double sum = top.stream().mapToDouble(Answer::probability).sum();
            assertTrue(sum > 0 && sum <= 1.0 + 1e-6);
            // the exported weights are the trained ones: evaluating them again gives the same accuracy
            FlavaConfig c = b.model().config();
            assertEquals(SyntheticTextVqa.answerVocabulary().size(), c.numClasses, "num_classes = the vocabulary's size");
        }
        String[] args = {"--model", out.resolve("model").toString(), "--data", data.toString(), "--split", "val",
                "--predictions", out.resolve("again.json").toString(), "--batch-size", "4"};
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream old = System.out;
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, new picocli.CommandLine(new dev.mm4j.cli.EvaluateCommand()).execute(args));
        } finally {
            System.setOut(old);
        }
        assertTrue(bytes.toString().contains(String.format("VQA accuracy %.2f%%", 100 * r[0].valAccuracy())), bytes.toString());
        assertEquals(preds, PredictionsWriter.read(out.resolve("again.json")));
        // the bundle's FLAVA config is flava_model_for_classification(**kwargs) as it is
        try (StateDict sd = SafeTensors.read(out.resolve("model/model.safetensors"))) {
            var kw = new ObjectMapper().readTree(sd.metadata().get(ModelBundle.CONFIG_KEY));
            assertFalse(kw.has("initializer_range"), kw.toString());
            assertEquals(32, kw.get("classifier_in_dim").asInt(), kw.toString());
            kw.fields().forEachRemaining(f -> assertFalse(f.getValue().isNull(), f.getKey() + " is null"));
        }

        // an empty split is an error (before: "VQA accuracy 0.00% over 0 questions", exit 0)
        Path empty = tmp.resolve("empty-data");
        Files.createDirectories(empty);
        Files.writeString(empty.resolve("TextVQA_0.5.1_val.json"), "{\"dataset_name\": \"textvqa\", \"data\": []}");
        java.io.StringWriter err = new java.io.StringWriter();
        picocli.CommandLine cl = new picocli.CommandLine(new dev.mm4j.cli.EvaluateCommand());
        cl.setErr(new java.io.PrintWriter(err, true));
        System.setOut(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
        try {
            assertEquals(1, cl.execute("--model", out.resolve("model").toString(), "--data", empty.toString(), "--split", "val",
                    "--predictions", out.resolve("none.json").toString()));
        } finally {
            System.setOut(old);
        }
        assertTrue(err.toString().contains("no records to load: ") && err.toString().contains("TextVQA_0.5.1_val.json"), err.toString());
        assertFalse(Files.exists(out.resolve("none.json")));

        // --resume of the finished run validates and exports again; the metrics log still has each line once
        List<MetricsLog.Entry> before = MetricsLog.read(out.resolve("metrics.jsonl"));
        run(s, true, r);
        assertEquals(before, MetricsLog.read(out.resolve("metrics.jsonl")));
        assertEquals(1, before.stream().filter(e -> e.valAccuracy() != null).count(), before.toString());
    }

    @Test
    void aBf16RunRecordsItsPrecisionAndItsBundleRunsInIt() throws Exception {
        FinetuneSettings s = tiny("default", tmp.resolve("bf16"));
        s.maxSteps = 2;
        s.batchSize = 4;
        s.valSplit = "none";
        s.precision = "bf16";
        Finetuner.Result[] r = new Finetuner.Result[1];
        String printed = run(s, false, r);
        assertTrue(printed.contains("precision: bf16 (setting bf16)"), printed);
        assertEquals("bf16", new ObjectMapper().readTree(r[0].modelDir().resolve(ModelBundle.INFO).toFile()).get("precision").asText());
        dev.mm4j.nn.Precision here = dev.mm4j.nn.Precision.nativeBf16(ai.djl.Device.cpu()) ? dev.mm4j.nn.Precision.BF16
                : dev.mm4j.nn.Precision.FP32;
        try (VqaModel vm = VqaModel.load(r[0].modelDir())) {
            assertEquals(here, vm.precision(), "the result's bundle runs in bf16 where the CPU has it, else fp32");
        }
    }

    @Test
    void aFreshRunRefusesToOverwriteAnExistingRun() throws Exception {
        FinetuneSettings s = tiny("default", tmp.resolve("twice"));
        s.maxSteps = 1;
        s.valSplit = "none";
        Finetuner.Result[] r = new Finetuner.Result[1];
        run(s, false, r);
        Exception e = assertThrows(java.io.IOException.class, () -> run(s, false, r));
        assertTrue(e.getMessage().contains("--resume"), e.getMessage());
    }
}
