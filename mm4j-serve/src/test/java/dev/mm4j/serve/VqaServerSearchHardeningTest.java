package dev.mm4j.serve;

import static dev.mm4j.serve.VqaServerTest.assertError;
import static dev.mm4j.serve.VqaServerTest.post;
import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.TinyBundle;
import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.Padding;
import dev.mm4j.inference.Embedder;
import dev.mm4j.serve.VqaServerTest.Reply;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The search endpoints under hostile input: huge texts, full queues, slow batches, absurd {@code k}, an index that
 * goes away, images on disk that are not what they were.
 */
class VqaServerSearchHardeningTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final java.net.http.HttpClient HTTP = java.net.http.HttpClient.newBuilder()
            .version(java.net.http.HttpClient.Version.HTTP_1_1).build();

    @TempDir static Path tmp;
    static Path bundle;
    static Path index;
    static Embedder reference;
    static ImageSearch search;

    @BeforeAll
    static void start() throws Exception {
        bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        index = TinyIndex.build(tmp, bundle, 4);
        reference = Embedder.open(bundle, null, Device.cpu());
        search = ImageSearch.open(index, null, null, Device.cpu(), 1_000_000);
    }

    @AfterAll
    static void stop() throws Exception {
        search.close();
        reference.close();
    }

    static Reply json(URI base, String path, Map<String, Object> body) throws Exception {
        return post(base, path, "application/json", JSON.writeValueAsBytes(body));
    }

    static long rssBytes() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IllegalStateException("no VmRSS");
    }

    static <T> CompletableFuture<T> async(java.util.concurrent.Callable<T> c) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return c.call();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }, r -> new Thread(r).start());
    }

    @Test
    void hugeTextsAreCutBeforeTokenizingAndDoNotHoldUpOthers() throws Exception {
        byte[] huge = JSON.writeValueAsBytes(Map.of("text", "word ".repeat(1900 * 1024))); // 9.7 MB, under 10 MB
        byte[] blank = JSON.writeValueAsBytes(Map.of("text", " ".repeat(1900 * 1024 * 5)));
        try (ModelServer s = ModelServer.start(null, search, ModelServer.Settings.defaults().withPort(0).withLimits(64, 20_000, 10L << 20))) {
            // warm-up: the same bodies read and parsed, not tokenized (blank text is refused before), so the heap has grown
            List<CompletableFuture<Reply>> warm = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                warm.add(async(() -> post(s.uri(), "v1/search", "application/json", blank)));
            }
            for (CompletableFuture<Reply> f : warm) {
                assertError(400, f.get(), "text: missing or empty");
            }
            System.gc();
            long before = rssBytes();
            List<CompletableFuture<Reply>> big = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                String path = i % 2 == 0 ? "v1/search" : "v1/embed";
                big.add(async(() -> post(s.uri(), path, "application/json", huge)));
            }
            Thread.sleep(50);
            long t0 = System.nanoTime();
            Reply normal = json(s.uri(), "v1/search", Map.of("text", "a red sign", "k", 2));
            long normalMs = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(200, normal.status(), normal.body().toString());
            assertEquals(2, normal.body().get("hits").size());
            assertTrue(normalMs < 20_000, normalMs + " ms");
            float[] want = reference.texts(List.of("word ".repeat(4000)))[0]; // the first 512 tokens, all the model sees
            for (int i = 0; i < 4; i++) {
                Reply r = big.get(i).get();
                assertEquals(200, r.status(), r.body().toString());
                if (i % 2 == 1) {
                    float[] got = VqaServerSearchTest.floats(r.body().get("text"));
                    assertArrayEquals(want, got, 1e-5f);
                }
            }
            System.gc();
            long after = rssBytes();
            // tokenizing whole texts grew RSS by about 4 GB; the cut leaves what the JVM's heap may add under load
            // (100-140 MB in the full suite's JVM, after the other test classes)
            assertTrue(after - before < 300L << 20, "RSS grew by " + ((after - before) >> 20) + " MB (from " + (before >> 20)
                    + " MB)");
        }
    }

    @Test
    void embedAndSearchShedLoadWith503AndTimeOutWith504() throws Exception {
        try (ModelServer s = ModelServer.start(null, search, ModelServer.Settings.defaults().withPort(0).withBatching(8, 1500)
                .withLimits(2, 30_000, 1 << 20))) {
            List<CompletableFuture<Reply>> replies = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                String path = i % 2 == 0 ? "v1/search" : "v1/embed";
                replies.add(async(() -> json(s.uri(), path, Map.of("text", "stop"))));
            }
            int ok = 0;
            int busy = 0;
            for (CompletableFuture<Reply> f : replies) {
                Reply r = f.get();
                if (r.status() == 503) {
                    busy++;
                    assertEquals("1", r.raw().headers().firstValue("Retry-After").orElse(null));
                    assertTrue(r.body().get("error").asText().contains("queue full"), r.body().toString());
                } else {
                    assertEquals(200, r.status(), r.body().toString());
                    ok++;
                }
            }
            assertEquals(2, ok, "two fit in the queue");
            assertEquals(2, busy, "the others are refused at once");
            assertTrue(VqaServerHardeningTest.metric(s, "mm4j_embed_batch_size_count") >= 1);
        }
        try (ModelServer s = ModelServer.start(null, search, ModelServer.Settings.defaults().withPort(0).withBatching(8, 1000)
                .withLimits(8, 50, 1 << 20))) {
            assertError(504, json(s.uri(), "v1/search", Map.of("text", "stop")), "request timeout of 50 ms");
            assertError(504, json(s.uri(), "v1/embed", Map.of("text", "stop")), "request timeout of 50 ms");
        }
    }

    static java.net.http.HttpResponse<String> request(URI base, String method, String path) throws Exception {
        return HTTP.send(java.net.http.HttpRequest.newBuilder(base.resolve(path))
                .method(method, java.net.http.HttpRequest.BodyPublishers.noBody()).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    }

    static void assertJsonError(int status, java.net.http.HttpResponse<String> r, String fragment) throws Exception {
        assertError(status, new Reply(r.statusCode(), JSON.readTree(r.body()), r), fragment);
    }

    @Test
    void aGoneIndexFolderIs503UntilItIsBack() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("going"));
        Path idx = TinyIndex.build(dir, bundle, 2);
        Path away = dir.resolve("index.away");
        try (ImageSearch s = ImageSearch.open(idx, bundle, null, Device.cpu(), 1_000_000);
                ModelServer srv = ModelServer.start(null, s, ModelServer.Settings.defaults().withPort(0))) {
            Reply ok = json(srv.uri(), "v1/search", Map.of("text", "stop", "k", 1));
            assertEquals(200, ok.status(), ok.body().toString());
            String image = "v1/images/" + ok.body().get("hits").get(0).get("sha256").asText();
            Files.move(idx, away); // to the server, the folder is gone
            Thread.sleep(1200); // the index looks at its folder at most once a second
            String logged = VqaServerHardeningTest.stderrOf(() -> {
                for (int i = 0; i < 5; i++) {
                    Reply r = json(srv.uri(), "v1/search", Map.of("text", "stop"));
                    assertError(503, r, "index unavailable");
                    assertEquals("10", r.raw().headers().firstValue("Retry-After").orElse(null));
                    assertJsonError(503, request(srv.uri(), "GET", image), "index unavailable");
                    assertJsonError(503, request(srv.uri(), "GET", image + "?size=64"), "index unavailable");
                    assertJsonError(503, request(srv.uri(), "GET", "readyz"), "index unavailable");
                }
            });
            assertFalse(logged.contains("\tat ") || logged.contains("NoSuchFileException\n"), logged);
            assertTrue(logged.lines().filter(l -> !l.isBlank()).count() <= 1, "20 requests logged:\n" + logged);
            assertFalse(srv.ready() && s.available());
            Files.move(away, idx);
            Thread.sleep(1200);
            assertEquals(200, json(srv.uri(), "v1/search", Map.of("text", "stop")).status());
            assertEquals(200, request(srv.uri(), "GET", "readyz").statusCode());
            assertEquals(200, request(srv.uri(), "GET", image).statusCode());
        }
    }

    @Test
    void indexedImagesAreReadUpToTheBodyLimitAndThumbnailsAreCached() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("bounded"));
        Path idx = TinyIndex.build(dir, bundle, 3);
        Path[] files = {dir.resolve("images/img100.png"), dir.resolve("images/img101.png"), dir.resolve("images/img102.png")};
        String[] sha = new String[3];
        for (int i = 0; i < 3; i++) {
            sha[i] = dev.mm4j.search.ImageIndex.sha256(Files.readAllBytes(files[i]));
        }
        try (ImageSearch s = ImageSearch.open(idx, bundle, null, Device.cpu(), 1_000_000);
                ModelServer srv = ModelServer.start(null, s, ModelServer.Settings.defaults().withPort(0).withLimits(64, 30_000, 100_000))) {
            byte[] png = Files.readAllBytes(files[0]);
            var get = HTTP.send(java.net.http.HttpRequest.newBuilder(srv.uri().resolve("v1/images/" + sha[0])).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, get.statusCode());
            assertArrayEquals(png, get.body());
            var head = request(srv.uri(), "HEAD", "v1/images/" + sha[0]);
            assertEquals(200, head.statusCode());
            assertEquals("image/png", head.headers().firstValue("Content-Type").orElse(""));
            assertEquals(String.valueOf(png.length), head.headers().firstValue("Content-Length").orElse(""), "HEAD's length");
            assertEquals("", head.body());
            // thumbnails: made once, then from the cache while the file is unchanged
            var t1 = HTTP.send(java.net.http.HttpRequest.newBuilder(srv.uri().resolve("v1/images/" + sha[0] + "?size=64")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, t1.statusCode());
            assertEquals(1, s.thumbnailsCached());
            var t2 = HTTP.send(java.net.http.HttpRequest.newBuilder(srv.uri().resolve("v1/images/" + sha[0] + "?size=64")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofByteArray());
            assertArrayEquals(t1.body(), t2.body());
            assertEquals(1, s.thumbnailsCached());
            Files.write(files[0], TinyBundle.png(999, 320, 200));
            assertJsonError(404, request(srv.uri(), "GET", "v1/images/" + sha[0] + "?size=64"), "changed since it was indexed");
            // an indexed image replaced by a link to /dev/zero (endless) or by a file over the limit
            Files.delete(files[1]);
            Files.createSymbolicLink(files[1], Path.of("/dev/zero"));
            assertJsonError(404, request(srv.uri(), "GET", "v1/images/" + sha[1]), "no longer a regular file");
            Files.delete(files[2]);
            Files.write(files[2], new byte[100_001]);
            assertJsonError(413, request(srv.uri(), "GET", "v1/images/" + sha[2]), "over the limit of 100000 bytes");
            assertJsonError(413, request(srv.uri(), "GET", "v1/images/" + sha[2] + "?size=64"), "over the limit");
        }
        // the API alone: the default bound, and a FIFO-like endless file is cut off too
        try (ImageSearch s = ImageSearch.open(idx, bundle, null, Device.cpu(), 1_000_000)) {
            ImageSearch.TooLargeException e = assertThrows(ImageSearch.TooLargeException.class, () -> s.picture(sha[2], 0, 1000));
            assertTrue(e.getMessage().contains("over the limit of 1000 bytes"), e.getMessage());
        }
    }

    @Test
    void jsonTypesOtherMethodsAndTheSearchOnlyPage() throws Exception {
        try (ModelServer srv = ModelServer.start(null, search, ModelServer.Settings.defaults().withPort(0))) {
            URI u = srv.uri();
            java.util.function.Function<String, Reply> body = b -> {
                try {
                    return post(u, "v1/search", "application/json", b.getBytes(StandardCharsets.UTF_8));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            };
            assertError(400, body.apply("{\"text\": \"stop\", \"k\": \"3\"}"), "k: must be an integer, got string \"3\"");
            assertError(400, body.apply("{\"text\": \"stop\", \"k\": 2.5}"), "k: must be an integer, got number 2.5");
            assertError(400, body.apply("{\"text\": 42}"), "text: must be a string, got number 42");
            assertError(400, body.apply("{\"text\": [\"a\"]}"), "text: must be a string, got array");
            assertError(400, body.apply("{\"text\": \"stop\"} trailing"), "not valid JSON");
            assertError(400, body.apply("{\"text\": \"stop\"}{}"), "not valid JSON");
            assertError(400, post(u, "v1/embed", "application/json", "{\"text\": true}".getBytes()), "text: must be a string");
            assertEquals(200, body.apply("{\"text\": \"stop\", \"k\": 3}").status());
            // methods outside the API's: 405 with Allow, TRACE and methods unknown to HTTP included
            for (String[] m : new String[][] {{"TRACE", "v1/answer", "POST"}, {"BREW", "v1/search", "POST"},
                    {"TRACE", "v1/images/" + "0".repeat(64), "GET"}, {"PROPFIND", "v1/embed", "POST"}}) {
                VqaServerHardeningTest.Raw r = VqaServerHardeningTest.send(u, m[0] + " /" + m[1] + " HTTP/1.1", null);
                VqaServerHardeningTest.assertJsonError(405, r, "method not allowed: " + m[0] + " /" + m[1]);
                assertEquals(m[2], r.headers().get("allow"), m[0] + " " + m[1]);
            }
            VqaServerHardeningTest.assertJsonError(404, VqaServerHardeningTest.send(u, "TRACE /nope HTTP/1.1", null), "no such endpoint");
            // the page of a search-only server does not offer question answering
            String page = request(u, "GET", "").body();
            assertFalse(page.contains("visual question answering"), "search-only header");
            assertTrue(page.contains("<span id=\"model\">image search</span>"));
            assertTrue(page.contains("h.text"), "the grid shows stored captions");
        }
    }
}
