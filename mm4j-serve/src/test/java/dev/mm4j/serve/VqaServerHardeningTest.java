package dev.mm4j.serve;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.TinyBundle;
import dev.mm4j.inference.VqaModel;
import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.Padding;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server from outside, with raw HTTP/1.1 over a socket (no client library smoothing anything over): malformed
 * multipart bodies, methods and paths outside the API, Jetty-level rejects, truncated images, what /metrics counts,
 * and slow clients that send half a request and wait.
 */
class VqaServerHardeningTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir static Path tmp;
    static VqaModel model;
    static ModelServer server;

    @BeforeAll
    static void start() throws Exception {
        model = VqaModel.load(TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC), Device.cpu(),
                new VqaModel.Options(64L << 20, 1_000_000));
        server = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0).withLimits(64, 30_000, 200_000));
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    /** A response as read off the socket. */
    record Raw(int status, Map<String, String> headers, String body) {
        JsonNode json() throws Exception {
            return JSON.readTree(body);
        }
    }

    /** Sends {@code head} (request line and headers, without the blank line) and {@code body}; reads the whole answer. */
    static Raw send(URI base, String head, byte[] body) throws Exception {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(base.getHost(), base.getPort()), 5000);
            s.setSoTimeout(20_000);
            String h = head + "\r\nHost: " + base.getHost() + ":" + base.getPort() + "\r\nConnection: close\r\n"
                    + (body == null ? "" : "Content-Length: " + body.length + "\r\n") + "\r\n";
            s.getOutputStream().write(h.getBytes(StandardCharsets.ISO_8859_1));
            if (body != null) {
                s.getOutputStream().write(body);
            }
            s.getOutputStream().flush();
            return answer(s);
        }
    }

    /** Reads the whole answer on {@code s}: status, headers (lower-case names), body (de-chunked). */
    static Raw answer(Socket s) throws Exception {
        String text = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int end = text.indexOf("\r\n\r\n");
        assertTrue(end > 0, "an answer: " + text);
        String[] lines = text.substring(0, end).split("\r\n");
        Map<String, String> headers = new LinkedHashMap<>();
        for (int i = 1; i < lines.length; i++) {
            int c = lines[i].indexOf(':');
            headers.put(lines[i].substring(0, c).trim().toLowerCase(Locale.ROOT), lines[i].substring(c + 1).trim());
        }
        String b = text.substring(end + 4);
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            b = dechunk(b);
        }
        return new Raw(Integer.parseInt(lines[0].split(" ")[1]), headers, b);
    }

    private static String dechunk(String b) {
        StringBuilder out = new StringBuilder();
        int pos = 0;
        while (true) {
            int eol = b.indexOf("\r\n", pos);
            int n = Integer.parseInt(b.substring(pos, eol).trim(), 16);
            if (n == 0) {
                return out.toString();
            }
            out.append(b, eol + 2, eol + 2 + n);
            pos = eol + 2 + n + 2;
        }
    }

    static void assertJsonError(int status, Raw r, String fragment) throws Exception {
        assertEquals(status, r.status(), r.toString());
        assertEquals("application/json", r.headers().getOrDefault("content-type", "").split(";")[0].trim(), r.toString());
        JsonNode j = r.json();
        assertEquals(status, j.get("status").asInt(), r.body());
        assertTrue(j.get("error").asText().contains(fragment), j.get("error").asText());
        assertFalse(r.body().contains("\tat ") || r.body().contains("<html"), r.body());
    }

    static byte[] multipartBody(String boundary, byte[] image, String question) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
                + "Content-Type: image/png\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        out.writeBytes(image);
        out.writeBytes(("\r\n--" + boundary + "\r\nContent-Disposition: form-data; name=\"question\"\r\n\r\n" + question
                + "\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return out.toByteArray();
    }

    static double metric(String series) throws Exception {
        String m = send(server.uri(), "GET /metrics HTTP/1.1", null).body();
        return m.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1)))
                .findFirst().orElse(0);
    }

    /** The counter may be written just after the response went out: wait (bounded) for it to reach {@code want}. */
    static void awaitMetric(String series, double want) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        double v = metric(series);
        while (v < want && System.nanoTime() < deadline) {
            Thread.sleep(20);
            v = metric(series);
        }
        assertEquals(want, v, series);
    }

    /** Sends {@code head} with a Content-Length of {@code declared} but only {@code body}, then closes its side (half-close). */
    static Raw sendCut(URI base, String head, byte[] body, int declared) throws Exception {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(base.getHost(), base.getPort()), 5000);
            s.setSoTimeout(20_000);
            String h = head + "\r\nHost: " + base.getHost() + ":" + base.getPort() + "\r\nConnection: close\r\nContent-Length: "
                    + declared + "\r\n\r\n";
            s.getOutputStream().write(h.getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().write(body);
            s.getOutputStream().flush();
            s.shutdownOutput();
            return answer(s);
        }
    }

    interface Requests {
        void run() throws Exception;
    }

    /** What the server logged (to stderr, slf4j-simple) while {@code requests} ran. */
    static String stderrOf(Requests requests) throws Exception {
        PrintStream err = System.err;
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        System.setErr(new PrintStream(log, true, StandardCharsets.UTF_8));
        try {
            requests.run();
        } finally {
            System.setErr(err);
        }
        return log.toString(StandardCharsets.UTF_8);
    }

    /** Bodies cut short by a client that goes away (what slow clients end as) are 400s with one log line at most, no stack traces. */
    @Test
    void bodiesEndingBeforeTheirLengthAre400WithOneLogLineAtMost() throws Exception {
        URI u = server.uri();
        byte[] good = multipartBody("b0undary", TinyBundle.png(3, 48, 48), "what?");
        byte[] json = ("{\"image\": \"" + java.util.Base64.getEncoder().encodeToString(TinyBundle.png(3, 48, 48))
                + "\", \"question\": \"what?\"}").getBytes(StandardCharsets.UTF_8);
        double before = metric("mm4j_requests_total{status=\"400\"}");
        String logged = stderrOf(() -> {
            for (int round = 0; round < 5; round++) {
                assertJsonError(400, sendCut(u, "POST /v1/answer HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b0undary",
                        Arrays.copyOf(good, good.length / 2), good.length), "multipart/form-data (Early EOF)");
                assertJsonError(400, sendCut(u, "POST /v1/answer HTTP/1.1\r\nContent-Type: application/json",
                        Arrays.copyOf(json, json.length / 2), json.length), "ended before its Content-Length");
            }
        });
        int sent = 10;
        assertFalse(logged.contains("\tat "), "no stack trace in the log:\n" + logged);
        long lines = logged.lines().filter(l -> !l.isBlank()).count();
        assertTrue(lines <= 1, sent + " cut-off requests logged " + lines + " lines:\n" + logged);
        awaitMetric("mm4j_requests_total{status=\"400\"}", before + sent);
    }

    @Test
    void malformedMultipartIs400WithOneLogLineAtMostAndCounted() throws Exception {
        URI u = server.uri();
        byte[] img = TinyBundle.png(3, 48, 48);
        byte[] good = multipartBody("b0undary", img, "what?");
        byte[] garbage = new byte[3000];
        new java.util.Random(1).nextBytes(garbage);
        Map<String, byte[]> cases = new LinkedHashMap<>();
        cases.put("multipart/form-data", good); // no boundary
        cases.put("multipart/form-data; boundary=other", good); // wrong boundary
        cases.put("multipart/form-data; boundary=b0undary", Arrays.copyOf(good, good.length / 2)); // cut off
        cases.put("multipart/form-data; boundary=b0undary ", garbage); // garbage
        assertEquals(200, send(u, "POST /v1/answer HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b0undary", good).status(),
                "the well-formed body is answered");
        double before = metric("mm4j_requests_total{status=\"400\"}");
        String logged = stderrOf(() -> {
            for (int round = 0; round < 5; round++) {
                for (Map.Entry<String, byte[]> c : cases.entrySet()) {
                    Raw r = send(u, "POST /v1/answer HTTP/1.1\r\nContent-Type: " + c.getKey(), c.getValue());
                    assertJsonError(400, r, "multipart/form-data");
                }
            }
        });
        int sent = 5 * cases.size();
        long lines = logged.lines().filter(l -> !l.isBlank()).count();
        assertTrue(lines <= 1, sent + " malformed requests logged " + lines + " lines:\n" + logged);
        awaitMetric("mm4j_requests_total{status=\"400\"}", before + sent);
    }

    @Test
    void methodsAndPathsOutsideTheApiGetJsonErrorsAndAreCounted() throws Exception {
        URI u = server.uri();
        double before405 = metric("mm4j_requests_total{status=\"405\"}");
        double before404 = metric("mm4j_requests_total{status=\"404\"}");
        double before400 = metric("mm4j_requests_total{status=\"400\"}");
        List<String> methods = List.of("GET", "PUT", "DELETE", "PATCH", "OPTIONS");
        for (String m : methods) {
            Raw r = send(u, m + " /v1/answer HTTP/1.1", m.equals("GET") || m.equals("OPTIONS") ? null : new byte[0]);
            assertJsonError(405, r, m + " /v1/answer");
            assertEquals("POST", r.headers().get("allow"), m);
        }
        Raw head = send(u, "HEAD /v1/answer HTTP/1.1", null);
        assertEquals(405, head.status());
        assertEquals("POST", head.headers().get("allow"));
        assertJsonError(404, send(u, "GET /nope HTTP/1.1", null), "no such endpoint: GET /nope");
        assertJsonError(404, send(u, "POST /v2/answer HTTP/1.1\r\nContent-Type: application/json", "{}".getBytes()),
                "no such endpoint: POST /v2/answer");
        assertJsonError(400, send(u, "GET /../../etc/passwd HTTP/1.1", null), "");
        awaitMetric("mm4j_requests_total{status=\"405\"}", before405 + methods.size() + 1);
        awaitMetric("mm4j_requests_total{status=\"404\"}", before404 + 2);
        awaitMetric("mm4j_requests_total{status=\"400\"}", before400 + 1);
    }

    @Test
    void truncatedJpegIs400() throws Exception {
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(160, 120, java.awt.image.BufferedImage.TYPE_INT_RGB);
        java.util.Random r = new java.util.Random(2);
        for (int y = 0; y < 120; y++) {
            for (int x = 0; x < 160; x++) {
                img.setRGB(x, y, (x * 3 / 2) << 16 | (y * 2) << 8 | r.nextInt(64));
            }
        }
        ByteArrayOutputStream jpeg = new ByteArrayOutputStream();
        javax.imageio.ImageIO.write(img, "jpeg", jpeg);
        byte[] whole = jpeg.toByteArray();
        byte[] body = multipartBody("b", whole, "what?");
        assertEquals(200, send(server.uri(), "POST /v1/answer HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b", body).status());
        byte[] cut = multipartBody("b", Arrays.copyOf(whole, whole.length / 3), "what?");
        assertJsonError(400, send(server.uri(), "POST /v1/answer HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b", cut),
                "image file is truncated");
    }

    @Test
    @Timeout(60)
    void slowClientsAreCutOffAndNormalRequestsAreStillAnswered() throws Exception {
        byte[] img = TinyBundle.png(9, 48, 48);
        byte[] good = multipartBody("b", img, "what?");
        try (ModelServer s = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0)
                .withConnections(24, 1500))) {
            URI u = s.uri();
            List<Socket> slow = new ArrayList<>();
            try {
                for (int i = 0; i < 30; i++) { // more than the limit: half the headers, or all headers and half the body
                    Socket c = new Socket();
                    c.connect(new InetSocketAddress(u.getHost(), u.getPort()), 5000);
                    String head = "POST /v1/answer HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n";
                    c.getOutputStream().write((i % 2 == 0 ? head.substring(0, 30)
                            : head + "Content-Length: " + good.length + "\r\n\r\n" + new String(good, 0, 100, StandardCharsets.ISO_8859_1))
                            .getBytes(StandardCharsets.ISO_8859_1));
                    c.getOutputStream().flush();
                    slow.add(c);
                }
                Thread.sleep(300);
                assertTrue(metric(s, "mm4j_connections_open") <= 24 + 1, "at most the limit are accepted (+1: this scrape)");
                long t0 = System.nanoTime();
                for (int i = 0; i < 3; i++) { // answered: at the latest once the idle timeout has freed slots
                    assertEquals(200, send(u, "POST /v1/answer HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b", good).status());
                }
                assertTrue(System.nanoTime() - t0 < 20_000_000_000L, "answered well before the slow clients would give up");
                // every slow client was cut off by the idle timeout: the server closed its end
                for (Socket c : slow) {
                    c.setSoTimeout(10_000);
                    InputStream in = c.getInputStream();
                    byte[] buf = new byte[4096];
                    int n;
                    do {
                        n = in.read(buf);
                    } while (n > 0);
                    assertEquals(-1, n, "closed by the server");
                }
            } finally {
                for (Socket c : slow) {
                    c.close();
                }
            }
        }
    }

    static double metric(ModelServer s, String series) throws Exception {
        String m = send(s.uri(), "GET /metrics HTTP/1.1", null).body();
        return m.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1)))
                .findFirst().orElse(-1);
    }
}
