package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.HfFlavaCheckpoints;
import dev.mm4j.checkpoint.HfFlavaCheckpoints.Form;
import dev.mm4j.checkpoint.HostTensor;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.TorchCheckpoints;
import dev.mm4j.inference.Embedder;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every command that takes an embedding model ({@code classify}, {@code index}, {@code search} through the index's
 * model, {@code serve --embed-model}) takes a folder as transformers' {@code save_pretrained} writes it, in each form
 * the HF loader tests use: {@code model.safetensors}, sharded safetensors, {@code pytorch_model.bin}. The weights are
 * the tiny reference model's under HF's names; its image embeddings must be PyTorch's ({@code contrastive.json}),
 * and each command's numbers those of the embeddings. The VQA commands refuse such a folder in one line.
 */
class HuggingFaceFoldersTest {
    static final List<String> LABELS = List.of("red", "blue", "green");
    static final String VOCAB = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nphoto\nof\nred\nblue\ngreen\nsign\n";
    static final float LOGIT_SCALE = 3.0f;

    @TempDir Path tmp;

    @Test
    void classifyIndexSearchAndServeTakeATransformersFolderInEveryForm() throws Exception {
        Path fixtures = Path.of(getClass().getResource("/fixtures/flava-tiny/expected.json").toURI()).getParent();
        JsonNode expected = new ObjectMapper().readTree(fixtures.resolve("expected.json").toFile());
        JsonNode reference = new ObjectMapper().readTree(fixtures.resolve("contrastive.json").toFile())
                .get("eval").get("image_embeddings").get("data");
        Map<String, HostTensor> hf;
        try (StateDict tm = TorchCheckpoints.read(fixtures.resolve("flava_classification.pt"))) {
            hf = new LinkedHashMap<>(HfFlavaCheckpoints.hfTensors(tm));
            hf.put("flava.logit_scale", HostTensor.ofFloats(new float[] {LOGIT_SCALE}));
            Path images = Files.createDirectories(tmp.resolve("images"));
            Color[] colours = {Color.RED, Color.BLUE, Color.GREEN};
            for (int i = 0; i < 3; i++) {
                png(colours[i], images.resolve(LABELS.get(i) + ".png"));
            }
            for (Form form : List.of(Form.SAFETENSORS, Form.SAFETENSORS_2_SHARDS, Form.BIN)) {
                Path dir = HfFlavaCheckpoints.writeFolder(tmp.resolve("hf-" + form), form, hf,
                        HfFlavaCheckpoints.hfConfig(expected.get("config")));
                Files.writeString(dir.resolve("vocab.txt"), VOCAB);
                check(form, dir, images, expected, reference);
            }
        }
    }

    private void check(Form form, Path dir, Path images, JsonNode expected, JsonNode reference) throws Exception {
        Path red = images.resolve("red.png");
        List<String> prompts = LABELS.stream().map(l -> "a photo of " + l).toList();
        float[] redVector;
        float[][] promptVectors;
        float[] query;
        Map<String, float[]> imageVectors = new LinkedHashMap<>();
        try (Embedder e = Embedder.open(dir, null, Device.cpu())) {
            // the folder's model is the reference model: its image embeddings are PyTorch's
            float[][] v = e.pixels(fixturePixels(expected));
            for (int b = 0; b < 2; b++) {
                double norm = 0;
                for (int i = 0; i < 24; i++) {
                    norm += Math.pow(reference.get(b * 24 + i).asDouble(), 2);
                }
                for (int i = 0; i < 24; i++) {
                    assertEquals(reference.get(b * 24 + i).asDouble() / Math.sqrt(norm), v[b][i], 1e-5, form + " row " + b + " [" + i + "]");
                }
            }
            assertEquals(Math.exp(LOGIT_SCALE), e.temperatureScale(), 1e-4, form + ": the folder's logit_scale");
            redVector = e.images(List.of(Files.readAllBytes(red)), List.of(red.toString()))[0];
            promptVectors = e.texts(prompts);
            query = e.texts(List.of("a red sign"))[0];
            for (String l : LABELS) {
                Path p = images.resolve(l + ".png");
                imageVectors.put(p.toAbsolutePath().toString(), e.images(List.of(Files.readAllBytes(p)), List.of(p.toString()))[0]);
            }
        }

        // classify: softmax over exp(logit_scale) x cosine, printed as percentages
        Run classify = run("classify", "--model", dir.toString(), "--labels", String.join(",", LABELS), "--template", "a photo of {}",
                red.toString());
        assertEquals(0, classify.rc, form + ": " + classify.err);
        double[] p = new double[3];
        double sum = 0;
        for (int i = 0; i < 3; i++) {
            p[i] = Math.exp(Math.exp(LOGIT_SCALE) * Embedder.cosine(redVector, promptVectors[i]));
            sum += p[i];
        }
        for (int i = 0; i < 3; i++) {
            Matcher m = Pattern.compile("(?m)^  " + LABELS.get(i) + " +([0-9.]+)%$").matcher(classify.out);
            assertTrue(m.find(), form + ": " + classify.out);
            assertEquals(100 * p[i] / sum, Double.parseDouble(m.group(1)), 0.006, form + " " + LABELS.get(i) + ": " + classify.out);
        }

        // index with the folder, then search: the index's model is the folder, opened again by search
        Path index = tmp.resolve("index-" + form);
        Run indexed = run("index", "--model", dir.toString(), "--images", images.toString(), "--out", index.toString());
        assertEquals(0, indexed.rc, form + ": " + indexed.err);
        assertTrue(indexed.out.contains("3 added"), indexed.out);
        Run search = run("search", "--index", index.toString(), "a red sign", "-k", "3", "--exact");
        assertEquals(0, search.rc, form + ": " + search.err);
        List<String> lines = search.out.lines().toList();
        assertEquals(3, lines.size(), search.out);
        for (String line : lines) {
            String[] f = line.trim().split("\\s+", 2);
            assertEquals(Embedder.cosine(query, imageVectors.get(f[1])), Double.parseDouble(f[0]), 6e-5, form + ": " + line);
        }

        // serve --embed-model: POST /v1/embed gives the same vector
        float[] served = serveEmbed(dir, "a red sign");
        assertArrayEquals(query, served, 1e-5f, form + ": /v1/embed");

        // the VQA commands need a fine-tuned bundle, and say so in one line
        Run predict = run("predict", "--model", dir.toString(), "--image", red.toString(), "--question", "what colour?");
        assertEquals(1, predict.rc, predict.err);
        assertTrue(predict.err.startsWith("error: " + dir + " is not a model bundle"), predict.err);
        assertEquals(2, predict.err.lines().count(), predict.err); // the message and the MM4J_DEBUG hint
    }

    /** The fixture's two input images, CHW floats. */
    static List<float[]> fixturePixels(JsonNode expected) {
        JsonNode img = expected.get("inputs").get("image").get("data");
        int per = img.size() / 2;
        List<float[]> pixels = new ArrayList<>();
        for (int b = 0; b < 2; b++) {
            float[] chw = new float[per];
            for (int i = 0; i < per; i++) {
                chw[i] = (float) img.get(b * per + i).asDouble();
            }
            pixels.add(chw);
        }
        return pixels;
    }

    /** Starts {@code serve --embed-model dir} in its own JVM, embeds {@code text}, stops it. */
    static float[] serveEmbed(Path dir, String text) throws Exception {
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "-Djava.awt.headless=true", "-Dai.djl.offline=true",
                Main.class.getName(), "serve", "--embed-model", dir.toString(), "--port", "0", "--threads", "1")
                .redirectErrorStream(true).start();
        StringBuffer log = new StringBuffer();
        CompletableFuture<URI> ready = new CompletableFuture<>();
        Thread reader = new Thread(() -> {
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
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(uri.resolve("v1/embed"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(new ObjectMapper().createObjectNode().put("text", text).toString())).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode v = new ObjectMapper().readTree(r.body()).get("text");
            float[] out = new float[v.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = (float) v.get(i).asDouble();
            }
            p.toHandle().destroy();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            reader.join(10_000);
            return out;
        } finally {
            p.destroyForcibly();
        }
    }

    static void png(Color colour, Path file) throws Exception {
        BufferedImage img = new BufferedImage(40, 30, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(colour);
        g.fillRect(0, 0, 40, 30);
        g.setColor(Color.WHITE);
        g.fillRect(10, 10, 20, 10);
        g.dispose();
        ImageIO.write(img, "png", file.toFile());
    }

    record Run(int rc, String out, String err) {}

    static Run run(String... args) {
        PrintStream stdout = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        try {
            System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
            int rc = Main.commandLine().setErr(new PrintWriter(err, true)).execute(args);
            return new Run(rc, buf.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setOut(stdout);
        }
    }
}
