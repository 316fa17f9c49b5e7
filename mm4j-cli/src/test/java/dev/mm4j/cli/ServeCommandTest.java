package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.serve.TinyIndex;
import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.Padding;
import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import dev.mm4j.inference.TinyBundle;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code mm4j serve} with an index, as a user runs it (its own JVM, stopped by SIGTERM), and its usage errors. */
class ServeCommandTest {
    @TempDir Path tmp;

    @Test
    void servesSearchOverAnIndexWithoutAVqaModel() throws Exception {
        Path bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path index = TinyIndex.build(tmp, bundle, 4);
        List<ImageIndex.Hit> want;
        try (Embedder e = Embedder.open(bundle, null, Device.cpu()); ImageIndex idx = ImageIndex.open(index)) {
            want = idx.search(e.texts(List.of("a sign that says STOP102"))[0], 3);
        }
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "-Djava.awt.headless=true", Main.class.getName(),
                "serve", "--index", index.toString(), "--port", "0", "--threads", "1").redirectErrorStream(true).start();
        StringBuffer log = new StringBuffer();
        CompletableFuture<URI> ready = new CompletableFuture<>();
        Thread reader = new Thread(() -> { // the server's output, to its end
            try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                    log.append(line).append('\n');
                    if (line.startsWith("ready: ")) {
                        ready.complete(URI.create(line.substring("ready: ".length()).trim()));
                    }
                }
            } catch (java.io.IOException e) {
                log.append(e).append('\n');
            }
            ready.complete(null);
        });
        reader.start();
        try {
            URI uri = ready.get(120, TimeUnit.SECONDS);
            assertNotNull(uri, log.toString());
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(uri.resolve("v1/search"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"text\": \"a sign that says STOP102\", \"k\": 3}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode hits = new ObjectMapper().readTree(r.body()).get("hits");
            assertEquals(3, hits.size());
            for (int i = 0; i < 3; i++) {
                assertEquals(want.get(i).path(), hits.get(i).get("path").asText());
                assertEquals(want.get(i).score(), hits.get(i).get("score").asDouble(), 1e-6);
            }
            p.toHandle().destroy(); // SIGTERM: a graceful stop (Process.destroy would also close its output)
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            reader.join(10_000);
            assertEquals(0, p.exitValue(), log.toString());
            assertTrue(log.toString().contains("stopped"), log.toString());
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void withNothingToServeItSaysWhatToGive() {
        StringWriter err = new StringWriter();
        int code = Main.commandLine().setErr(new PrintWriter(err)).execute("serve", "--port", "0");
        assertEquals(2, code, err.toString());
        assertTrue(err.toString().contains("nothing to serve: give --model DIR"), err.toString());
        err.getBuffer().setLength(0);
        assertEquals(2, Main.commandLine().setErr(new PrintWriter(err)).execute("serve", "--model", "m", "--embed-config", "c.yaml"));
        assertTrue(err.toString().contains("--embed-config is for --embed-model"), err.toString());
    }
}
