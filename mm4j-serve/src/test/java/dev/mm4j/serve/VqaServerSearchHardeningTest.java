package dev.mm4j.serve;

import static dev.mm4j.serve.VqaServerTest.assertError;
import static dev.mm4j.serve.VqaServerTest.post;
import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.Padding;
import dev.mm4j.search.Embedder;
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

    @TempDir static Path tmp;
    static Path bundle;
    static Path index;
    static Embedder reference;
    static ImageSearch search;

    @BeforeAll
    static void start() throws Exception {
        bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        index = TinyBundle.index(tmp, bundle, 4);
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
        try (VqaServer s = VqaServer.start(null, search, VqaServer.Settings.defaults().withPort(0).withLimits(64, 20_000, 10L << 20))) {
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
            assertTrue(after - before < 100L << 20, "RSS grew by " + ((after - before) >> 20) + " MB (from " + (before >> 20)
                    + " MB)");
        }
    }

    @Test
    void embedAndSearchShedLoadWith503AndTimeOutWith504() throws Exception {
        try (VqaServer s = VqaServer.start(null, search, VqaServer.Settings.defaults().withPort(0).withBatching(8, 1500)
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
        try (VqaServer s = VqaServer.start(null, search, VqaServer.Settings.defaults().withPort(0).withBatching(8, 1000)
                .withLimits(8, 50, 1 << 20))) {
            assertError(504, json(s.uri(), "v1/search", Map.of("text", "stop")), "request timeout of 50 ms");
            assertError(504, json(s.uri(), "v1/embed", Map.of("text", "stop")), "request timeout of 50 ms");
        }
    }
}
