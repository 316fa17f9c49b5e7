package dev.mm4j.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Padding;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Precision;
import dev.mm4j.inference.VqaModel;
import dev.mm4j.serve.ModelServer;
import dev.mm4j.util.FileTrees;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import javax.imageio.ImageIO;

/**
 * The serving benchmark: writes a bundle with random weights (FLAVA full size unless a config says
 * otherwise), serves it on 127.0.0.1 and drives {@code POST /v1/answer} over HTTP with 1, 4, 16, ...
 * concurrent clients, with batching off and on (every image new: image-cache misses), then one client
 * asking about new images vs. an image already seen (cache miss vs. hit), and one client while 100 others
 * have sent half a request and wait. Every row is run quiet and then contended (one spinning thread per core
 * beside the server); the table prints both side by side. With several precisions, every row once per precision,
 * on the same bundle.
 */
public final class ServeBench {

    /**
     * @param clients concurrency levels
     * @param requests requests per (mode, concurrency) row
     * @param cacheRequests requests per cache row
     * @param contended whether each row also runs beside a competing load
     * @param precisions the matrix products' precisions, each with its own rows
     */
    public record Options(FlavaConfig config, List<Integer> clients, int requests, int maxBatch, long maxWaitMs,
            int cacheRequests, boolean contended, List<Precision> precisions) {}

    private record Row(Precision precision, String mode, int clients, int requests, double seconds, double[] latMs, double meanBatch,
            double meanForwardMs, int errors) {}

    /**
     * A competing CPU load while it is open: one thread per core spinning in this JVM (as another job on the
     * machine would), so that the contended figure shows what libtorch's threads do when the cores are not theirs.
     */
    private static final class Competition implements AutoCloseable {
        private volatile boolean stop;
        private final List<Thread> threads = new ArrayList<>();

        Competition(int n) {
            for (int i = 0; i < n; i++) {
                Thread t = new Thread(() -> {
                    long x = 0;
                    while (!stop) {
                        x += System.nanoTime() % 7;
                    }
                    if (x == 42) {
                        System.out.print("");
                    }
                }, "mm4j-bench-competitor-" + i);
                t.setDaemon(true);
                t.start();
                threads.add(t);
            }
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            for (Thread t : threads) {
                t.join();
            }
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] QUESTIONS = {"what does the sign say?", "what colour is the text?",
        "what is written on the board in large letters?", "which word is at the top?", "what brand is this?"};

    private final Options o;
    private final PrintStream out;
    private final Random random = new Random(7);

    public ServeBench(Options options, PrintStream out) {
        this.o = options;
        this.out = out;
    }

    public void run(Device device, int threads) throws Exception {
        Path dir = Files.createTempDirectory("mm4j-bench-serve");
        try {
            long t0 = System.nanoTime();
            writeRandomBundle(dir, o.config());
            out.printf("bundle with random weights: %s (%d MB, %.1f s); libtorch %d threads, %d cores%n", dir,
                    Files.size(dir.resolve(ModelBundle.WEIGHTS)) >> 20, (System.nanoTime() - t0) / 1e9, threads,
                    Runtime.getRuntime().availableProcessors());
            int cores = Runtime.getRuntime().availableProcessors();
            out.printf("OMP_WAIT_POLICY=%s; %s%n", System.getenv().getOrDefault("OMP_WAIT_POLICY", "(unset: libgomp spins)"),
                    o.contended() ? "each row quiet, then contended (" + cores + " spinning threads beside the server)"
                            : "quiet rows only");
            List<Row> quiet = new ArrayList<>();
            List<Row> contended = new ArrayList<>();
            for (Precision p : o.precisions()) {
                try (VqaModel model = VqaModel.load(dir, device, VqaModel.Options.defaults(), p.code())) {
                    // what serve's warm-up spares the first request: a first forward pass against the next one
                    double first = model.warmUp();
                    out.printf(" %s: warm-up (one question, uncached) %.3f s, then %.3f s%n", p.code(), first,
                            model.warmUp());
                    quiet.addAll(rows(model, false));
                    if (o.contended()) {
                        try (Competition c = new Competition(cores)) {
                            contended.addAll(rows(model, true));
                        }
                    }
                }
            }
            out.println();
            out.println(header());
            for (int i = 0; i < quiet.size(); i++) {
                out.println(format(quiet.get(i), o.contended() ? contended.get(i) : null));
            }
            for (String line : speedups(quiet)) {
                out.println(line);
            }
        } finally {
            FileTrees.delete(dir);
        }
    }

    private List<Row> rows(VqaModel model, boolean contended) throws Exception {
        String tag = " " + model.precision().code() + (contended ? " contended" : " quiet");
        List<Row> rows = new ArrayList<>();
        for (boolean batching : new boolean[] {false, true}) {
            ModelServer.Settings s = ModelServer.Settings.defaults().withPort(0)
                    .withBatching(batching ? o.maxBatch() : 1, batching ? o.maxWaitMs() : 0)
                    .withLimits(1024, 600_000, 10L << 20);
            try (ModelServer server = ModelServer.start(model, s)) {
                HttpClient http = client();
                drive(http, server.uri(), List.of(body(image(-1), 0)), 1, 2); // warm-up
                for (int c : o.clients()) {
                    List<byte[]> bodies = new ArrayList<>();
                    for (int i = 0; i < o.requests(); i++) {
                        bodies.add(body(image(random.nextInt()), i));
                    }
                    rows.add(row(model.precision(), "batching " + (batching ? "on (max " + o.maxBatch() + ")" : "off"), c,
                            drive(http, server.uri(), bodies, c, o.requests())));
                    out.println(tag + ": " + format(rows.get(rows.size() - 1)));
                }
                if (batching) {
                    List<byte[]> misses = new ArrayList<>();
                    List<byte[]> hits = new ArrayList<>();
                    byte[] seen = image(-2);
                    drive(http, server.uri(), List.of(body(seen, 0)), 1, 1); // now cached
                    for (int i = 0; i < o.cacheRequests(); i++) {
                        misses.add(body(image(random.nextInt()), i));
                        hits.add(body(seen, i));
                    }
                    rows.add(row(model.precision(), "image cache miss", 1, drive(http, server.uri(), misses, 1, o.cacheRequests())));
                    out.println(tag + ": " + format(rows.get(rows.size() - 1)));
                    rows.add(row(model.precision(), "image cache hit", 1, drive(http, server.uri(), hits, 1, o.cacheRequests())));
                    out.println(tag + ": " + format(rows.get(rows.size() - 1)));
                    List<byte[]> fresh = new ArrayList<>();
                    for (int i = 0; i < o.cacheRequests(); i++) {
                        fresh.add(body(image(random.nextInt()), i));
                    }
                    List<java.net.Socket> slow = halfSentRequests(server.uri(), SLOW_CLIENTS);
                    try {
                        rows.add(row(model.precision(), SLOW_CLIENTS + " slow clients hang", 1, drive(http, server.uri(), fresh, 1, o.cacheRequests())));
                    } finally {
                        for (java.net.Socket c : slow) {
                            c.close();
                        }
                    }
                    out.println(tag + ": " + format(rows.get(rows.size() - 1)));
                }
            }
        }
        return rows;
    }

    /** Connections that send half a request and wait, beside the measured client (below the connection limit). */
    private static final int SLOW_CLIENTS = 100;

    /** {@code n} connections to {@code base}: half send half a header, half a whole header and half a body; then wait. */
    private static List<java.net.Socket> halfSentRequests(URI base, int n) throws IOException {
        List<java.net.Socket> out = new ArrayList<>();
        String head = "POST /v1/answer HTTP/1.1\r\nHost: " + base.getHost() + "\r\nContent-Type: application/json\r\n";
        for (int i = 0; i < n; i++) {
            java.net.Socket c = new java.net.Socket(base.getHost(), base.getPort());
            String half = i % 2 == 0 ? head.substring(0, head.length() / 2)
                    : head + "Content-Length: 1000\r\n\r\n{\"image\": \"iVBORw0KGgo";
            c.getOutputStream().write(half.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            c.getOutputStream().flush();
            out.add(c);
        }
        return out;
    }

    /** A bundle of {@code config} with random weights and answers {@code answer_0..N-1}, dynamic padding. */
    public static void writeRandomBundle(Path dir, FlavaConfig config) throws IOException {
        FlavaConfig c = config.copy();
        c.maskTextPaddingInMultimodal = true;
        Engine.getInstance().setRandomSeed(1);
        StringBuilder answers = new StringBuilder();
        for (int i = 0; i < c.numClasses; i++) {
            answers.append("answer_").append(i).append('\n');
        }
        ModelBundle.Info info = new ModelBundle.Info();
        info.padding = Padding.DYNAMIC;
        info.maxLength = Math.min(512, c.maxPositionEmbeddings);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            FlavaForClassification model = FlavaForClassification.create(c, m);
            ModelBundle.write(dir, model, AnswerVocab.fromText(answers.toString(), "random answers"), info, null);
        }
    }

    private record Sample(double latMs, int batch, double forwardMs, boolean ok) {}

    private static HttpClient client() {
        return HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10))
                .executor(Executors.newCachedThreadPool()).build();
    }

    private record Run(double seconds, List<Sample> samples) {}

    /** {@code n} requests (bodies taken in turn) from {@code clients} threads; wall time and per-request samples. */
    private static Run drive(HttpClient http, URI base, List<byte[]> bodies, int clients, int n) throws Exception {
        AtomicInteger next = new AtomicInteger();
        List<Sample> samples = java.util.Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        long t0 = System.nanoTime();
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                fs.add(pool.submit(() -> {
                    for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) {
                        HttpRequest req = HttpRequest.newBuilder(base.resolve("v1/answer"))
                                .header("Content-Type", "application/json")
                                .POST(HttpRequest.BodyPublishers.ofByteArray(bodies.get(i % bodies.size()))).build();
                        long s = System.nanoTime();
                        HttpResponse<byte[]> r = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
                        double ms = (System.nanoTime() - s) / 1e6;
                        JsonNode j = JSON.readTree(r.body());
                        samples.add(new Sample(ms, j.path("batch_size").asInt(0), j.path("timing_ms").path("forward").asDouble(0),
                                r.statusCode() == 200));
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        return new Run((System.nanoTime() - t0) / 1e9, samples);
    }

    private static Row row(Precision precision, String mode, int clients, Run r) {
        double[] lat = r.samples().stream().mapToDouble(Sample::latMs).sorted().toArray();
        double batch = r.samples().stream().filter(Sample::ok).mapToInt(Sample::batch).average().orElse(0);
        double fwd = r.samples().stream().filter(Sample::ok).mapToDouble(Sample::forwardMs).average().orElse(0);
        int errors = (int) r.samples().stream().filter(s -> !s.ok()).count();
        return new Row(precision, mode, clients, lat.length, r.seconds(), lat, batch, fwd, errors);
    }

    private static String header() {
        return String.format("%-9s %-22s %7s %8s %17s %17s %17s %12s %16s %6s", "precision", "mode", "clients", "requests",
                "req/s quiet|cont.", "p50 ms quiet|cont.", "p95 ms quiet|cont.", "batch q|c", "forward ms q|c", "errors");
    }

    /** A quiet row beside its contended twin ({@code c} null: not run, shown as -). */
    private static String format(Row q, Row c) {
        return String.format("%-9s %-22s %7d %8d %8.2f|%-8s %8.0f|%-8s %8.0f|%-8s %5.2f|%-6s %7.0f|%-8s %6d", q.precision().code(),
                q.mode(), q.clients(), q.requests(), q.requests() / q.seconds(), c == null ? "-" : fmt("%.2f", c.requests() / c.seconds()),
                pct(q.latMs(), 0.50), c == null ? "-" : fmt("%.0f", pct(c.latMs(), 0.50)), pct(q.latMs(), 0.95),
                c == null ? "-" : fmt("%.0f", pct(c.latMs(), 0.95)), q.meanBatch(), c == null ? "-" : fmt("%.2f", c.meanBatch()),
                q.meanForwardMs(), c == null ? "-" : fmt("%.0f", c.meanForwardMs()), q.errors() + (c == null ? 0 : c.errors()));
    }

    private static String fmt(String f, double v) {
        return String.format(f, v);
    }

    /**
     * For every precision after the first: its req/s and p50 against the first precision's in each (mode, clients)
     * row both have, e.g. "bf16 vs fp32, batching on (max 8), 16 clients: 1.62x req/s, p50 0.61x".
     */
    static List<String> speedups(List<Row> quiet) {
        List<String> lines = new ArrayList<>();
        if (quiet.isEmpty()) {
            return lines;
        }
        Precision base = quiet.get(0).precision();
        for (Row r : quiet) {
            if (r.precision() == base) {
                continue;
            }
            for (Row b : quiet) {
                if (b.precision() == base && b.mode().equals(r.mode()) && b.clients() == r.clients()) {
                    lines.add(String.format("%s vs %s, %s, %d client%s: %.2fx req/s, p50 %.2fx", r.precision().code(),
                            base.code(), r.mode(), r.clients(), r.clients() == 1 ? "" : "s",
                            (r.requests() / r.seconds()) / (b.requests() / b.seconds()), pct(r.latMs(), 0.5) / pct(b.latMs(), 0.5)));
                    break;
                }
            }
        }
        return lines;
    }

    private static String format(Row r) {
        return String.format("%-22s %7d %8d %8.2f %9.0f %9.0f %9.0f %10.2f %12.0f %6d", r.mode(), r.clients(), r.requests(),
                r.requests() / r.seconds(), pct(r.latMs(), 0.50), pct(r.latMs(), 0.95), pct(r.latMs(), 0.99),
                r.meanBatch(), r.meanForwardMs(), r.errors());
    }

    /** Nearest-rank percentile of sorted values. */
    static double pct(double[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** A JSON request body: base64 image and one of a few questions. */
    private static byte[] body(byte[] png, int i) throws IOException {
        return JSON.writeValueAsBytes(java.util.Map.of("image", Base64.getEncoder().encodeToString(png),
                "question", QUESTIONS[i % QUESTIONS.length], "k", 5));
    }

    /** A 320x240 PNG: coloured background, a word; {@code seed} makes it unique. */
    static byte[] image(int seed) throws IOException {
        Random r = new Random(seed);
        BufferedImage img = new BufferedImage(320, 240, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(new Color(r.nextInt(0xFFFFFF)));
        g.fillRect(0, 0, 320, 240);
        g.setColor(new Color(r.nextInt(0xFFFFFF)));
        g.fillRect(r.nextInt(200), r.nextInt(150), 40 + r.nextInt(80), 30 + r.nextInt(60));
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 36));
        g.drawString("word" + Integer.toHexString(seed), 20 + r.nextInt(40), 120 + r.nextInt(60));
        g.dispose();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ImageIO.write(img, "png", bytes);
        return bytes.toByteArray();
    }

}
