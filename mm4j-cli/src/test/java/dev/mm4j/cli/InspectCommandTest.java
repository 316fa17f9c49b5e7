package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.HfFlavaCheckpoints;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.TorchCheckpoints;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class InspectCommandTest {
    @TempDir
    Path tmp;

    String run(int expectedExit, String... args) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream old = System.out;
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            assertEquals(expectedExit, new CommandLine(new InspectCommand()).execute(args));
        } finally {
            System.setOut(old);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void listsTensorsAndTheNonStrictLoadReport() throws Exception {
        Path fixtures = Path.of(getClass().getResource("/fixtures/flava-tiny/expected.json").toURI()).getParent();
        Path config = tmp.resolve("tiny.json");
        Files.writeString(config, new ObjectMapper().readTree(fixtures.resolve("expected.json").toFile()).get("config").toString());
        String out = run(0, fixtures.resolve("flava_pretraining_layout.pt").toString(), "--config", config.toString());
        assertTrue(out.contains("model.mm_encoder.cls_token"), out);
        assertTrue(out.contains("(TORCH_ZIP): 130 tensors"), out);
        assertTrue(out.contains("would load: 127 of 131 tensors"), out);
        assertTrue(out.contains("missing (stay at their initial values): 4"), out);
        assertTrue(out.contains("unexpected (ignored by a non-strict load): 3"), out);
        assertTrue(out.contains("loss.mlm_loss.cls.predictions.decoder.weight"), out);
        assertTrue(out.contains("loads non-strictly"), out);
        assertTrue(out.contains("integrity: all 132 zip entries pass their CRC-32 check"), out);

        String mismatch = run(1, fixtures.resolve("flava_classification.pt").toString(), "--config", config.toString(),
                "--num-classes", "9", "--no-tensors");
        assertTrue(mismatch.contains("classifier.model.3.weight: checkpoint [7, 32], model [9, 32]"), mismatch);
        assertTrue(mismatch.contains("does not load"), mismatch);
    }

    @Test
    void showsTheLayoutMappingAndConfigOfAHuggingFaceFolder() throws Exception {
        Path fixtures = Path.of(getClass().getResource("/fixtures/flava-tiny/expected.json").toURI()).getParent();
        var expected = new ObjectMapper().readTree(fixtures.resolve("expected.json").toFile());
        Path dir;
        try (StateDict tm = TorchCheckpoints.read(fixtures.resolve("flava_classification.pt"))) {
            dir = HfFlavaCheckpoints.writeFolder(tmp.resolve("flava-hf"), HfFlavaCheckpoints.Form.BIN_2_SHARDS,
                    HfFlavaCheckpoints.hfTensors(tm), HfFlavaCheckpoints.hfConfig(expected.get("config")));
        }
        Files.writeString(dir.resolve("vocab.txt"), "[PAD]\n[UNK]\n");
        String out = run(0, dir.toString(), "--no-tensors", "--num-classes", "7");
        System.out.println("inspect on a Hugging Face layout folder:\n" + out);
        assertTrue(out.contains("(2 TORCH_ZIP shards): 137 tensors"), out);
        assertTrue(out.contains("layout: Hugging Face transformers"), out);
        assertTrue(out.contains("mapped to TorchMultimodal names: 128 tensors"), out);
        assertTrue(out.contains("ignored on purpose: 9"), out);
        assertTrue(out.contains("pretraining heads: 7"), out);
        assertTrue(out.contains("config: sizes and layer-norm eps from " + dir.resolve("config.json")), out);
        assertTrue(out.contains("tokenizer: " + dir.resolve("vocab.txt")), out);
        assertTrue(out.contains("would load: 127 of 131 tensors"), out);
        assertTrue(out.contains("missing (stay at their initial values): 4"), out);
        assertTrue(out.contains("unexpected (ignored by a non-strict load): 1"), out); // loss.contrastive_loss.logit_scale
    }

    @Test
    void classifierTensorsSavedBesideTheHfOnesPassThroughUnderTheirTorchMultimodalNames() throws Exception {
        Path fixtures = Path.of(getClass().getResource("/fixtures/flava-tiny/expected.json").toURI()).getParent();
        var expected = new ObjectMapper().readTree(fixtures.resolve("expected.json").toFile());
        Path dir;
        try (StateDict tm = TorchCheckpoints.read(fixtures.resolve("flava_classification.pt"))) {
            java.util.Map<String, dev.mm4j.checkpoint.HostTensor> tensors = new java.util.LinkedHashMap<>(HfFlavaCheckpoints.hfTensors(tm));
            tm.asMap().forEach((n, t) -> {
                if (n.startsWith("classifier.")) tensors.put(n, t); // the TorchMultimodal head, saved beside the HF body
            });
            tensors.put("something.else.weight", tm.get("classifier.model.0.bias"));
            dir = HfFlavaCheckpoints.writeFolder(tmp.resolve("flava-hf-head"), HfFlavaCheckpoints.Form.SAFETENSORS, tensors,
                    HfFlavaCheckpoints.hfConfig(expected.get("config")));
        }
        Path config = tmp.resolve("tiny-head.json");
        Files.writeString(config, expected.get("config").toString());
        String out = run(0, dir.toString(), "--no-tensors", "--config", config.toString());
        System.out.println("inspect on HF + TorchMultimodal classifier:\n" + out);
        assertTrue(out.contains("already TorchMultimodal names (pass through and load): 4"), out);
        assertTrue(out.contains("not understood (unexpected in the load): 1"), out);
        assertTrue(out.contains("    something.else.weight"), out);
        assertTrue(out.contains("would load: 131 of 131 tensors"), out);
        assertTrue(out.contains("unexpected (ignored by a non-strict load): 2"), out); // and loss.contrastive_loss.logit_scale
    }

    @Test
    void failsOnAnyCorruptionInTheWholeFile() throws Exception {
        Path fixtures = Path.of(getClass().getResource("/fixtures/flava-tiny/expected.json").toURI()).getParent();
        byte[] raw = Files.readAllBytes(fixtures.resolve("flava_classification.pt"));
        // one bit of the 'version' entry, which a load never reads (before: exit 0)
        String text = new String(raw, StandardCharsets.ISO_8859_1);
        int name = text.indexOf("flava_classification/version");
        int data = name + "flava_classification/version".length()
                + (raw[name - 2] & 0xff | (raw[name - 1] & 0xff) << 8); // the local header's extra length precedes the name
        raw[data] ^= 1;
        Path bad = tmp.resolve("bad.pt");
        Files.write(bad, raw);
        String err = runErr(1, bad.toString(), "--no-tensors");
        assertTrue(err.contains("entry 'flava_classification/version' fails its CRC-32 check"), err);
        Path folder = Files.createDirectories(tmp.resolve("no-checkpoint-here"));
        String dir = runErr(1, folder.toString());
        assertTrue(dir.contains(folder + ": a folder without model.safetensors"), dir);
    }

    String runErr(int expectedExit, String... args) {
        java.io.StringWriter err = new java.io.StringWriter();
        CommandLine cl = new CommandLine(new InspectCommand());
        cl.setErr(new java.io.PrintWriter(err, true));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream old = System.out;
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            assertEquals(expectedExit, cl.execute(args));
        } finally {
            System.setOut(old);
        }
        return err.toString();
    }
}
