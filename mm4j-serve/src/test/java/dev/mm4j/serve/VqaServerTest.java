package dev.mm4j.serve;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.TinyBundle;
import dev.mm4j.inference.Answer;
import dev.mm4j.inference.VqaModel;
import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.Padding;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VqaServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @TempDir static Path tmp;
    static Path bundle;
    static VqaModel model;
    static ModelServer server;

    @BeforeAll
    static void start() throws Exception {
        bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        model = VqaModel.load(bundle, Device.cpu(), new VqaModel.Options(64L << 20, 1_000_000));
        server = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0).withLimits(64, 30_000, 200_000));
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    record Reply(int status, JsonNode body, HttpResponse<String> raw) {}

    static Reply post(URI base, String contentType, byte[] body) throws Exception {
        return post(base, "v1/answer", contentType, body);
    }

    static Reply post(URI base, String path, String contentType, byte[] body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (contentType != null) {
            b.header("Content-Type", contentType);
        }
        HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), JSON.readTree(r.body()), r);
    }

    static Reply json(URI base, byte[] image, String question, Object k) throws Exception {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        if (image != null) {
            m.put("image", Base64.getEncoder().encodeToString(image));
        }
        if (question != null) {
            m.put("question", question);
        }
        if (k != null) {
            m.put("k", k);
        }
        return post(base, "application/json", JSON.writeValueAsBytes(m));
    }

    static Reply multipart(URI base, byte[] image, String question, String k) throws Exception {
        return multipart(base, "v1/answer", image, "question", question, "k", k);
    }

    /** A multipart body to {@code path}: the file field 'image' (if not null), then name/value pairs (null values left out). */
    static Reply multipart(URI base, String path, byte[] image, String... fields) throws Exception {
        String boundary = "----mm4jtest" + System.nanoTime();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        if (image != null) {
            out.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
                    + "Content-Type: image/png\r\n\r\n").getBytes(StandardCharsets.UTF_8));
            out.write(image);
            out.write("\r\n".getBytes(StandardCharsets.UTF_8));
        }
        for (int i = 0; i < fields.length; i += 2) {
            if (fields[i + 1] != null) {
                out.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + fields[i] + "\"\r\n\r\n"
                        + fields[i + 1] + "\r\n").getBytes(StandardCharsets.UTF_8));
            }
        }
        out.write(("--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return post(base, path, "multipart/form-data; boundary=" + boundary, out.toByteArray());
    }

    static HttpResponse<String> get(URI base, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(base.resolve(path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void answersMultipartAndJsonLikeTheLibrary() throws Exception {
        byte[] img = TinyBundle.png(11, 80, 60);
        List<Answer> want = model.answer(img, "what does the sign say?", 3);
        for (Reply r : List.of(multipart(server.uri(), img, "what does the sign say?", "3"),
                json(server.uri(), img, "what does the sign say?", 3))) {
            assertEquals(200, r.status(), r.body().toString());
            assertTrue(r.body().get("model").asText().endsWith("/model"), r.body().toString());
            JsonNode answers = r.body().get("answers");
            assertEquals(3, answers.size());
            for (int i = 0; i < 3; i++) {
                assertEquals(want.get(i).answer(), answers.get(i).get("answer").asText());
                assertEquals(want.get(i).probability(), answers.get(i).get("probability").asDouble(), 1e-6);
            }
            assertEquals("hit", r.body().get("image_cache").asText(), "the library call cached the image");
            assertFalse(r.body().get("question_truncated").asBoolean());
            JsonNode t = r.body().get("timing_ms");
            assertTrue(t.get("total").asDouble() >= t.get("forward").asDouble() && t.get("forward").asDouble() > 0, t.toString());
        }
        Reply fresh = json(server.uri(), TinyBundle.png(12, 80, 60), "what?", null);
        assertEquals("miss", fresh.body().get("image_cache").asText());
        assertEquals(5, fresh.body().get("answers").size(), "k defaults to 5");
    }

    /** A PNG that declares {@code w x h} pixels but carries no image data: a decompression bomb's header. */
    static byte[] pngHeader(int w, int h) {
        java.nio.ByteBuffer ihdr = java.nio.ByteBuffer.allocate(17);
        ihdr.put("IHDR".getBytes(StandardCharsets.US_ASCII)).putInt(w).putInt(h).put((byte) 8).put((byte) 2)
                .put((byte) 0).put((byte) 0).put((byte) 0);
        CRC32 crc = new CRC32();
        crc.update(ihdr.array());
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8 + 4 + 17 + 4);
        b.put(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}).putInt(13).put(ihdr.array()).putInt((int) crc.getValue());
        return b.array();
    }

    @Test
    void badInputGetsJsonErrorsWithTheRightStatusAndTheServerKeepsServing() throws Exception {
        URI u = server.uri();
        byte[] img = TinyBundle.png(21, 64, 64);
        assertError(413, post(u, "application/json", new byte[300_000]), "over the limit");
        assertError(415, multipart(u, "GIF? no, just text".getBytes(), "q", null), "not a recognised image");
        assertError(415, post(u, "text/plain", "hi".getBytes()), "Content-Type");
        assertError(400, json(u, java.util.Arrays.copyOf(img, 80), "q", null), "image file is truncated");
        assertError(400, json(u, pngHeader(20000, 20000), "q", null), "400000000 pixels, over the limit");
        assertError(400, multipart(u, img, null, null), "question");
        assertError(400, json(u, img, "   ", null), "question");
        assertError(400, multipart(u, null, "q", null), "image: missing");
        assertError(400, json(u, img, "q", "zero"), "k: must be");
        assertError(400, json(u, img, "q", 0), "k: must be");
        assertError(400, post(u, "application/json", "{not json".getBytes()), "not valid JSON");
        assertError(400, post(u, "application/json", "{\"image\":\"%%%\",\"question\":\"q\"}".getBytes()), "base64");
        assertError(404, null, get(u, "nope"), "no such endpoint");
        Reply longQ = json(u, img, "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen", 2);
        assertEquals(200, longQ.status());
        assertTrue(longQ.body().get("question_truncated").asBoolean());
        assertEquals(17, longQ.body().get("question_tokens").get("given").asInt());
        assertEquals(16, longQ.body().get("question_tokens").get("used").asInt());
        assertEquals(200, json(u, img, "still serving?", 1).status());
    }

    static void assertError(int status, Reply r, String fragment) {
        assertEquals(status, r.status(), r.body().toString());
        assertEquals(status, r.body().get("status").asInt());
        String msg = r.body().get("error").asText();
        assertTrue(msg.contains(fragment), msg);
        assertFalse(r.raw().body().contains("\tat "), "no stack trace: " + r.raw().body());
        assertEquals("application/json", r.raw().headers().firstValue("Content-Type").orElse("").split(";")[0]);
    }

    private static void assertError(int status, Void unused, HttpResponse<String> r, String fragment) throws Exception {
        assertError(status, new Reply(r.statusCode(), JSON.readTree(r.body()), r), fragment);
    }

    @Test
    void pageHealthAndMetrics() throws Exception {
        HttpResponse<String> page = get(server.uri(), "");
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("<input id=\"file\"") && !page.body().contains("http://") && !page.body().contains("https://"),
                "the page works offline: no external assets");
        assertEquals(200, get(server.uri(), "healthz").statusCode());
        HttpResponse<String> ready = get(server.uri(), "readyz");
        assertEquals(200, ready.statusCode());
        assertTrue(JSON.readTree(ready.body()).get("model").asText().endsWith("/model"));
        json(server.uri(), TinyBundle.png(31, 50, 50), "q", 1);
        json(server.uri(), TinyBundle.png(31, 50, 50), "q again", 1);
        json(server.uri(), null, "q", 1);
        String metrics = get(server.uri(), "metrics").body();
        for (String line : List.of("mm4j_requests_total{status=\"200\"}", "mm4j_requests_total{status=\"400\"}",
                "mm4j_request_latency_seconds_bucket{le=", "mm4j_batch_size_bucket{le=\"1.0\"}", "mm4j_queue_depth 0.0",
                "mm4j_image_cache_requests_total{result=\"hit\"}", "mm4j_image_cache_requests_total{result=\"miss\"}",
                "mm4j_image_cache_bytes")) {
            assertTrue(metrics.contains(line), line + " in\n" + metrics);
        }
        assertTrue(value(metrics, "mm4j_image_cache_requests_total{result=\"hit\"}") >= 1);
        assertTrue(value(metrics, "mm4j_requests_total{status=\"200\"}") >= 2);
    }

    private static double value(String metrics, String series) {
        return metrics.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1)))
                .findFirst().orElse(-1);
    }

    @Test
    void requestsArrivingTogetherShareAForwardPassAndGetTheirOwnAnswers() throws Exception {
        try (ModelServer s = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0).withBatching(8, 1500))) {
            List<byte[]> imgs = new ArrayList<>();
            List<CompletableFuture<Reply>> replies = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                byte[] img = TinyBundle.png(40 + i, 60, 40 + 10 * i);
                imgs.add(img);
                String q = i % 2 == 0 ? "what?" : "what does the big sign on the left say?";
                replies.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        return json(s.uri(), img, q, 9);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }));
            }
            for (int i = 0; i < 4; i++) {
                Reply r = replies.get(i).get();
                assertEquals(200, r.status(), r.body().toString());
                assertEquals(4, r.body().get("batch_size").asInt(), "all four in one forward pass");
                List<Answer> alone = model.answer(imgs.get(i), i % 2 == 0 ? "what?" : "what does the big sign on the left say?", 9);
                for (int j = 0; j < 9; j++) {
                    assertEquals(alone.get(j).probability(), r.body().get("answers").get(j).get("probability").asDouble(), 1e-5,
                            "request " + i + " answer " + j + ": in a batch = alone");
                }
            }
        }
    }

    @Test
    void fullQueueGets503WithRetryAfterAndSlowRequestsTimeOut() throws Exception {
        byte[] img = TinyBundle.png(50, 40, 40);
        try (ModelServer s = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0).withBatching(8, 1500)
                .withLimits(2, 30_000, 1 << 20))) {
            List<CompletableFuture<Reply>> replies = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                replies.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        return json(s.uri(), img, "q", 1);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }));
            }
            int ok = 0;
            int busy = 0;
            for (CompletableFuture<Reply> f : replies) {
                Reply r = f.get();
                if (r.status() == 503) {
                    busy++;
                    assertEquals("1", r.raw().headers().firstValue("Retry-After").orElse(null));
                    assertTrue(r.body().get("error").asText().contains("queue full"));
                } else {
                    assertEquals(200, r.status());
                    ok++;
                }
            }
            assertEquals(2, ok, "two fit in the queue");
            assertEquals(2, busy, "the others are refused at once");
        }
        try (ModelServer s = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0).withBatching(8, 1000)
                .withLimits(8, 50, 1 << 20))) {
            assertError(504, json(s.uri(), img, "q", 1), "request timeout of 50 ms");
        }
    }

    @Test
    void readyOnlyOnceTheModelIsLoaded() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        try (ModelServer s = ModelServer.start(() -> {
            release.await();
            return VqaModel.load(bundle, Device.cpu());
        }, ModelServer.Settings.defaults().withPort(0))) {
            assertEquals(200, get(s.uri(), "healthz").statusCode(), "alive while loading");
            HttpResponse<String> notReady = get(s.uri(), "readyz");
            assertEquals(503, notReady.statusCode());
            assertEquals("5", notReady.headers().firstValue("Retry-After").orElse(null));
            assertError(503, json(s.uri(), TinyBundle.png(60, 40, 40), "q", 1), "model loading");
            release.countDown();
            s.awaitLoaded();
            assertEquals(200, get(s.uri(), "readyz").statusCode());
            assertEquals(200, json(s.uri(), TinyBundle.png(60, 40, 40), "q", 1).status());
        }
        try (ModelServer s = ModelServer.start(() -> VqaModel.load(tmp.resolve("missing"), Device.cpu()),
                ModelServer.Settings.defaults().withPort(0))) {
            java.io.IOException e = assertThrows(java.io.IOException.class, s::awaitLoaded);
            assertTrue(e.getMessage().contains("is not a model bundle"), e.getMessage());
            assertTrue(get(s.uri(), "readyz").body().contains("model failed to load"));
        }
        // the model is warmed up (one forward pass) before the server says ready: a model that cannot answer fails there
        try (ModelServer s = ModelServer.start(() -> {
            VqaModel m = VqaModel.load(bundle, Device.cpu());
            m.close();
            return m;
        }, ModelServer.Settings.defaults().withPort(0))) {
            java.io.IOException e = assertThrows(java.io.IOException.class, s::awaitLoaded);
            assertTrue(e.getMessage().contains("is closed"), e.getMessage());
            assertEquals(503, get(s.uri(), "readyz").statusCode());
        }
    }

    @Test
    void gracefulStopFinishesRequestsInFlightAndRefusesNewOnes() throws Exception {
        ModelServer s = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0).withBatching(8, 800));
        URI u = s.uri();
        CompletableFuture<Reply> inFlight = CompletableFuture.supplyAsync(() -> {
            try {
                return json(u, TinyBundle.png(70, 40, 40), "q", 1);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        Thread.sleep(300); // the request waits for its batch
        CompletableFuture<Void> stopping = CompletableFuture.runAsync(() -> s.stop(Duration.ofSeconds(10)));
        Thread.sleep(100);
        Reply late = json(u, TinyBundle.png(71, 40, 40), "q", 1);
        assertError(503, late, "shutting down");
        assertEquals(503, get(u, "readyz").statusCode());
        assertEquals(200, inFlight.get().status(), "the request in flight is answered");
        stopping.get();
        assertThrows(java.io.IOException.class, () -> get(u, "healthz"), "stopped");
    }
}
