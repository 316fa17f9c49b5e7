package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForPreTraining;
import dev.mm4j.flava.FlavaPretrainingParityTest;
import dev.mm4j.nn.Parameter;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading {@link FlavaForPreTraining}: the full-size model's state-dict names and shapes are TorchMultimodal's
 * ({@code flava_model_for_pretraining()}, listed by tools/flava_pretraining_names.py) and a full-size state dict of
 * those names loads strictly; the tiny fixture split into a checkpoint without {@code image_codebook.*} and a
 * codebook file (TorchMultimodal's or Hugging Face's layout), and the whole fixture in Hugging Face's
 * {@code FlavaForPreTraining} layout, load strictly and give the reference's codebook tokens and losses; OpenAI's
 * pickled encoder is refused with the forms to use.
 */
class PretrainingCheckpointTest {
    static JsonNode fixture;
    static FlavaConfig tiny;

    @TempDir Path tmp;
    NDManager manager;

    @BeforeAll
    static void readFixture() throws Exception {
        try (InputStream in = PretrainingCheckpointTest.class.getResourceAsStream("/fixtures/flava-tiny/pretraining.json")) {
            fixture = new ObjectMapper().readTree(in);
        }
        tiny = FlavaPretrainingParityTest.config(fixture);
    }

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    static Path resource(String name) throws Exception {
        return Path.of(PretrainingCheckpointTest.class.getResource(name).toURI());
    }

    /** TorchMultimodal's full-size names and shapes, in state-dict order. */
    static List<Map.Entry<String, long[]>> torchMultimodalFullSize() throws Exception {
        JsonNode ref;
        try (InputStream in = PretrainingCheckpointTest.class.getResourceAsStream("/reference/flava-pretraining-full-names.json")) {
            ref = new ObjectMapper().readTree(in);
        }
        List<Map.Entry<String, long[]>> out = new ArrayList<>();
        for (JsonNode e : ref.get("state_dict")) {
            long[] shape = new long[e.get(1).size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = e.get(1).get(i).asLong();
            }
            out.add(Map.entry(e.get(0).asText(), shape));
        }
        return out;
    }

    @Test
    void fullSizeNamesAndShapesAreTorchMultimodals() throws Exception {
        List<Map.Entry<String, long[]>> ref = torchMultimodalFullSize();
        Map<String, Parameter> ours = new FlavaForPreTraining(FlavaConfig.fullSizePretraining()).stateDictParameters();
        List<String> refLines = ref.stream().map(e -> e.getKey() + " " + Arrays.toString(e.getValue())).toList();
        List<String> ourLines = ours.entrySet().stream()
                .map(e -> e.getKey() + " " + Arrays.toString(e.getValue().shape().getShape())).toList();
        assertEquals(618, refLines.size());
        assertEquals(refLines, ourLines, "state-dict names, shapes and order");
    }

    /**
     * A full-size state dict of TorchMultimodal's names (random values, written tensor by tensor as safetensors)
     * loads strictly, codebook included; then the same without {@code image_codebook.*} plus a separate codebook file.
     */
    @Test
    void fullSizeStateDictLoadsStrictlyWithAndWithoutTheCodebook() throws Exception {
        List<Map.Entry<String, long[]>> ref = torchMultimodalFullSize();
        Path full = tmp.resolve("flava_for_pretraining.safetensors");
        writeRandom(full, ref, n -> true);
        FlavaForPreTraining model = FlavaForPreTraining.create(FlavaConfig.fullSizePretraining(), manager);
        StateDictLoader.Report r = PretrainingCheckpoint.load(model, full, null);
        System.out.println("full-size FLAVAForPreTraining strict load: loaded " + r.loaded() + ", missing "
                + r.missing().size() + ", unexpected " + r.unexpected().size());
        assertEquals(List.of(), r.missing());
        assertEquals(List.of(), r.unexpected());
        assertEquals(618, r.loaded());
        assertValues(model, "loss.mim_loss.cls.decoder.weight");
        assertValues(model, "image_codebook.encoder.blocks.output.conv.w");
        assertValues(model, "model.mm_encoder.encoder.layer.5.feedforward.model.2.weight");
        Files.delete(full);

        Path noCodebook = tmp.resolve("without_codebook.safetensors");
        Path codebook = tmp.resolve("codebook.safetensors");
        writeRandom(noCodebook, ref, n -> !n.startsWith("image_codebook."));
        writeRandom(codebook, ref, n -> n.startsWith("image_codebook."));
        FlavaForPreTraining again = FlavaForPreTraining.create(FlavaConfig.fullSizePretraining(), manager);
        Exception e = assertThrows(CheckpointException.class, () -> PretrainingCheckpoint.load(again, noCodebook, null));
        assertTrue(e.getMessage().contains("missing: image_codebook.encoder.blocks.group_1.block_1.res_path.conv_1.b"),
                e.getMessage().substring(0, 300));
        StateDictLoader.Report r2 = PretrainingCheckpoint.load(again, noCodebook, codebook);
        System.out.println("full-size without image_codebook.* + codebook file: " + r2.loaded() + " loaded, missing "
                + r2.missing().size() + ", unexpected " + r2.unexpected().size());
        assertTrue(r2.isExact());
        assertValues(again, "image_codebook.encoder.blocks.input.w");
        assertValues(again, "loss.itm_loss.cls.seq_relationship.weight");
    }

    /** The seeded value of element i of tensor {@code name} in {@link #writeRandom}. */
    static float value(String name, long i) {
        return (float) new SplittableRandom(name.hashCode() * 1_000_003L + i).nextDouble(-1, 1);
    }

    static void assertValues(FlavaForPreTraining model, String name) {
        float[] got = model.stateDictParameters().get(name).array().toFloatArray();
        for (int i : new int[] {0, 1, got.length / 2, got.length - 1}) {
            assertEquals(value(name, i), got[i], 0f, name + "[" + i + "]");
        }
    }

    /** A safetensors file of the listed tensors that {@code keep} selects, values {@link #value}; one tensor in memory at a time. */
    static void writeRandom(Path file, List<Map.Entry<String, long[]>> tensors, java.util.function.Predicate<String> keep)
            throws Exception {
        StringBuilder h = new StringBuilder("{");
        long offset = 0;
        List<Map.Entry<String, long[]>> kept = tensors.stream().filter(e -> keep.test(e.getKey())).toList();
        for (Map.Entry<String, long[]> e : kept) {
            long n = Arrays.stream(e.getValue()).reduce(1, (a, b) -> a * b);
            if (h.length() > 1) h.append(',');
            h.append('"').append(e.getKey()).append("\":{\"dtype\":\"F32\",\"shape\":").append(Arrays.toString(e.getValue()))
                    .append(",\"data_offsets\":[").append(offset).append(',').append(offset + 4 * n).append("]}");
            offset += 4 * n;
        }
        h.append('}');
        while (h.length() % 8 != 0) h.append(' ');
        byte[] header = h.toString().getBytes(StandardCharsets.UTF_8);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).flip();
            ch.write(len);
            ch.write(ByteBuffer.wrap(header));
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Map.Entry<String, long[]> e : kept) {
                long n = Arrays.stream(e.getValue()).reduce(1, (a, b) -> a * b);
                SplittableRandom fast = new SplittableRandom(e.getKey().hashCode());
                for (long i = 0; i < n; i++) {
                    // checked positions exactly as value(); the rest cheap seeded noise
                    boolean checked = i < 2 || i == n / 2 || i == n - 1;
                    buf.putFloat(checked ? value(e.getKey(), i) : (float) fast.nextDouble(-1, 1));
                    if (!buf.hasRemaining()) {
                        buf.flip();
                        while (buf.hasRemaining()) ch.write(buf);
                        buf.clear();
                    }
                }
            }
            buf.flip();
            while (buf.hasRemaining()) ch.write(buf);
        }
    }

    // ---- the tiny fixture split and renamed

    Map<String, HostTensor> fixtureTensors(StateDict sd, java.util.function.Predicate<String> keep) {
        Map<String, HostTensor> m = new LinkedHashMap<>();
        sd.asMap().forEach((n, t) -> {
            if (keep.test(n)) m.put(n, t);
        });
        return m;
    }

    /** The codebook's tokens and the pairs case's ITM loss with {@code model} equal the reference's. */
    void assertReferenceNumbers(FlavaForPreTraining model) {
        model.setTraining(false);
        JsonNode in = fixture.get("inputs");
        try (NDScope scope = new NDScope()) {
            NDArray forCodebook = floats(in.get("image_for_codebook"));
            long[] tokens = model.imageCodebook().forward(forCodebook).toLongArray();
            JsonNode exp = fixture.get("codebook_labels").get("data");
            for (int i = 0; i < tokens.length; i++) {
                assertEquals(exp.get(i).asLong(), tokens[i], "codebook token " + i);
            }
            var out = model.forward(new FlavaForPreTraining.Inputs(floats(in.get("image")), forCodebook,
                    longs(in.get("text")), longs(in.get("text_masked")), longs(in.get("mlm_labels")),
                    longs(in.get("image_patches_mask")), longs(in.get("itm_labels"))));
            JsonNode pairs = fixture.get("eval").get("pairs");
            out.losses().named().forEach((n, l) ->
                    assertEquals(pairs.get(n).asDouble(), l.getFloat(), 1e-5 * Math.abs(pairs.get(n).asDouble()), n));
            assertEquals(4, out.losses().named().size());
        }
    }

    NDArray floats(JsonNode t) {
        JsonNode d = t.get("data");
        float[] v = new float[d.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) d.get(i).asDouble();
        return manager.create(v, shape(t));
    }

    NDArray longs(JsonNode t) {
        JsonNode d = t.get("data");
        long[] v = new long[d.size()];
        for (int i = 0; i < v.length; i++) v[i] = d.get(i).asLong();
        return manager.create(v, shape(t));
    }

    static Shape shape(JsonNode t) {
        long[] s = new long[t.get("shape").size()];
        for (int i = 0; i < s.length; i++) s[i] = t.get("shape").get(i).asLong();
        return new Shape(s);
    }

    @Test
    void checkpointWithoutCodebookLoadsWithACodebookFileInEachLayout() throws Exception {
        try (StateDict sd = Checkpoints.read(resource("/fixtures/flava-tiny/pretraining.pt"))) {
            Path main = tmp.resolve("no_codebook.safetensors");
            SafeTensors.write(main, fixtureTensors(sd, n -> !n.startsWith("image_codebook.")), Map.of());
            Map<String, HostTensor> codebook = fixtureTensors(sd, n -> n.startsWith("image_codebook."));
            Map<String, Map<String, HostTensor>> forms = new LinkedHashMap<>();
            forms.put("image_codebook.*", codebook);
            forms.put("DalleEncoder blocks.*", renamed(codebook, n -> n.substring("image_codebook.encoder.".length())));
            forms.put("Hugging Face FlavaImageCodebook", renamed(codebook, PretrainingCheckpointTest::hfCodebookName));
            for (var form : forms.entrySet()) {
                Path file = tmp.resolve("codebook-" + form.getKey().replaceAll("\\W", "_") + ".safetensors");
                SafeTensors.write(file, form.getValue(), Map.of());
                FlavaForPreTraining model = FlavaForPreTraining.create(tiny, manager);
                StateDictLoader.Report r = PretrainingCheckpoint.load(model, main, file);
                System.out.println("codebook from " + form.getKey() + ": " + r);
                assertTrue(r.isExact(), form.getKey() + ": " + r);
                assertReferenceNumbers(model);
            }
            // a tensor that is no codebook's is named
            Path wrong = tmp.resolve("wrong.safetensors");
            SafeTensors.write(wrong, Map.of("decoder.blocks.x", HostTensor.ofFloats(new float[] {1f}, 1)), Map.of());
            Exception e = assertThrows(CheckpointException.class,
                    () -> PretrainingCheckpoint.load(FlavaForPreTraining.create(tiny, manager), main, wrong));
            assertTrue(e.getMessage().contains("'decoder.blocks.x' is not part of an image codebook"), e.getMessage());
        }
    }

    /** Hugging Face's FlavaImageCodebook name (facebook/flava-image-codebook) for one of TorchMultimodal's. */
    static String hfCodebookName(String tmm) {
        String n = tmm.substring("image_codebook.encoder.".length());
        n = n.replaceAll("^blocks\\.(group_\\d+)\\.", "blocks.$1.group.").replace(".res_path.", ".res_path.path.");
        return n.replaceAll("\\.w$", ".weight").replaceAll("\\.b$", ".bias");
    }

    static Map<String, HostTensor> renamed(Map<String, HostTensor> in, java.util.function.UnaryOperator<String> f) {
        Map<String, HostTensor> m = new LinkedHashMap<>();
        in.forEach((n, t) -> m.put(f.apply(n), t));
        return m;
    }

    /** The heads of Hugging Face's FlavaForPreTraining, written here independently of {@link HfFlavaLayout}. */
    static String hfName(String tmm) {
        String[][] heads = {
            {"loss\\.mlm_loss\\.cls\\.(.*)", "mlm_head.$1"},
            {"loss\\.mim_loss\\.cls\\.(.*)", "mim_head.$1"},
            {"loss\\.mmm_loss\\.mlm\\.cls\\.(.*)", "mmm_text_head.$1"},
            {"loss\\.mmm_loss\\.mim\\.cls\\.(.*)", "mmm_image_head.$1"},
            {"loss\\.itm_loss\\.cls\\.seq_relationship\\.(.*)", "itm_head.seq_relationship.$1"},
            {"loss\\.itm_loss\\.pooler\\.(.*)", "itm_head.pooler.$1"},
            {"loss\\.contrastive_loss\\.logit_scale", "flava.logit_scale"},
        };
        for (String[] h : heads) {
            Matcher m = Pattern.compile(h[0]).matcher(tmm);
            if (m.matches()) {
                String hf = m.replaceFirst(h[1]);
                return hf.replaceFirst("_head\\.dense\\.", "_head.transform.dense.")
                        .replaceFirst("_head\\.layer_norm\\.", "_head.transform.LayerNorm.");
            }
        }
        if (tmm.startsWith("image_codebook.")) {
            return "image_codebook." + hfCodebookName(tmm);
        }
        return HfFlavaCheckpoints.toHf(tmm);
    }

    @Test
    void huggingFacePretrainingLayoutLoadsStrictly() throws Exception {
        try (StateDict sd = Checkpoints.read(resource("/fixtures/flava-tiny/pretraining.pt"))) {
            Map<String, HostTensor> hf = new LinkedHashMap<>();
            sd.asMap().forEach((n, t) -> hf.put(hfName(n), t));
            // HF's safetensors keep one of two tied tensors; a position_ids buffer is no weight
            hf.keySet().removeIf(n -> n.endsWith("_head.decoder.bias"));
            hf.put("flava.text_model.embeddings.position_ids", HostTensor.ofLongs(new long[] {0, 1}, 1, 2));
            assertTrue(hf.containsKey("mmm_text_head.transform.LayerNorm.weight") && hf.containsKey(
                    "image_codebook.blocks.group_2.group.block_1.res_path.path.conv_4.weight"), hf.keySet().toString());
            Path file = tmp.resolve("hf_pretraining.safetensors");
            SafeTensors.write(file, hf, Map.of());
            FlavaForPreTraining model = FlavaForPreTraining.create(tiny, manager);
            StateDictLoader.Report r = PretrainingCheckpoint.load(model, file, null);
            System.out.println("Hugging Face FlavaForPreTraining layout: " + r);
            assertTrue(r.isExact(), r.toString());
            assertReferenceNumbers(model);
        }
    }

    /** A model's weights written as a bundle's safetensors (tied biases under both names) load back strictly. */
    @Test
    void writtenWeightsLoadBackStrictly() throws Exception {
        FlavaForPreTraining model = FlavaForPreTraining.create(tiny, manager);
        PretrainingCheckpoint.load(model, resource("/fixtures/flava-tiny/pretraining.pt"), null);
        Path file = tmp.resolve("written.safetensors");
        ModelBundle.writeWeights(file, model, tiny);
        try (StateDict sd = Checkpoints.read(file)) {
            assertTrue(sd.contains("loss.mim_loss.cls.decoder.bias") && sd.contains("loss.mim_loss.cls.bias"));
        }
        FlavaForPreTraining back = FlavaForPreTraining.create(tiny, manager);
        assertTrue(PretrainingCheckpoint.load(back, file, null).isExact());
        assertReferenceNumbers(back);
    }

    @Test
    void openAisPickledEncoderIsRefusedWithTheFormsToUse() throws Exception {
        // what encoder.pkl starts with: a pickle (protocol 2) of dall_e.encoder.Encoder, not a state dict
        Path pkl = tmp.resolve("encoder.pkl");
        Files.write(pkl, new byte[] {(byte) 0x80, 2, 'c', 'd', 'a', 'l', 'l', '_', 'e', '.', 'e', 'n', 'c', 'o', 'd', 'e', 'r',
                '\n', 'E', 'n', 'c', 'o', 'd', 'e', 'r', '\n', ')', (byte) 0x81, '.'});
        try (StateDict sd = Checkpoints.read(resource("/fixtures/flava-tiny/pretraining.pt"))) {
            Path main = tmp.resolve("no_codebook.safetensors");
            SafeTensors.write(main, fixtureTensors(sd, n -> !n.startsWith("image_codebook.")), Map.of());
            Exception e = assertThrows(CheckpointException.class,
                    () -> PretrainingCheckpoint.load(FlavaForPreTraining.create(tiny, manager), main, pkl));
            String m = e.getMessage();
            assertTrue(m.startsWith(pkl + ": a pickled Python object"), m);
            assertTrue(m.contains("facebook/flava-image-codebook") && m.contains("image_codebook.*"), m);
            assertFalse(m.contains("\n"), "one line: " + m);
        }
    }
}
