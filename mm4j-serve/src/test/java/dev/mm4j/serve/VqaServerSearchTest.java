package dev.mm4j.serve;

import static dev.mm4j.serve.VqaServerTest.assertError;
import static dev.mm4j.serve.VqaServerTest.multipart;
import static dev.mm4j.serve.VqaServerTest.post;
import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.TinyBundle;
import dev.mm4j.inference.VqaModel;
import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.Padding;
import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import dev.mm4j.serve.VqaServerTest.Reply;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code POST /v1/embed}, {@code POST /v1/search} and {@code GET /v1/images/{sha256}} against the library: the vectors
 * are {@link Embedder}'s, the hits {@link ImageIndex}'s, the images the indexed files' bytes; bad input gets JSON errors.
 */
class VqaServerSearchTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    static final int IMAGES = 8;

    @TempDir static Path tmp;
    static Path bundle;
    static Path index;
    static Embedder reference;
    static ImageIndex referenceIndex;
    static VqaModel model;
    static ImageSearch search;
    static ModelServer server;

    @BeforeAll
    static void start() throws Exception {
        bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        index = TinyIndex.build(tmp, bundle, IMAGES);
        reference = Embedder.open(bundle, null, Device.cpu()); // a classification bundle's encoders embed
        referenceIndex = ImageIndex.open(index);
        model = VqaModel.load(bundle, Device.cpu());
        search = ImageSearch.open(index, null, null, Device.cpu(), 1_000_000);
        server = ModelServer.start(model, search, ModelServer.Settings.defaults().withPort(0).withLimits(64, 30_000, 2_000_000));
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
        search.close();
        model.close();
        referenceIndex.close();
        reference.close();
    }

    /** A JSON body; a byte[] value is sent base64. */
    static Reply json(URI base, String path, Object... keyValues) throws Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            Object v = keyValues[i + 1];
            m.put((String) keyValues[i], v instanceof byte[] b ? Base64.getEncoder().encodeToString(b) : v);
        }
        return post(base, path, "application/json", JSON.writeValueAsBytes(m));
    }

    static HttpResponse<byte[]> get(URI base, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(base.resolve(path)).build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    static float[] floats(JsonNode array) {
        float[] v = new float[array.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) array.get(i).asDouble();
        }
        return v;
    }

    @Test
    void embedGivesTheEmbeddersVectors() throws Exception {
        byte[] img = TinyBundle.png(7, 120, 90);
        String text = "a red sign that says stop";
        float[] wantImage = reference.images(List.of(img), List.of("q"))[0];
        float[] wantText = reference.texts(List.of(text))[0];
        assertEquals(16, wantImage.length);
        for (Reply r : List.of(json(server.uri(), "v1/embed", "image", img, "text", text),
                multipart(server.uri(), "v1/embed", img, "text", text))) {
            assertEquals(200, r.status(), r.body().toString());
            assertEquals(16, r.body().get("dimension").asInt());
            assertTrue(r.body().get("model").asText().endsWith("/model"), r.body().get("model").asText());
            assertArrayEquals(wantImage, floats(r.body().get("image")), 1e-6f);
            assertArrayEquals(wantText, floats(r.body().get("text")), 1e-6f);
            double cos = 0;
            for (int i = 0; i < 16; i++) {
                cos += (double) wantImage[i] * wantText[i];
            }
            assertEquals(cos, r.body().get("similarity").asDouble(), 1e-6);
        }
        Reply textOnly = json(server.uri(), "v1/embed", "text", text);
        assertArrayEquals(wantText, floats(textOnly.body().get("text")), 1e-6f);
        assertNull(textOnly.body().get("image"));
        Reply imageOnly = multipart(server.uri(), "v1/embed", img);
        assertArrayEquals(wantImage, floats(imageOnly.body().get("image")), 1e-6f);
        assertNull(imageOnly.body().get("text"));
    }

    @Test
    void searchGivesTheIndexsHitsWithImagesAndThumbnails() throws Exception {
        String text = "STOP103";
        List<ImageIndex.Hit> want = referenceIndex.search(reference.texts(List.of(text))[0], 3);
        Reply r = json(server.uri(), "v1/search", "text", text, "k", 3);
        assertEquals(200, r.status(), r.body().toString());
        assertEquals("text", r.body().get("query").asText());
        assertEquals(IMAGES, r.body().get("search").get("images").asInt());
        JsonNode hits = r.body().get("hits");
        assertEquals(3, hits.size());
        for (int i = 0; i < 3; i++) {
            JsonNode h = hits.get(i);
            assertEquals(want.get(i).path(), h.get("path").asText());
            assertEquals(want.get(i).score(), h.get("score").asDouble(), 1e-6);
            assertEquals(want.get(i).sha256(), h.get("sha256").asText());
            assertEquals("/v1/images/" + want.get(i).sha256(), h.get("image_url").asText());
            // the image: the indexed file's bytes
            HttpResponse<byte[]> full = get(server.uri(), h.get("image_url").asText());
            assertEquals(200, full.statusCode());
            assertEquals("image/png", full.headers().firstValue("Content-Type").orElse(""));
            assertArrayEquals(Files.readAllBytes(Path.of(want.get(i).path())), full.body());
            HttpResponse<Void> head = HTTP.send(HttpRequest.newBuilder(server.uri().resolve(h.get("image_url").asText()))
                    .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.discarding());
            assertEquals(200, head.statusCode(), "HEAD as GET");
            // the thumbnail: a JPEG whose longer side is 160 (the images are 320 x 200)
            HttpResponse<byte[]> thumb = get(server.uri(), h.get("thumbnail_url").asText());
            assertEquals(200, thumb.statusCode());
            assertEquals("image/jpeg", thumb.headers().firstValue("Content-Type").orElse(""));
            BufferedImage t = ImageIO.read(new ByteArrayInputStream(thumb.body()));
            assertEquals(160, t.getWidth());
            assertEquals(100, t.getHeight());
        }
        // image -> image, multipart: the query image itself is the best hit, cosine 1; k defaults to 5
        byte[] query = Files.readAllBytes(tmp.resolve("images/img105.png"));
        List<ImageIndex.Hit> wantImage = referenceIndex.search(reference.images(List.of(query), List.of("q"))[0], 5);
        Reply byImage = multipart(server.uri(), "v1/search", query);
        assertEquals(200, byImage.status(), byImage.body().toString());
        assertEquals("image", byImage.body().get("query").asText());
        assertEquals(5, byImage.body().get("hits").size());
        for (int i = 0; i < 5; i++) {
            assertEquals(wantImage.get(i).path(), byImage.body().get("hits").get(i).get("path").asText());
            assertEquals(wantImage.get(i).score(), byImage.body().get("hits").get(i).get("score").asDouble(), 1e-6);
        }
        assertEquals(tmp.resolve("images/img105.png").toAbsolutePath().normalize().toString(), wantImage.get(0).path());
        assertEquals(1.0, byImage.body().get("hits").get(0).get("score").asDouble(), 1e-5);
        // k larger than the index: every image once
        assertEquals(IMAGES, json(server.uri(), "v1/search", "text", "stop", "k", 50).body().get("hits").size());
    }

    @Test
    void searchTakesCandidatesAndExactAsTheIndexDoes() throws Exception {
        String text = "OPEN104";
        float[] q = reference.texts(List.of(text))[0];
        List<ImageIndex.Hit> exact = referenceIndex.search(q, IMAGES, 1, true);
        List<ImageIndex.Hit> narrow = referenceIndex.search(q, 2, 2, false);
        Reply byExact = json(server.uri(), "v1/search", "text", text, "k", IMAGES, "exact", true);
        Reply byNarrow = json(server.uri(), "v1/search", "text", text, "k", 2, "candidates", 2);
        assertEquals(200, byExact.status(), byExact.body().toString());
        assertEquals(200, byNarrow.status(), byNarrow.body().toString());
        assertEquals(IMAGES, byExact.body().get("hits").size());
        for (int i = 0; i < IMAGES; i++) {
            assertEquals(exact.get(i).path(), byExact.body().get("hits").get(i).get("path").asText());
            assertEquals(exact.get(i).score(), byExact.body().get("hits").get(i).get("score").asDouble(), 1e-6);
        }
        for (int i = 0; i < 2; i++) {
            assertEquals(narrow.get(i).path(), byNarrow.body().get("hits").get(i).get("path").asText());
        }
        // multipart: the same fields as text
        Reply form = multipart(server.uri(), "v1/search", null, "text", text, "k", "3", "exact", "true");
        assertEquals(200, form.status(), form.body().toString());
        assertEquals(exact.get(0).path(), form.body().get("hits").get(0).get("path").asText());
        URI u = server.uri();
        assertError(400, json(u, "v1/search", "text", text, "candidates", 0), "candidates: must be");
        assertError(400, json(u, "v1/search", "text", text, "candidates", ImageIndex.MAX_K + 1), "candidates: must be");
        assertError(400, json(u, "v1/search", "text", text, "candidates", "many"), "candidates: must be an integer");
        assertError(400, json(u, "v1/search", "text", text, "exact", "yes"), "exact: must be true or false");
        assertError(400, multipart(u, "v1/search", null, "text", text, "exact", "maybe"), "exact: must be true or false");
    }

    @Test
    void badInputGetsJsonErrors() throws Exception {
        URI u = server.uri();
        byte[] img = TinyBundle.png(21, 64, 64);
        assertError(400, json(u, "v1/search", "k", 3), "give 'text' or 'image'");
        assertError(400, json(u, "v1/search", "text", "stop", "image", img), "one of them");
        assertError(400, json(u, "v1/search", "text", "stop", "k", 0), "k: must be");
        assertError(400, json(u, "v1/search", "text", "   "), "text: missing or empty");
        assertError(400, json(u, "v1/search", "image", java.util.Arrays.copyOf(img, 80)), "truncated");
        assertError(400, multipart(u, "v1/search", VqaServerTest.pngHeader(20000, 20000)), "over the limit");
        assertError(415, multipart(u, "v1/search", "not an image".getBytes()), "not a recognised image");
        assertError(400, post(u, "v1/search", "application/json", "{\"text\": ".getBytes()), "not valid JSON");
        assertError(400, post(u, "v1/search", "application/json", "[1]".getBytes()), "expected a JSON object");
        assertError(415, post(u, "v1/search", "text/plain", "stop".getBytes()), "Content-Type");
        assertError(400, json(u, "v1/embed"), "give 'image'");
        assertError(400, json(u, "v1/embed", "image", "%%%"), "base64");
        assertError(400, multipart(u, "v1/embed", java.util.Arrays.copyOf(img, 80), "text", "x"), "truncated");
        // methods and paths: JSON too
        assertError(405, getJson(u, "v1/search"), "use POST");
        assertEquals("POST", getRaw(u, "v1/embed").headers().firstValue("Allow").orElse(""));
        assertError(405, post(u, "v1/images/" + "0".repeat(64), "application/json", "{}".getBytes()), "use GET");
        // images: only those in the index, never a path
        String sha = referenceIndex.search(reference.texts(List.of("x"))[0], 1).get(0).sha256();
        assertError(400, getJson(u, "v1/images/" + sha + "?size=5"), "size: must be");
        assertError(400, getJson(u, "v1/images/" + sha + "?size=big"), "size: must be");
        assertError(404, getJson(u, "v1/images/" + "0".repeat(64)), "no indexed image");
        assertError(404, getJson(u, "v1/images/" + sha.toUpperCase()), "no indexed image");
        for (String evil : List.of("v1/images/..%2F..%2F..%2Fetc%2Fpasswd", "v1/images/%2Fetc%2Fpasswd",
                "v1/images/" + tmp.resolve("images/img100.png").toString().replace("/", "%2F"))) {
            HttpResponse<byte[]> r = get(u, evil);
            assertTrue(r.statusCode() == 404 || r.statusCode() == 400, evil + ": " + r.statusCode());
            assertEquals("application/json", r.headers().firstValue("Content-Type").orElse("").split(";")[0], evil);
        }
        assertEquals(200, json(u, "v1/search", "text", "still serving?").status());
    }

    @Test
    void anIndexedFileThatChangedIsNotServed() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("changing"));
        Path idx = TinyIndex.build(dir, bundle, 2);
        try (ImageSearch s = ImageSearch.open(idx, bundle, null, Device.cpu(), 1_000_000);
                ModelServer srv = ModelServer.start(null, s, ModelServer.Settings.defaults().withPort(0))) {
            Path file = dir.resolve("images/img100.png");
            String sha = ImageIndex.sha256(Files.readAllBytes(file));
            assertEquals(200, get(srv.uri(), "v1/images/" + sha).statusCode());
            Files.write(file, TinyBundle.png(999, 320, 200));
            assertError(404, getJson(srv.uri(), "v1/images/" + sha), "changed since it was indexed");
            Files.delete(file);
            assertError(404, getJson(srv.uri(), "v1/images/" + sha), "no longer readable");
            // a search-only server: no VQA model, so /v1/answer is not served
            assertError(404, json(srv.uri(), "v1/answer", "image", TinyBundle.png(1, 32, 32), "question", "q"), "--model");
            JsonNode ready = JSON.readTree(get(srv.uri(), "readyz").body());
            assertEquals(2, ready.get("search").get("images").asInt());
            assertNull(ready.get("model"));
        }
    }

    @Test
    void endpointsWithoutTheirModelAnswer404AndAnEmbedOnlyServerEmbeds() throws Exception {
        try (ModelServer vqaOnly = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0))) {
            assertError(404, json(vqaOnly.uri(), "v1/embed", "text", "x"), "--index DIR");
            assertError(404, json(vqaOnly.uri(), "v1/search", "text", "x"), "--index DIR");
            assertError(404, getJson(vqaOnly.uri(), "v1/images/" + "0".repeat(64)), "--index DIR");
        }
        try (ModelServer embedOnly = ModelServer.start(null, () -> ImageSearch.open(null, bundle, null, Device.cpu(), 1_000_000),
                ModelServer.Settings.defaults().withPort(0))) {
            embedOnly.awaitLoaded();
            Reply r = json(embedOnly.uri(), "v1/embed", "text", "open");
            assertEquals(200, r.status(), r.body().toString());
            assertArrayEquals(reference.texts(List.of("open"))[0], floats(r.body().get("text")), 1e-6f);
            assertError(404, json(embedOnly.uri(), "v1/search", "text", "x"), "--index DIR");
        }
    }

    @Test
    void metricsCountTheSearchRoutes() throws Exception {
        double searches = VqaServerHardeningTest.metric(server, "mm4j_search_latency_seconds_count");
        double embeds = VqaServerHardeningTest.metric(server, "mm4j_embed_latency_seconds_count");
        double notFound = VqaServerHardeningTest.metric(server, "mm4j_requests_total{status=\"404\"}");
        json(server.uri(), "v1/search", "text", "a");
        json(server.uri(), "v1/search", "text", "b");
        json(server.uri(), "v1/embed", "text", "c");
        get(server.uri(), "v1/images/" + "f".repeat(64));
        assertEquals(Math.max(searches, 0) + 2, VqaServerHardeningTest.metric(server, "mm4j_search_latency_seconds_count"));
        assertEquals(Math.max(embeds, 0) + 1, VqaServerHardeningTest.metric(server, "mm4j_embed_latency_seconds_count"));
        long deadline = System.nanoTime() + 5_000_000_000L; // the request log counts just after the response
        while (VqaServerHardeningTest.metric(server, "mm4j_requests_total{status=\"404\"}") < Math.max(notFound, 0) + 1
                && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(Math.max(notFound, 0) + 1, VqaServerHardeningTest.metric(server, "mm4j_requests_total{status=\"404\"}"));
    }

    private static Reply getJson(URI base, String path) throws Exception {
        HttpResponse<String> r = getRaw(base, path);
        return new Reply(r.statusCode(), JSON.readTree(r.body()), r);
    }

    private static HttpResponse<String> getRaw(URI base, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(base.resolve(path)).build(), HttpResponse.BodyHandlers.ofString());
    }
}
