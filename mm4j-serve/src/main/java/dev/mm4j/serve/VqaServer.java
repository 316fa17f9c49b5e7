package dev.mm4j.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.Javalin;
import io.javalin.config.SizeUnit;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.javalin.http.HttpResponseException;
import io.javalin.http.UploadedFile;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.AbstractConnector;
import org.eclipse.jetty.server.ConnectionLimit;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.handler.ErrorHandler;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP service around a {@link VqaModel} (Javalin): {@code POST /v1/answer} (multipart or JSON),
 * the web page at {@code /}, {@code /healthz}, {@code /readyz} and Prometheus {@code /metrics}; requests
 * are batched dynamically and bad input gets a JSON error with its status, never a stack trace.
 *
 * <pre>{@code
 * try (VqaServer s = VqaServer.start(() -> VqaModel.load(dir), VqaServer.Settings.defaults())) {
 *     s.awaitLoaded();
 *     s.runUntilSignalled(); // SIGTERM / SIGINT: in-flight requests finish, new ones get 503
 * }
 * }</pre>
 */
public final class VqaServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VqaServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Service settings.
     *
     * @param host interface to listen on
     * @param port port; 0 picks a free one
     * @param maxBatch most requests answered in one forward pass (1 = no batching)
     * @param maxWaitMs how long the first request of a batch waits for others
     * @param maxQueue requests waiting beyond this get 503 with Retry-After
     * @param requestTimeoutMs a request not answered by then gets 504
     * @param maxBodyBytes larger request bodies get 413
     * @param maxK largest {@code k} accepted
     * @param maxConnections connections held open at once; beyond it new ones wait to be accepted (slow clients
     *     cannot exhaust the server's threads: a request holds a thread only while its connection is open)
     * @param idleTimeoutMs a connection that sends nothing for this long (half a request header or body, an idle
     *     keep-alive) is closed
     */
    public record Settings(String host, int port, int maxBatch, long maxWaitMs, int maxQueue, long requestTimeoutMs,
            long maxBodyBytes, int maxK, int maxConnections, long idleTimeoutMs) {
        /** Default connection limit and idle timeout. */
        public static final int MAX_CONNECTIONS = 200;
        public static final long IDLE_TIMEOUT_MS = 10_000;

        /** With the default connection limit and idle timeout. */
        public Settings(String host, int port, int maxBatch, long maxWaitMs, int maxQueue, long requestTimeoutMs,
                long maxBodyBytes, int maxK) {
            this(host, port, maxBatch, maxWaitMs, maxQueue, requestTimeoutMs, maxBodyBytes, maxK, MAX_CONNECTIONS, IDLE_TIMEOUT_MS);
        }

        /**
         * 127.0.0.1:8080, batches of up to 8 gathered for 10 ms, 64 queued, 60 s timeout, 10 MB bodies, 200 connections,
         * 10 s idle timeout.
         */
        public static Settings defaults() {
            return new Settings("127.0.0.1", 8080, 8, 10, 64, 60_000, 10L << 20, 100);
        }

        public Settings withPort(int p) {
            return new Settings(host, p, maxBatch, maxWaitMs, maxQueue, requestTimeoutMs, maxBodyBytes, maxK, maxConnections,
                    idleTimeoutMs);
        }

        public Settings withBatching(int batch, long waitMs) {
            return new Settings(host, port, batch, waitMs, maxQueue, requestTimeoutMs, maxBodyBytes, maxK, maxConnections,
                    idleTimeoutMs);
        }

        public Settings withLimits(int queue, long timeoutMs, long bodyBytes) {
            return new Settings(host, port, maxBatch, maxWaitMs, queue, timeoutMs, bodyBytes, maxK, maxConnections, idleTimeoutMs);
        }

        public Settings withConnections(int connections, long idleMs) {
            if (connections < 1 || idleMs < 1) {
                throw new IllegalArgumentException("max connections and idle timeout must be >= 1, got " + connections
                        + " and " + idleMs + " ms");
            }
            return new Settings(host, port, maxBatch, maxWaitMs, maxQueue, requestTimeoutMs, maxBodyBytes, maxK, connections, idleMs);
        }
    }

    /** An error answered as {@code {"error": message, "status": status}}. */
    private static final class HttpError extends RuntimeException {
        final int status;
        final String retryAfter;

        HttpError(int status, String message) {
            this(status, message, null);
        }

        HttpError(int status, String message, String retryAfter) {
            super(message, null, false, false);
            this.status = status;
            this.retryAfter = retryAfter;
        }
    }

    private final Settings settings;
    private final boolean ownsModel;
    private final Javalin app;
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Timer latency;
    private final DistributionSummary batchSizes;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final CountDownLatch loaded = new CountDownLatch(1);
    private final byte[] page;
    private volatile boolean draining;
    private volatile VqaModel model;
    private volatile Batcher batcher;
    private volatile Throwable loadError;
    private volatile ConnectionLimit connectionLimit;
    private volatile Server jetty;
    private final AtomicLong lastClientErrorLog = new AtomicLong(System.nanoTime() - CLIENT_ERROR_LOG_EVERY_NANOS);
    private final AtomicInteger clientErrorsNotLogged = new AtomicInteger();
    /** Client errors (a malformed body) are logged at most once per minute: any client could otherwise fill the disk. */
    private static final long CLIENT_ERROR_LOG_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);
    /** Methods answered 405 on {@code /v1/answer}. */
    private static final List<HandlerType> NOT_ALLOWED = List.of(HandlerType.GET, HandlerType.HEAD, HandlerType.PUT,
            HandlerType.PATCH, HandlerType.DELETE, HandlerType.OPTIONS);

    private VqaServer(Settings settings, boolean ownsModel) {
        this.settings = settings;
        this.ownsModel = ownsModel;
        this.page = resource("/dev/mm4j/serve/index.html");
        this.latency = Timer.builder("mm4j.request.latency").description("POST /v1/answer latency")
                .publishPercentileHistogram().register(registry);
        this.batchSizes = DistributionSummary.builder("mm4j.batch.size").description("requests per forward pass")
                .serviceLevelObjectives(1, 2, 4, 8, 16, 32, 64).register(registry);
        Gauge.builder("mm4j.queue.depth", () -> batcher == null ? 0 : batcher.depth())
                .description("requests waiting for a forward pass").register(registry);
        Gauge.builder("mm4j.image.cache.bytes", () -> model == null ? 0 : model.imageCacheBytes())
                .description("bytes of image-encoder outputs cached").register(registry);
        Gauge.builder("mm4j.connections.open", () -> connectionLimit == null ? 0 : connectionLimit.getConnections())
                .description("HTTP connections open (at most --max-connections)").register(registry);
        for (String r : List.of("hit", "miss")) {
            cacheCounter(r);
        }
        JsonErrorHandler jsonErrors = new JsonErrorHandler();
        this.app = Javalin.create(cfg -> {
            cfg.showJavalinBanner = false;
            cfg.startupWatcherEnabled = false;
            cfg.http.maxRequestSize = settings.maxBodyBytes();
            cfg.jetty.multipartConfig.maxTotalRequestSize(settings.maxBodyBytes(), SizeUnit.BYTES);
            cfg.jetty.multipartConfig.maxFileSize(settings.maxBodyBytes(), SizeUnit.BYTES);
            cfg.jetty.multipartConfig.maxInMemoryFileSize((int) Math.min(Integer.MAX_VALUE, settings.maxBodyBytes()),
                    SizeUnit.BYTES);
            cfg.jetty.modifyServer(server -> {
                jetty = server;
                connectionLimit = new ConnectionLimit(settings.maxConnections(), server);
                connectionLimit.setIdleTimeout(settings.idleTimeoutMs());
                server.addBean(connectionLimit);
                server.setErrorHandler(jsonErrors); // Jetty-level rejects (bad URI, bad header): JSON, not an HTML page
                server.setRequestLog((req, resp) -> countResponse(resp.getCommittedMetaData() != null
                        ? resp.getCommittedMetaData().getStatus() : resp.getStatus()));
            });
            cfg.jetty.modifyServletContextHandler(h -> h.setErrorHandler(jsonErrors));
        });
        app.get("/", ctx -> ctx.contentType("text/html; charset=utf-8").result(page));
        app.get("/healthz", ctx -> json(ctx, 200, Map.of("status", "ok")));
        app.get("/readyz", this::readyz);
        app.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(registry.scrape()));
        app.post("/v1/answer", this::answer);
        for (HandlerType t : NOT_ALLOWED) {
            app.addHttpHandler(t, "/v1/answer", ctx -> {
                ctx.header("Allow", "POST");
                error(ctx, 405, "method not allowed: " + ctx.method() + " /v1/answer (use POST)", null);
            });
        }
        app.exception(Exception.class, (e, ctx) -> {
            if (e instanceof HttpResponseException h) {
                error(ctx, h.getStatus(), h.getMessage(), null);
            } else {
                log.error("{} {} failed", ctx.method(), ctx.path(), e);
                error(ctx, 500, "internal error (" + e.getClass().getSimpleName() + "); see the server log", null);
            }
        });
        app.error(404, ctx -> {
            if (!ctx.path().equals("/v1/answer")) {
                error(ctx, 404, "no such endpoint: " + ctx.method() + " " + ctx.path(), null);
            }
        });
    }

    /** Starts listening now and loads the model in the background ({@code /readyz} says when); the server owns and closes the model. */
    public static VqaServer start(Callable<VqaModel> loader, Settings settings) {
        VqaServer s = new VqaServer(settings, true);
        s.listen();
        Thread t = new Thread(() -> {
            try {
                s.ready(loader.call());
            } catch (Throwable e) {
                s.loadError = e;
                log.error("loading the model failed: {}", e.getMessage());
            } finally {
                s.loaded.countDown();
            }
        }, "mm4j-model-loader");
        t.setDaemon(true);
        t.start();
        return s;
    }

    /** Serves an already loaded model; the caller keeps owning (and closes) it. */
    public static VqaServer start(VqaModel model, Settings settings) {
        VqaServer s = new VqaServer(settings, false);
        s.ready(model);
        s.loaded.countDown();
        s.listen();
        return s;
    }

    private void listen() {
        app.start(settings.host(), settings.port());
        for (Connector c : jetty.getConnectors()) {
            if (c instanceof AbstractConnector ac) {
                ac.setIdleTimeout(settings.idleTimeoutMs()); // Jetty's default is 30 s
            }
        }
    }

    private void countResponse(int status) {
        Counter.builder("mm4j.requests").description("HTTP responses by status (every endpoint, Jetty-level rejects included)")
                .tag("status", Integer.toString(status)).register(registry).increment();
    }

    /** One line for a client's malformed request, at most once a minute (with how many were not logged). */
    private void logClientError(String what) {
        long now = System.nanoTime();
        long last = lastClientErrorLog.get();
        if (now - last >= CLIENT_ERROR_LOG_EVERY_NANOS && lastClientErrorLog.compareAndSet(last, now)) {
            int more = clientErrorsNotLogged.getAndSet(0);
            log.warn("bad request: {}{}", what, more > 0 ? " (and " + more + " more client errors since the last such line)" : "");
        } else {
            clientErrorsNotLogged.incrementAndGet();
        }
    }

    /** Jetty's own error responses (requests that never reach the routes: bad URI, bad headers) as JSON errors. */
    private static final class JsonErrorHandler extends ErrorHandler {
        @Override
        protected void generateAcceptableResponse(Request baseRequest, HttpServletRequest request, HttpServletResponse response,
                int code, String message) throws IOException {
            baseRequest.setHandled(true);
            response.setContentType("application/json");
            response.getOutputStream().write(errorJson(code, message));
        }

        @Override
        public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
            fields.put(HttpHeader.CONTENT_TYPE, "application/json");
            return ByteBuffer.wrap(errorJson(status, reason));
        }

        private static byte[] errorJson(int status, String reason) {
            Map<String, Object> body = new LinkedHashMap<>();
            String text = HttpStatus.getMessage(status);
            body.put("error", reason == null || reason.isBlank() || reason.equals(text) ? text : text + ": " + reason);
            body.put("status", status);
            try {
                return JSON.writeValueAsBytes(body);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    private void ready(VqaModel m) {
        this.batcher = new Batcher(m, settings.maxBatch(), settings.maxWaitMs(), settings.maxQueue(), batchSizes::record);
        this.model = m;
    }

    /** Waits for the model; rethrows a loading failure as an IOException. */
    public void awaitLoaded() throws IOException, InterruptedException {
        loaded.await();
        if (loadError != null) {
            throw loadError instanceof IOException io ? io : new IOException(loadError.getMessage(), loadError);
        }
    }

    /** The port listened on (the real one when the settings said 0). */
    public int port() {
        return app.port();
    }

    /** http://host:port/ */
    public URI uri() {
        return URI.create("http://" + settings.host() + ":" + port() + "/");
    }

    /** Whether requests are answered now: model loaded and not shutting down. */
    public boolean ready() {
        return model != null && !draining;
    }

    private void readyz(Context ctx) {
        if (ready()) {
            json(ctx, 200, Map.of("status", "ready", "model", model.name()));
        } else {
            String why = draining ? "shutting down" : loadError != null ? "model failed to load: " + loadError.getMessage()
                    : "model loading";
            error(ctx, 503, why, draining || loadError != null ? null : "5");
        }
    }

    private void answer(Context ctx) {
        long t0 = System.nanoTime();
        inFlight.incrementAndGet();
        try {
            json(ctx, 200, answerBody(ctx, t0));
        } catch (HttpError e) {
            error(ctx, e.status, e.getMessage(), e.retryAfter);
        } catch (InvalidInputException e) {
            error(ctx, e.kind() == InvalidInputException.Kind.NOT_AN_IMAGE ? 415 : 400, e.getMessage(), null);
        } catch (RuntimeException e) {
            log.error("POST /v1/answer failed", e);
            error(ctx, 500, "internal error (" + e.getClass().getSimpleName() + "); see the server log", null);
        } finally {
            inFlight.decrementAndGet();
            latency.record(System.nanoTime() - t0, TimeUnit.NANOSECONDS);
        }
    }

    private Map<String, Object> answerBody(Context ctx, long t0) {
        if (draining) {
            throw new HttpError(503, "server is shutting down", "10");
        }
        VqaModel m = model;
        if (m == null) {
            throw new HttpError(503, loadError != null ? "model failed to load" : "model loading; try again shortly", "5");
        }
        long length = ctx.req().getContentLengthLong();
        if (length > settings.maxBodyBytes()) {
            throw new HttpError(413, "request body of " + length + " bytes is over the limit of " + settings.maxBodyBytes());
        }
        String type = ctx.contentType() == null ? "" : ctx.contentType().toLowerCase(Locale.ROOT);
        byte[] image;
        String question;
        String kText;
        if (type.startsWith("multipart/form-data")) {
            if (!type.contains("boundary=")) {
                logClientError("multipart without a boundary");
                throw new HttpError(400, "body: not valid multipart/form-data (the Content-Type has no boundary parameter)");
            }
            UploadedFile file;
            try {
                file = ctx.uploadedFile("image");
                question = ctx.formParam("question");
                kText = ctx.formParam("k");
            } catch (Exception e) { // Jetty's parser throws (undeclared) IOExceptions for a malformed body
                HttpError h = multipartError(e);
                if (h.status == 400) {
                    logClientError(h.getMessage());
                }
                throw h;
            }
            if (file == null) {
                throw new HttpError(400, "image: missing (multipart file field 'image')");
            }
            try (InputStream in = file.content()) {
                image = in.readAllBytes();
            } catch (IOException e) {
                throw new HttpError(400, "image: cannot read the upload: " + e.getMessage());
            }
        } else if (type.startsWith("application/json")) {
            byte[] raw = ctx.bodyAsBytes();
            if (raw.length > settings.maxBodyBytes()) {
                throw new HttpError(413, "request body over the limit of " + settings.maxBodyBytes() + " bytes");
            }
            JsonNode n;
            try {
                n = JSON.readTree(raw);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new HttpError(400, "body: not valid JSON (" + e.getOriginalMessage() + ")");
            } catch (IOException e) {
                throw new HttpError(400, "body: cannot read (" + e.getMessage() + ")");
            }
            if (n == null || !n.isObject()) {
                throw new HttpError(400, "body: expected a JSON object {\"image\": base64, \"question\": ..., \"k\": ...}");
            }
            JsonNode img = n.get("image");
            if (img == null || !img.isTextual() || img.asText().isEmpty()) {
                throw new HttpError(400, "image: missing (base64 string field 'image')");
            }
            String b64 = img.asText();
            if (b64.startsWith("data:") && b64.contains(",")) {
                b64 = b64.substring(b64.indexOf(',') + 1);
            }
            try {
                image = Base64.getDecoder().decode(b64.replaceAll("\\s", ""));
            } catch (IllegalArgumentException e) {
                throw new HttpError(400, "image: not valid base64 (" + e.getMessage() + ")");
            }
            question = n.hasNonNull("question") ? n.get("question").asText() : null;
            kText = n.hasNonNull("k") ? n.get("k").asText() : null;
        } else {
            throw new HttpError(415, "Content-Type must be multipart/form-data or application/json, got '"
                    + (type.isEmpty() ? "none" : type) + "'");
        }
        int k = parseK(kText);
        VqaModel.Query q = m.prepare(image, question);
        long tPrepared = System.nanoTime();
        CompletableFuture<VqaModel.Result> future;
        try {
            future = batcher.submit(q, k);
        } catch (RejectedExecutionException e) {
            throw new HttpError(503, draining ? "server is shutting down" : "busy: " + e.getMessage() + "; retry later", "1");
        }
        VqaModel.Result r;
        long left = settings.requestTimeoutMs() - TimeUnit.NANOSECONDS.toMillis(tPrepared - t0);
        try {
            r = future.get(Math.max(1, left), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            future.cancel(false);
            throw new HttpError(504, "not answered within the request timeout of " + settings.requestTimeoutMs() + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HttpError(503, "interrupted", "1");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
        }
        long tDone = System.nanoTime();
        cacheCounter(r.imageCached() ? "hit" : "miss").increment();
        Map<String, Object> out = new LinkedHashMap<>();
        List<Map<String, Object>> answers = new ArrayList<>();
        for (Answer a : r.answers()) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("answer", a.answer());
            e.put("probability", a.probability());
            answers.add(e);
        }
        out.put("answers", answers);
        out.put("model", m.name());
        out.put("question_truncated", q.truncated());
        out.put("question_tokens", Map.of("given", q.questionTokens(), "used", q.usedTokens(), "max", m.maxQuestionTokens()));
        out.put("image_cache", r.imageCached() ? "hit" : "miss");
        out.put("batch_size", r.batchSize());
        Map<String, Object> timing = new LinkedHashMap<>();
        timing.put("prepare", ms(tPrepared - t0));
        timing.put("queue", Math.max(0, round(ms(tDone - tPrepared) - r.forwardMs())));
        timing.put("forward", round(r.forwardMs()));
        timing.put("total", ms(tDone - t0));
        out.put("timing_ms", timing);
        return out;
    }

    private static HttpError multipartError(Exception e) {
        String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof TimeoutException) { // the client stopped sending: the connection's idle timeout
                return new HttpError(408, "body: the rest of the request did not arrive in time (" + c.getMessage() + ")");
            }
            String cm = String.valueOf(c.getMessage()).toLowerCase(Locale.ROOT);
            if (cm.contains("exceed") || cm.contains("too large") || cm.contains("max")) {
                return new HttpError(413, "request body over the size limit: " + c.getMessage());
            }
        }
        return new HttpError(400, "body: not valid multipart/form-data (" + msg + ")");
    }

    private int parseK(String s) {
        if (s == null || s.isBlank()) {
            return 5;
        }
        try {
            int k = Integer.parseInt(s.trim());
            if (k >= 1 && k <= settings.maxK()) {
                return k;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new HttpError(400, "k: must be an integer from 1 to " + settings.maxK() + ", got '" + s + "'");
    }

    private Counter cacheCounter(String result) {
        return Counter.builder("mm4j.image.cache.requests").description("answered requests by image-cache result")
                .tag("result", result).register(registry);
    }

    private static double ms(long nanos) {
        return round(nanos / 1e6);
    }

    private static double round(double ms) {
        return Math.round(ms * 100) / 100.0;
    }

    private static void json(Context ctx, int status, Object body) {
        try {
            ctx.status(status).contentType("application/json").result(JSON.writeValueAsBytes(body));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void error(Context ctx, int status, String message, String retryAfter) {
        if (retryAfter != null) {
            ctx.header("Retry-After", retryAfter);
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("error", message);
        body.put("status", status);
        json(ctx, status, body);
    }

    private static byte[] resource(String name) {
        try (InputStream in = VqaServer.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException(name + " missing from the jar");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Serves until SIGTERM or SIGINT, then stops gracefully ({@link #stop}) and returns. */
    public void runUntilSignalled() throws InterruptedException {
        CountDownLatch signalled = new CountDownLatch(1);
        for (String name : List.of("TERM", "INT")) {
            sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> signalled.countDown());
        }
        signalled.await();
        log.info("signal received: finishing requests in flight");
        stop(Duration.ofSeconds(30));
    }

    /**
     * Graceful stop: new requests get 503 at once, requests in flight finish (up to {@code grace}), then the
     * HTTP server stops and, when the server loaded it, the model is closed.
     */
    public void stop(Duration grace) {
        if (!stopping.compareAndSet(false, true)) {
            return;
        }
        draining = true;
        long deadline = System.nanoTime() + grace.toNanos();
        while (inFlight.get() > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (batcher != null) {
            batcher.close();
        }
        app.stop();
        if (ownsModel && model != null) {
            model.close();
        }
    }

    @Override
    public void close() {
        stop(Duration.ofSeconds(30));
    }
}
