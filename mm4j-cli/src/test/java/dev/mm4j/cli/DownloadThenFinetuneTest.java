package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.mm4j.checkpoint.HfFlavaCheckpoints;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.TorchCheckpoints;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.download.Downloader;
import dev.mm4j.download.FixtureServer;
import dev.mm4j.download.HubFixtures;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.train.FinetunerTest;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * One cache for everything: what {@code download} fetched from a 127.0.0.1 server, {@code finetune} then finds
 * with the same URL (or {@code hf:ORG/NAME}) with the server gone: zero requests.
 */
@Timeout(120)
class DownloadThenFinetuneTest {
    static final Map<String, Object> TINY = FinetunerTest.TINY;

    @TempDir static Path tmp;
    static Path data;
    static byte[] pretrainedPt;
    FixtureServer server;
    Path cache;

    @BeforeAll
    static void generate() throws Exception {
        data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 24, 6, 4, 3, 64, 48, 1));
        // a pretraining-layout checkpoint of the tiny model (encoders, no classifier), by our torch.save writer
        Path pt = tmp.resolve("pretrained.pt");
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification donor = FlavaForClassification.create(FlavaConfig.withKwargs(new FlavaConfig(), TINY), m);
            Map<String, NDArray> sd = new LinkedHashMap<>();
            donor.namedParameters().forEach((n, p) -> {
                if (n.startsWith("model.")) sd.put(n, p.array());
            });
            TorchCheckpoints.writeNDArrays(pt, sd);
        }
        pretrainedPt = Files.readAllBytes(pt);
    }

    @BeforeEach
    void start() throws Exception {
        server = new FixtureServer();
        cache = Files.createTempDirectory(tmp, "cache");
    }

    @AfterEach
    void stop() {
        server.close();
        System.clearProperty(Downloader.PROPERTY_CACHE);
    }

    int download(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new DownloadCommand());
        cl.setOut(new PrintWriter(new StringWriter(), true));
        cl.setErr(new PrintWriter(err, true));
        int rc = cl.execute(args);
        assertEquals(0, rc, err.toString());
        return rc;
    }

    /** finetune in this JVM with the cache folder of the download, printing to a string. */
    String finetune(String... args) {
        System.setProperty(Downloader.PROPERTY_CACHE, cache.toString());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream old = System.out;
        StringWriter err = new StringWriter();
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        int rc;
        try {
            CommandLine cl = new CommandLine(new FinetuneCommand());
            cl.setErr(new PrintWriter(err, true));
            rc = cl.execute(args);
        } finally {
            System.setOut(old);
        }
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(0, rc, out + err);
        return out;
    }

    Path yaml(String name, Map<String, Object> kwargs) throws Exception {
        Path f = tmp.resolve(name);
        Files.writeString(f, new ObjectMapper(new YAMLFactory()).writeValueAsString(kwargs));
        return f;
    }

    @Test
    void finetuneUsesTheDownloadedCheckpointOfflineWithZeroRequests() throws Exception {
        String path = "/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt";
        server.put(path, pretrainedPt);
        String url = server.url(path);
        download("--what", "checkpoint", "--checkpoint-url", url, "--cache", cache.toString(), "--progress", "off");
        assertEquals(1, server.seen.size());
        Path cached = cache.resolve("127.0.0.1_" + url.split(":")[2].split("/")[0] + path);
        assertArrayEquals(pretrainedPt, Files.readAllBytes(cached));
        server.close(); // offline from here on

        String out = finetune("--preset", "tutorial", "--data", data.toString(), "--checkpoint", url,
                "--model-config", yaml("tiny.yaml", TINY).toString(), "--out", tmp.resolve("run-url").toString(),
                "--set", "max_length=32", "--set", "threads=1");
        System.out.println("finetune after download, offline:\n" + out.lines().filter(l -> l.startsWith("weights")
                || l.startsWith("  ") && l.contains("loaded") || l.startsWith("Loss")).reduce("", (a, b) -> a + b + "\n"));
        assertEquals(1, server.seen.size(), "finetune sent no request");
        assertTrue(out.contains("weights: " + url + " = " + cached.toAbsolutePath() + " (TORCH_ZIP, TorchMultimodal layout)"), out);
        assertTrue(out.contains("missing 4 [classifier.model.0.bias, classifier.model.0.weight, classifier.model.3.bias, "
                + "classifier.model.3.weight]; unexpected 0 []"), out);
        assertTrue(out.contains("Loss at step 2 = "), out);
    }

    @Test
    void finetuneFromAHubModelTakesItsSizesAndTokenizerOffline() throws Exception {
        Path repo = tmp.resolve("hub-repo");
        try (StateDict tm = TorchCheckpoints.read(tmp.resolve("pretrained.pt"))) {
            HfFlavaCheckpoints.writeFolder(repo, HfFlavaCheckpoints.Form.SAFETENSORS, HfFlavaCheckpoints.hfTensors(tm),
                    HfFlavaCheckpoints.hfConfig(new ObjectMapper().valueToTree(TINY)));
        }
        Files.writeString(repo.resolve("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nwhat\ncolor\nis\nthe\nsign\n");
        HubFixtures.serve(server, "facebook/flava-tiny", HubFixtures.filesOf(repo));
        download("--hf", "facebook/flava-tiny", "--cache", cache.toString(), "--base-url", server.base(), "--progress", "off");
        int requests = server.seen.size();
        server.close();

        // only the head comes from the settings: every size comes from the repository's config.json
        String out = finetune("--preset", "tutorial", "--data", data.toString(), "--checkpoint", "hf:facebook/flava-tiny",
                "--model-config", yaml("head.yaml", Map.of("classifier_hidden_sizes", 32)).toString(),
                "--out", tmp.resolve("run-hf").toString(), "--set", "max_length=32", "--set", "threads=1");
        assertEquals(requests, server.seen.size(), "finetune sent no request");
        Path folder = cache.resolve("hf/facebook/flava-tiny/main").toAbsolutePath();
        assertTrue(out.contains("weights: hf:facebook/flava-tiny = " + folder + " (SAFETENSORS, Hugging Face transformers layout)"), out);
        assertTrue(out.contains("mapped 80 tensors to TorchMultimodal names"), out); // 79 and the logit_scale
        assertTrue(out.contains("loaded 79 tensors; missing 4 [classifier.model.0.bias"), out);
        assertTrue(out.contains("Loss at step 2 = "), out);
        String settings = Files.readString(tmp.resolve("run-hf/model/bundle.json"));
        assertTrue(settings.contains("\"tokenizer\" : \"vocab.txt\""), settings);
        var kw = new ObjectMapper().readTree(FlavaConfig.fromJson(new ObjectMapper().writeValueAsString(TINY)).toKwargsJson());
        try (StateDict sd = dev.mm4j.checkpoint.SafeTensors.read(tmp.resolve("run-hf/model/model.safetensors"))) {
            var got = new ObjectMapper().readTree(sd.metadata().get("flava_config"));
            for (String k : TINY.keySet()) assertEquals(kw.get(k), got.get(k), k + " from config.json");
        }
    }
}
