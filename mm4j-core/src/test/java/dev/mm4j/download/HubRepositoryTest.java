package dev.mm4j.download;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.HfFlavaCheckpoints;
import dev.mm4j.checkpoint.PretrainedCheckpoint;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.TorchCheckpoints;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.report.ProgressReporter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A hub model repository into the cache from a 127.0.0.1 server, then found there offline; the cache layout. */
@Timeout(60)
class HubRepositoryTest {
    static final String REPO = "facebook/flava-tiny";
    @TempDir Path tmp;
    FixtureServer server;
    Map<String, byte[]> files;

    @BeforeEach
    void start() throws Exception {
        server = new FixtureServer();
        Path fixtures = Path.of(getClass().getResource("/fixtures/flava-tiny/expected.json").toURI()).getParent();
        var expected = new ObjectMapper().readTree(fixtures.resolve("expected.json").toFile());
        Path repo = tmp.resolve("repo");
        try (StateDict tm = TorchCheckpoints.read(fixtures.resolve("flava_classification.pt"))) {
            var hf = HfFlavaCheckpoints.hfTensors(tm);
            HfFlavaCheckpoints.writeFolder(repo, HfFlavaCheckpoints.Form.SAFETENSORS_2_SHARDS, hf,
                    HfFlavaCheckpoints.hfConfig(expected.get("config")));
            TorchCheckpoints.write(repo.resolve("pytorch_model.bin"), hf); // the same weights again: not fetched
        }
        Files.writeString(repo.resolve("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nsign\n");
        Files.writeString(repo.resolve("README.md"), "# flava-tiny\n");
        Files.writeString(repo.resolve(".gitattributes"), "*.bin filter=lfs\n");
        Files.write(repo.resolve("tf_model.h5"), new byte[2000]);
        files = HubFixtures.filesOf(repo);
        HubFixtures.serve(server, REPO, files);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    Downloader downloader(Path cache) {
        return new Downloader(cache, Downloader.Options.defaults().withMaxAttempts(3).withRetryBackoff(Duration.ZERO)
                .withReadTimeout(Duration.ofSeconds(5)).withProgress(ProgressReporter.Mode.OFF));
    }

    @Test
    void downloadsTheModelFilesThenFindsThemOfflineWithoutARequest() throws Exception {
        // one shard breaks off halfway once: the next attempt resumes it with a Range request
        var shard = server.put("/" + REPO + "/resolve/main/model-00002-of-00002.safetensors",
                files.get("model-00002-of-00002.safetensors"));
        shard.dropAfter = files.get("model-00002-of-00002.safetensors").length / 2;
        shard.dropTimes = 1;
        Path cache = tmp.resolve("cache");
        Downloader d = downloader(cache);
        Path folder = new HubRepository(d, server.base()).download(HubRepository.Id.parse(REPO));
        assertEquals(cache.toAbsolutePath().resolve("hf/facebook/flava-tiny/main"), folder);
        List<String> fetched = List.of("config.json", "vocab.txt", "model.safetensors.index.json",
                "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
        for (String f : fetched) assertArrayEquals(files.get(f), Files.readAllBytes(folder.resolve(f)), f);
        for (String f : List.of("pytorch_model.bin", "README.md", ".gitattributes", "tf_model.h5")) {
            assertFalse(Files.exists(folder.resolve(f)), f + " is not needed");
            assertEquals(List.of(), server.seen("/" + REPO + "/resolve/main/" + f), f + " was not requested");
        }
        var seen = server.seen("/" + REPO + "/resolve/main/model-00002-of-00002.safetensors");
        assertEquals(2, seen.size());
        assertTrue(seen.get(1).range() != null && seen.get(1).range().startsWith("bytes="), "resumed: " + seen);
        assertEquals(1 + fetched.size() + 1, d.requestCount(), "the listing, each file, one retry");

        // later, offline: the same folder from the cache, without a single request
        server.close();
        Downloader offline = downloader(cache);
        assertEquals(folder, new HubRepository(offline, null).resolve(HubRepository.Id.parse(REPO)));
        assertEquals(0, offline.requestCount());
        assertEquals(folder, PretrainedWeights.resolve("hf:" + REPO, offline).path());
        assertEquals(0, offline.requestCount());
        try (PretrainedCheckpoint ck = PretrainedCheckpoint.open(folder)) {
            assertEquals("2 SAFETENSORS shards", ck.format());
            FlavaConfig c = PretrainedCheckpoint.config(folder, FlavaConfig.fullSize(7));
            assertEquals(32, c.imageHiddenSize);
            assertEquals(127, ck.check(new FlavaForClassification(c)).load().loaded());
        }
        assertEquals(folder.resolve("vocab.txt"), PretrainedWeights.resolve("hf:" + REPO, offline).tokenizerFile());
    }

    @Test
    void aFileWithAnotherChecksumThanListedIsRefused() throws Exception {
        byte[] bad = files.get("model-00001-of-00002.safetensors").clone();
        bad[bad.length - 1] ^= 1;
        server.put("/" + REPO + "/resolve/main/model-00001-of-00002.safetensors", bad);
        Path cache = tmp.resolve("cache");
        var e = assertThrows(Downloader.ChecksumException.class,
                () -> new HubRepository(downloader(cache), server.base()).download(HubRepository.Id.parse(REPO)));
        assertTrue(e.getMessage().startsWith("SHA-256 mismatch for "
                + server.url("/" + REPO + "/resolve/main/model-00001-of-00002.safetensors")), e.getMessage());
        Path folder = cache.resolve("hf/facebook/flava-tiny/main");
        assertFalse(Files.exists(folder.resolve("model-00001-of-00002.safetensors")));
        assertFalse(Files.exists(folder.resolve(HubRepository.MANIFEST)), "no file list: the model is not complete");
    }

    @Test
    void unknownRepositoryAndBadNamesAreClear() throws Exception {
        var e = assertThrows(java.io.IOException.class, () -> new HubRepository(downloader(tmp.resolve("c")), server.base())
                .download(HubRepository.Id.parse("facebook/nothing-here")));
        assertTrue(e.getMessage().startsWith("hub model facebook/nothing-here not found (HTTP 404"), e.getMessage());
        var bad = assertThrows(IllegalArgumentException.class, () -> HubRepository.Id.parse("flava-full"));
        assertTrue(bad.getMessage().contains("expected ORG/NAME"), bad.getMessage());
        assertEquals(new HubRepository.Id("facebook/flava-full", "refs/pr/3"), HubRepository.Id.parse("facebook/flava-full@refs/pr/3"));
        // a repository without weights
        server.put("/api/models/facebook/empty/tree/main", "[{\"type\":\"file\",\"path\":\"README.md\",\"size\":3}]"
                .getBytes(StandardCharsets.UTF_8));
        e = assertThrows(java.io.IOException.class, () -> new HubRepository(downloader(tmp.resolve("c")), server.base())
                .download(HubRepository.Id.parse("facebook/empty")));
        assertTrue(e.getMessage().contains("has none of [model.safetensors"), e.getMessage());
    }

    @Test
    void aUrlCheckpointIsFetchedOnlyWhenItsWeightsAreLoaded() throws Exception {
        Path fixture = Path.of(getClass().getResource("/fixtures/flava-tiny/flava_pretraining_layout.pt").toURI());
        server.put("/ckpt/flava.pt", Files.readAllBytes(fixture));
        var expected = new ObjectMapper().readTree(fixture.resolveSibling("expected.json").toFile());
        FlavaConfig config = FlavaConfig.fromJson(expected.get("config").toString());
        Downloader d = downloader(tmp.resolve("cache"));
        PretrainedWeights w = PretrainedWeights.resolve(server.url("/ckpt/flava.pt"), d);
        assertNull(w.path());
        assertSame(config, w.config(config), "no config.json: the defaults");
        assertEquals(0, d.requestCount(), "a resumed run, which loads no weights, sends no request");
        try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager()) {
            String report = w.loadInto(FlavaForClassification.create(config, m));
            assertTrue(report.contains("(TORCH_ZIP, TorchMultimodal layout)") && report.contains("loaded 127 tensors"), report);
        }
        assertEquals(1, d.requestCount());
        assertEquals(d.targetOf(Downloader.Request.of(server.url("/ckpt/flava.pt"))),
                PretrainedWeights.resolve(server.url("/ckpt/flava.pt"), d).path(), "then found in the cache");
        assertEquals(1, d.requestCount());
    }

    @Test
    void oneRuleDecidesWhereEachUrlIsCached() {
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("https://download.pytorch.org/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt",
                "download.pytorch.org/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt");
        cases.put("http://dl.fbaipublicfiles.com/pythia/data/vocab.tar.gz", "dl.fbaipublicfiles.com/pythia/data/vocab.tar.gz");
        cases.put("http://127.0.0.1:8123/m/x.pt", "127.0.0.1_8123/m/x.pt");
        cases.put("https://huggingface.co/facebook/flava-full/resolve/main/pytorch_model.bin", "hf/facebook/flava-full/main/pytorch_model.bin");
        cases.put("https://huggingface.co/facebook/flava-full/resolve/refs%2Fpr%2F3/config.json", "hf/facebook/flava-full/refs%2Fpr%2F3/config.json");
        cases.put("https://huggingface.co/datasets/facebook/textvqa/resolve/main/data/train-00000-of-00020.parquet",
                "hf/datasets/facebook/textvqa/main/data/train-00000-of-00020.parquet");
        cases.put("https://huggingface.co/api/datasets/facebook/textvqa/parquet/default/train/0.parquet",
                "hf/datasets/facebook/textvqa/parquet/default/train/0.parquet");
        cases.put("https://HuggingFace.co/some/other/path.txt", "huggingface.co/some/other/path.txt");
        cases.put("https://h/a%20b.txt", "h/a b.txt");
        cases.put("https://h/a/..%2F..%2Fevil", "h/a/..%2F..%2Fevil"); // one (odd) file name, not a way up
        cases.forEach((url, path) -> assertEquals(path, CacheLayout.pathOf(URI.create(url)), url));
        assertEquals("hf/facebook/flava-full/main", CacheLayout.hubModelFolder("facebook/flava-full", "main"));
        for (String bad : List.of("https://h/", "ftp://h/x", "https://h/x?y=1", "https://h/../x")) {
            assertThrows(IllegalArgumentException.class, () -> CacheLayout.pathOf(URI.create(bad)), bad);
        }
        // a mirror fetch keeps the logical URL's place
        var r = Downloader.Request.of("https://huggingface.co/facebook/flava-full/resolve/main/config.json")
                .from(URI.create("http://127.0.0.1:9/facebook/flava-full/resolve/main/config.json"));
        assertEquals("hf/facebook/flava-full/main/config.json", r.effectivePath());
    }
}
