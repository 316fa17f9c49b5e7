package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Precision;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code bundle.json} records the precision a model was trained in, and loading runs it in that precision. */
class ModelBundlePrecisionTest {
    @TempDir
    Path tmp;

    /** This machine's answer for a bf16 model: bf16 where the CPU multiplies bfloat16 natively, else fp32. */
    static final Precision BF16_HERE = Precision.nativeBf16(Device.cpu()) ? Precision.BF16 : Precision.FP32;

    /** A tiny bundle whose model was trained (here: created) in {@code precision}. */
    static Path bundle(Path dir, Precision precision) throws Exception {
        FlavaConfig c = FlavaConfig.fromJson("{\"image_size\":32,\"patch_size\":8,\"image_hidden_size\":32,"
                + "\"image_num_attention_heads\":4,\"image_num_hidden_layers\":1,\"image_intermediate_size\":64,"
                + "\"text_hidden_size\":32,\"text_num_attention_heads\":4,\"text_num_hidden_layers\":1,"
                + "\"text_intermediate_size\":64,\"max_position_embeddings\":16,\"multimodal_hidden_size\":32,"
                + "\"multimodal_num_attention_heads\":4,\"multimodal_num_hidden_layers\":1,\"multimodal_intermediate_size\":64,"
                + "\"text_and_image_proj_size\":16,\"num_classes\":3,\"classifier_hidden_sizes\":32}");
        c.precision = precision;
        ModelBundle.Info info = new ModelBundle.Info();
        info.maxLength = 16;
        try (NDManager m = NDManager.newBaseManager()) {
            ModelBundle.write(dir, FlavaForClassification.create(c, m), AnswerVocab.fromText("a\nb\nc\n", "test"), info, null);
        }
        return dir;
    }

    static Precision loaded(Path dir, String asked) throws IOException {
        try (NDManager m = NDManager.newBaseManager(); ModelBundle.Loaded b = ModelBundle.load(dir, m, asked)) {
            return b.model().precision();
        }
    }

    @Test
    void theTrainedPrecisionRoundTripsAndIsTheDefault() throws Exception {
        Path bf16 = bundle(tmp.resolve("bf16"), Precision.BF16);
        assertEquals("bf16", new ObjectMapper().readTree(bf16.resolve(ModelBundle.INFO).toFile()).get("precision").asText());
        try (NDManager m = NDManager.newBaseManager(); ModelBundle.Loaded b = ModelBundle.load(bf16, m)) {
            assertEquals("bf16", b.info().precision);
            assertEquals(Precision.BF16, b.info().trainedPrecision());
            assertEquals(BF16_HERE, b.model().precision());
        }
        Path fp32 = bundle(tmp.resolve("fp32"), Precision.FP32);
        assertEquals("fp32", new ObjectMapper().readTree(fp32.resolve(ModelBundle.INFO).toFile()).get("precision").asText());
        assertEquals(Precision.FP32, loaded(fp32, null));
    }

    @Test
    void whatIsAskedForOverridesTheBundle() throws Exception {
        Path bf16 = bundle(tmp.resolve("bf16"), Precision.BF16);
        assertEquals(Precision.FP32, loaded(bf16, "fp32"));
        Path fp32 = bundle(tmp.resolve("fp32"), Precision.FP32);
        assertEquals(Precision.BF16, loaded(fp32, "bf16"));
        assertEquals(BF16_HERE, loaded(fp32, "auto"));
    }

    /**
     * bf16 asked for runs on every CPU: its frozen weights prepacked where libtorch's oneDNN runs bfloat16, plain
     * bfloat16 copies elsewhere (an AVX2-only CPU, where oneDNN refuses to pack them); logits within bfloat16's rounding
     * of fp32's, the same on a second call (the weights' forms made once).
     */
    @Test
    void aBundleAskedForBf16AnswersOnEveryCpuCloseToFp32() throws Exception {
        Path dir = bundle(tmp.resolve("fp32"), Precision.FP32);
        float[][] logits = new float[3][];
        String[] asked = {"fp32", "bf16", "bf16"};
        for (int k = 0; k < 3; k++) {
            try (NDManager m = NDManager.newBaseManager(); ModelBundle.Loaded b = ModelBundle.load(dir, m, asked[k])) {
                ai.djl.engine.Engine.getInstance().setRandomSeed(4);
                var image = m.randomUniform(0, 1, new ai.djl.ndarray.types.Shape(2, 3, 32, 32));
                var text = m.create(new long[] {101, 2054, 2003, 102, 0, 0, 101, 2129, 102, 0, 0, 0},
                        new ai.djl.ndarray.types.Shape(2, 6));
                logits[k] = b.model().forward(image, text, null).logits().toFloatArray();
                if (k == 2) { // the same model again: its bf16 forms, made at the first call, read again
                    assertArrayEquals(logits[k], b.model().forward(image, text, null).logits().toFloatArray());
                }
            }
        }
        float scale = 0;
        float diff = 0;
        for (int i = 0; i < logits[0].length; i++) {
            scale = Math.max(scale, Math.abs(logits[0][i]));
            diff = Math.max(diff, Math.abs(logits[0][i] - logits[1][i]));
        }
        assertTrue(scale > 0 && diff <= 2e-2f * scale, "bf16 logits differ from fp32's by " + diff + " of " + scale);
        assertArrayEquals(logits[1], logits[2], "bf16 gives the same logits in every load");
    }

    @Test
    void anOlderBundleWithoutThePrecisionRunsInFp32() throws Exception {
        Path dir = bundle(tmp.resolve("old"), Precision.BF16);
        ObjectNode json = (ObjectNode) new ObjectMapper().readTree(dir.resolve(ModelBundle.INFO).toFile());
        json.remove("precision");
        AtomicFiles.writeString(dir.resolve(ModelBundle.INFO), json.toString());
        assertEquals(Precision.FP32, loaded(dir, null));
    }

    @Test
    void anUnknownPrecisionInBundleJsonIsRefusedNamingFileAndField() throws Exception {
        Path dir = bundle(tmp.resolve("bad"), Precision.FP32);
        Files.writeString(dir.resolve(ModelBundle.INFO),
                Files.readString(dir.resolve(ModelBundle.INFO)).replace("\"fp32\"", "\"fp16\""));
        IOException e = assertThrows(IOException.class, () -> loaded(dir, null));
        assertEquals(dir.toAbsolutePath().resolve(ModelBundle.INFO) + ": precision 'fp16' is not fp32 or bf16", e.getMessage());
    }
}
