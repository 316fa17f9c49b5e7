package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.checkpoint.PretrainingCheckpoint;
import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.data.BlockMasking;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.PretrainingBatch;
import dev.mm4j.data.PretrainingImageTransform;
import dev.mm4j.data.PretrainingLoader;
import dev.mm4j.data.PretrainingSource;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.data.SyntheticPretraining;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.download.PretrainedWeights;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.FlavaForPreTraining;
import dev.mm4j.flava.LossModel;
import dev.mm4j.flava.ModelStep;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The pretraining bundle carries every key of its model: one pretrained with a codebook and loss weights other than
 * the defaults reloads through {@link ModelBundle#loadPretraining} (and as a pretraining start without repeating the
 * model's kwargs) strictly, and gives the losses of the model built from the run's own kwargs.
 */
class PretrainingBundleTest {
    @TempDir Path tmp;
    SyntheticPretraining.Written data;

    /** A tiny FLAVA whose codebook and loss settings all differ from the defaults (DALL-E's 112 / 8192 / 4 / 256 / 2). */
    static Map<String, Object> kwargs() {
        Map<String, Object> kw = new LinkedHashMap<>(Map.of("image_size", 32, "patch_size", 8,
                "max_position_embeddings", 32, "text_and_image_proj_size", 8));
        for (String enc : List.of("image", "text", "multimodal")) {
            kw.putAll(Map.of(enc + "_hidden_size", 16, enc + "_num_attention_heads", 2, enc + "_num_hidden_layers", 1,
                    enc + "_intermediate_size", 32));
        }
        kw.putAll(Map.of("codebook_image_size", 32, "image_vocab_size", 48, "codebook_group_count", 3,
                "codebook_n_hid", 12, "codebook_n_blk_per_group", 1));
        kw.putAll(Map.of("mlm_weight", 0.5, "mim_weight", 2.0, "itm_loss_weight", 0.75, "mmm_text_loss_weight", 1.5,
                "mmm_image_loss_weight", 0.25, "contrastive_loss_weight", 3.0, "pretraining_layer_norm_eps", 1e-6));
        return kw;
    }

    @Test
    void aBundleOfANonDefaultCodebookReloadsStrictlyWithTheSameLosses() throws Exception {
        data = SyntheticPretraining.generate(new SyntheticTextVqa.Options(tmp.resolve("synth"), 12, 2, 1, 5, 96, 64, 1));
        Pretrainer.Result r = builder(tmp.resolve("run")).model(kwargs()).build().run();
        assertEquals(Finetuner.Status.COMPLETED, r.status());
        assertEquals(2, r.steps());
        Path weights = r.modelDir().resolve(ModelBundle.WEIGHTS);

        // the bundle's config holds every pretraining key as the run set it, and no classification head's
        try (StateDict sd = SafeTensors.read(weights)) {
            JsonNode cfg = new ObjectMapper().readTree(sd.metadata().get(ModelBundle.CONFIG_KEY));
            kwargs().forEach((k, v) -> assertEquals(((Number) v).doubleValue(), cfg.path(k).asDouble(Double.NaN), k));
            for (String k : List.of("num_classes", "classifier_in_dim", "classifier_hidden_sizes", "classifier_dropout")) {
                assertFalse(cfg.has(k), k + " in " + cfg);
            }
        }

        FlavaConfig runConfig = FlavaConfig.withKwargs(new FlavaConfig(), kwargs());
        PretrainingLoader.Builder batches = PretrainingLoader.builder().batchSize(3).seed(11).textMaxLength(24)
                .pairsMaxLength(24)
                .imageTransform(new PretrainingImageTransform(true, 32, 32, 0.9, 1.0, ImageTransform.Normalize.NONE))
                .blockMasking(new BlockMasking(4, 4, 6, 2, null, 0.3, null));
        data.sources().forEach(batches::source);
        try (NDManager manager = NDManager.newBaseManager();
                QuestionTokenizer tokenizer = QuestionTokenizer.bertBaseUncased(24);
                PretrainingLoader loader = batches.tokenizer(tokenizer).build()) {
            FlavaForPreTraining loaded = ModelBundle.loadPretraining(r.modelDir(), manager);
            FlavaConfig c = loaded.config();
            assertEquals(List.of(32, 48, 3, 12, 1), List.of(c.codebookImageSize, c.imageVocabSize, c.codebookGroupCount,
                    c.codebookNHid, c.codebookNBlkPerGroup));
            assertEquals(List.of(0.5, 2.0, 0.75, 1.5, 0.25, 3.0, 1e-6), List.of(c.mlmWeight, c.mimWeight, c.itmLossWeight,
                    c.mmmTextLossWeight, c.mmmImageLossWeight, c.contrastiveLossWeight, c.pretrainingLayerNormEps));

            // the model the run's kwargs build, loaded strictly from the same file: the reference
            FlavaForPreTraining reference = FlavaForPreTraining.create(runConfig, manager);
            assertTrue(PretrainingCheckpoint.load(reference, weights, null).isExact());
            reference.setTraining(false);
            // what the bundle gave before it carried the codebook keys: the default codebook, which cannot hold it
            FlavaConfig defaultCodebook = runConfig.copy();
            defaultCodebook.codebookNHid = 256;
            defaultCodebook.imageVocabSize = 8192;
            Exception e = assertThrows(Exception.class, () -> PretrainingCheckpoint.load(
                    FlavaForPreTraining.create(defaultCodebook, manager), weights, null));
            assertTrue(e.getMessage().contains("image_codebook."), e.getMessage());

            // one batch of each source: the same losses, part by part (pairs: contrastive, ITM, MMM; text: MLM; image: MIM)
            Map<PretrainingSource.Kind, Map<String, Float>> seen = new EnumMap<>(PretrainingSource.Kind.class);
            for (long step = 0; seen.size() < 3 && step < 50; step++) {
                PretrainingBatch b = loader.batch(step);
                if (seen.containsKey(b.kind())) {
                    continue;
                }
                Map<String, Float> expected = losses(reference, b, manager);
                Map<String, Float> actual = losses(loaded, b, manager);
                assertEquals(expected, actual, b.kind() + " batch of step " + step);
                seen.put(b.kind(), actual);
            }
            assertEquals(3, seen.size(), seen.toString());
            assertEquals(List.of("mmm_text_loss", "mmm_image_loss", "itm_loss", "global_contrastive_loss", "total"),
                    List.copyOf(seen.get(PretrainingSource.Kind.PAIRS).keySet()));
            assertEquals(List.of("mlm_loss", "total"), List.copyOf(seen.get(PretrainingSource.Kind.TEXT).keySet()));
            assertEquals(List.of("mim_loss", "total"), List.copyOf(seen.get(PretrainingSource.Kind.IMAGE).keySet()));
            // as a classification model it is refused in one line saying what to do with it
            Exception notClassifier = assertThrows(java.io.IOException.class, () -> ModelBundle.load(r.modelDir(), manager));
            assertTrue(notClassifier.getMessage().contains("is a pretrained model (no answers): fine-tune it first"),
                    notClassifier.getMessage());
        }

        // fine-tuning from the bundle without model kwargs: its sizes are the base config, and only the new head is missing
        try (NDManager manager = NDManager.newBaseManager()) {
            FlavaConfig base = PretrainedWeights.resolve(r.modelDir().toString()).config(new FlavaConfig());
            assertEquals(16, base.multimodalHiddenSize);
            assertEquals(12, base.codebookNHid);
            FlavaConfig cls = FinetuneSettings.preset("tutorial").flavaConfig(5, base);
            cls.classifierHiddenSizes = List.of(16);
            FlavaForClassification model = FlavaForClassification.create(cls.validate(), manager);
            String report = PretrainedWeights.resolve(r.modelDir().toString()).loadInto(model);
            assertTrue(report.contains("missing 4 [classifier.model.0.bias, classifier.model.0.weight, "
                    + "classifier.model.3.bias, classifier.model.3.weight]"), report);
        }

        // pretraining again from the bundle, without repeating the model's kwargs: it loads strictly
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Pretrainer.Result again = builder(tmp.resolve("again")).checkpoint(r.modelDir()).maxSteps(1)
                .log(new PrintStream(log, true)).build().run();
        assertEquals(Finetuner.Status.COMPLETED, again.status());
        assertTrue(log.toString().contains("missing 0 []; unexpected 0 [] (strict)"), log.toString());
        try (StateDict sd = SafeTensors.read(again.modelDir().resolve(ModelBundle.WEIGHTS))) {
            assertEquals(FlavaConfig.fromJson(runConfig.toPretrainingKwargsJson()).toJson(),
                    FlavaConfig.fromJson(sd.metadata().get(ModelBundle.CONFIG_KEY)).toJson());
        }
    }

    private Pretrainer.Builder builder(Path out) {
        return Pretrainer.builder().pairs(data.pairs(), 1).texts(data.texts(), 1).images(data.images(), 1)
                .outputDir(out).maxSteps(2).batchSize(3).seed(7).threads(1).set("max_length", 24)
                .set("pairs_max_length", 24).set("checkpoint_every", 0).set("log_every", 1)
                .log(new PrintStream(ByteArrayOutputStream.nullOutputStream()));
    }

    /** The model's weighted losses on {@code b}, by name, and their sum as {@code total}. */
    private static Map<String, Float> losses(FlavaForPreTraining model, PretrainingBatch b, NDManager manager) {
        try (ModelStep step = ModelStep.open(manager)) {
            LossModel.Loss loss = model.forward(step, b);
            Map<String, Float> out = new LinkedHashMap<>();
            loss.parts().forEach((k, v) -> out.put(k, v.getFloat()));
            out.put("total", loss.total().getFloat());
            return out;
        }
    }
}
