package dev.mm4j.search;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.Embedder;
import dev.mm4j.inference.EmbedderTest;
import dev.mm4j.inference.ZeroShotClassifier;
import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.DjlTensors;
import dev.mm4j.checkpoint.HfFlavaCheckpoints;
import dev.mm4j.checkpoint.HostTensor;
import dev.mm4j.checkpoint.TorchCheckpoints;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForRetrieval;
import dev.mm4j.train.FinetuneSettings;
import java.awt.Color;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A pretraining checkpoint's trained contrastive temperature (logit_scale; Hugging Face's {@code flava.logit_scale},
 * TorchMultimodal's {@code loss.contrastive_loss.logit_scale}) is loaded: zero-shot classification scales the
 * cosines by its exp, and retrieval fine-tuning starts from it, in both layouts.
 */
class TrainedTemperatureTest {
    static final float LOGIT_SCALE = 4.0f; // exp = 54.6, where an untrained model has 1/0.07 = 14.29

    @TempDir Path tmp;

    /** A random tiny FLAVA for retrieval (BERT's vocabulary) with logit_scale 4, as TorchMultimodal and as HF save it. */
    static Map<String, Path> checkpoints(Path dir) throws Exception {
        FlavaConfig config = FlavaConfig.withKwargs(new FlavaConfig(), RetrievalFinetunerTest.tinyModel());
        Engine.getInstance().setRandomSeed(11);
        Map<String, Path> out = new LinkedHashMap<>();
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForRetrieval model = FlavaForRetrieval.create(config, m);
            Map<String, NDArray> arrays = new LinkedHashMap<>();
            model.namedParameters().forEach((n, p) -> arrays.put(n, p.array()));
            Map<String, HostTensor> tm = new LinkedHashMap<>(DjlTensors.hostTensors(arrays));
            tm.put("loss.contrastive_loss.logit_scale", HostTensor.ofFloats(new float[] {LOGIT_SCALE}));
            tm.put("loss.mlm_loss.cls.predictions.bias", HostTensor.ofFloats(new float[5], 5)); // a pretraining head
            Path pt = dir.resolve("flava_pretraining.pt");
            TorchCheckpoints.write(pt, tm);
            out.put("TorchMultimodal", pt);

            Map<String, HostTensor> hf = new LinkedHashMap<>();
            tm.forEach((n, t) -> {
                if (n.startsWith("model.")) {
                    hf.put(HfFlavaCheckpoints.toHf(n), t);
                }
            });
            hf.put("flava.logit_scale", HostTensor.ofFloats(new float[] {LOGIT_SCALE}));
            hf.put("mlm_head.bias", HostTensor.ofFloats(new float[5], 5));
            out.put("Hugging Face", HfFlavaCheckpoints.writeFolder(dir.resolve("flava-hf"), HfFlavaCheckpoints.Form.SAFETENSORS, hf,
                    HfFlavaCheckpoints.hfConfig(new ObjectMapper().readTree(config.toKwargsJson()))));
        }
        return out;
    }

    @Test
    void zeroShotProbabilitiesUseTheCheckpointsTemperature() throws Exception {
        FlavaConfig config = FlavaConfig.withKwargs(new FlavaConfig(), RetrievalFinetunerTest.tinyModel());
        List<String> labels = List.of("stop", "open", "closed");
        byte[] image = EmbedderTest.png(Color.RED);
        for (Map.Entry<String, Path> ck : checkpoints(tmp).entrySet()) {
            String layout = ck.getKey();
            try (Embedder e = Embedder.open(ck.getValue(), layout.equals("Hugging Face") ? null : config, Device.cpu())) {
                assertEquals(Math.exp(LOGIT_SCALE), e.temperatureScale(), 1e-3, layout);
                List<ZeroShotClassifier.Score> scores = new ZeroShotClassifier(e, labels, "a sign that says {}").classify(image, "red.png");
                float[] v = e.images(List.of(image), List.of("red.png"))[0];
                float[][] t = e.texts(labels.stream().map(l -> "a sign that says " + l).toList());
                double[] p = new double[3];
                double[] flat = new double[3];
                double sum = 0;
                double flatSum = 0;
                for (int i = 0; i < 3; i++) {
                    p[i] = Math.exp(Math.exp(LOGIT_SCALE) * Embedder.cosine(v, t[i]));
                    flat[i] = Math.exp((1 / 0.07) * Embedder.cosine(v, t[i]));
                    sum += p[i];
                    flatSum += flat[i];
                }
                double farthest = 0;
                for (ZeroShotClassifier.Score s : scores) {
                    int i = labels.indexOf(s.label());
                    assertEquals(p[i] / sum, s.probability(), 1e-6, layout + " " + s.label());
                    farthest = Math.max(farthest, Math.abs(flat[i] / flatSum - s.probability()));
                }
                System.out.printf("%s checkpoint: zero-shot %s; with 1/0.07 instead the probabilities would differ by up to %.4f%n",
                        layout, scores, farthest);
                assertTrue(farthest > 1e-4, layout + ": the tolerance above tells the two temperatures apart");
            }
        }
    }

    @Test
    void retrievalFineTuningStartsFromTheCheckpointsTemperature() throws Exception {
        Path data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 8, 0, 0, 3, 64, 48, 1, SyntheticTextVqa.Look.DEMO));
        for (Map.Entry<String, Path> ck : checkpoints(tmp).entrySet()) {
            FinetuneSettings s = FinetuneSettings.preset("default");
            s.task = "retrieval";
            s.data = data.toString();
            s.valSplit = "none";
            s.out = tmp.resolve("run-" + ck.getKey().replace(' ', '-')).toString();
            s.checkpoint = ck.getValue().toString();
            s.model = RetrievalFinetunerTest.tinyModel();
            s.maxLength = 24;
            s.batchSize = 4;
            s.maxSteps = 1;
            s.lr = 1e-9; // one step that moves nothing measurably: the exported temperature is the one it started from
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            RetrievalFinetuner.Result r = new RetrievalFinetuner(s, new PrintStream(buf, true)).run();
            String log = buf.toString();
            assertTrue(log.contains("temperature scale 54.60"), ck.getKey() + ":\n" + log);
            try (Embedder e = Embedder.open(r.modelDir(), null, Device.cpu())) {
                assertEquals(Math.exp(LOGIT_SCALE), e.temperatureScale(), 1e-3, ck.getKey());
            }
        }
    }
}
