package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.download.FixtureServer;
import dev.mm4j.download.HubFixtures;
import dev.mm4j.download.TarFixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

@Timeout(30)
class DownloadCommandTest {
    @TempDir Path cache;
    FixtureServer server;
    final StringWriter out = new StringWriter();
    final StringWriter err = new StringWriter();

    @BeforeEach
    void start() throws Exception {
        server = new FixtureServer();
    }

    @AfterEach
    void stop() {
        server.close();
    }

    int run(String... args) {
        CommandLine cl = new CommandLine(new DownloadCommand()).setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return cl.execute(args);
    }

    @Test
    void downloadsEverythingFromAMirrorAndThenHitsTheCache() throws Exception {
        byte[] ckpt = "fake checkpoint bytes".getBytes(StandardCharsets.UTF_8);
        server.put("/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt", ckpt);
        var tar = new LinkedHashMap<String, String>();
        tar.put("data/vocabs/answers_textvqa_more_than_1.txt", "<unk>\nyes\n");
        server.put("/pythia/data/vocab.tar.gz", TarFixtures.tarGz(tar));
        server.put("/datasets/facebook/textvqa/resolve/main/data/train-00000-of-00002.parquet", new byte[] {1, 2});
        server.put("/datasets/facebook/textvqa/resolve/main/data/train-00001-of-00002.parquet", new byte[] {3});

        String[] args = {"--cache", cache.toString(), "--base-url", server.base(), "--progress", "off",
            "--shard", "data/train-00000-of-00002.parquet,data/train-00001-of-00002.parquet"};
        assertEquals(0, run(args), err.toString());
        assertArrayEquals(ckpt, Files.readAllBytes(
                cache.resolve("download.pytorch.org/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt")));
        assertEquals("<unk>\nyes\n", Files.readString(cache.resolve("dl.fbaipublicfiles.com/pythia/data/data/vocabs/answers_textvqa_more_than_1.txt")));
        assertArrayEquals(new byte[] {1, 2},
                Files.readAllBytes(cache.resolve("hf/datasets/facebook/textvqa/main/data/train-00000-of-00002.parquet")));
        assertTrue(out.toString().contains("answers vocab: "), out.toString());
        int requests = server.seen.size();
        assertEquals(4, requests);

        assertEquals(0, run(args), err.toString());
        assertEquals(requests, server.seen.size(), "second run is all cache hits");
    }

    @Test
    void hubListingNamesTheShards() throws Exception {
        String api = "/api/datasets/facebook/textvqa/parquet";
        String listing = "{\"textvqa\":{\"train\":[\"https://huggingface.co" + api + "/textvqa/train/0.parquet\","
                + "\"https://huggingface.co" + api + "/textvqa/train/1.parquet\"],"
                + "\"validation\":[\"https://huggingface.co" + api + "/textvqa/validation/0.parquet\"]}}";
        server.put(api, listing.getBytes(StandardCharsets.UTF_8)).contentType = "application/json";
        server.put(api + "/textvqa/train/0.parquet", new byte[] {10});
        server.put(api + "/textvqa/train/1.parquet", new byte[] {11});
        server.put(api + "/textvqa/validation/0.parquet", new byte[] {20});
        assertEquals(0, run("--what", "textvqa", "--cache", cache.toString(), "--base-url", server.base(),
                "--progress", "off", "--split", "train,validation"), err.toString());
        assertArrayEquals(new byte[] {11}, Files.readAllBytes(cache.resolve("hf/datasets/facebook/textvqa/parquet/textvqa/train/1.parquet")));
        assertArrayEquals(new byte[] {20}, Files.readAllBytes(cache.resolve("hf/datasets/facebook/textvqa/parquet/textvqa/validation/0.parquet")));
    }

    @Test
    void missingFileIsAClearErrorNamingTheUrl() {
        int rc = run("--what", "checkpoint", "--cache", cache.toString(), "--base-url", server.base(),
                "--progress", "off");
        assertEquals(1, rc);
        assertTrue(err.toString().contains("HTTP 404") && err.toString().contains(
                server.base() + "/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt"),
                err.toString());
    }

    @Test
    void badWhatIsAUsageError() {
        assertEquals(2, run("--what", "everything", "--cache", cache.toString(), "--progress", "off"));
    }

    @Test
    void hubModelRepositoryIsFetchedWithoutTheTutorialFiles() throws Exception {
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put("config.json", "{\"model_type\": \"flava\"}".getBytes(StandardCharsets.UTF_8));
        files.put("pytorch_model.bin", new byte[3000]);
        files.put("README.md", "# x".getBytes(StandardCharsets.UTF_8));
        HubFixtures.serve(server, "facebook/flava-full", files);
        String[] args = {"--hf", "facebook/flava-full", "--cache", cache.toString(), "--base-url", server.base(), "--progress", "off"};
        assertEquals(0, run(args), err.toString());
        Path folder = cache.resolve("hf/facebook/flava-full/main");
        assertTrue(out.toString().contains("hf model: " + folder), out.toString());
        assertArrayEquals(new byte[3000], Files.readAllBytes(folder.resolve("pytorch_model.bin")));
        assertFalse(Files.exists(folder.resolve("README.md")));
        assertEquals(3, server.seen.size(), "the listing and two files; not the tutorial checkpoint, vocab or TextVQA");
        assertEquals(0, run(args), err.toString());
        assertEquals(4, server.seen.size(), "again: only the listing is asked for");
        assertEquals(2, run("--hf", "flava-full", "--cache", cache.toString()));
        assertTrue(err.toString().contains("error: --hf: not a hub model repository: 'flava-full'"), err.toString());
    }
}
