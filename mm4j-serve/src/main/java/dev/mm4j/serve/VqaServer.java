package dev.mm4j.serve;

import dev.mm4j.inference.Answer;
import dev.mm4j.inference.InvalidInputException;
import dev.mm4j.inference.VqaModel;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
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
import java.nio.charset.StandardCharsets;
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
import java.util.NoSuchElementException;
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
 * The HTTP service around a {@link VqaModel} and/or an {@link ImageSearch} (Javalin): {@code POST /v1/answer}
 * (multipart or JSON; batched dynamically), {@code POST /v1/embed}, {@code POST /v1/search} and
 * {@code GET /v1/images/{sha256}} (the indexed images and their thumbnails), the web page at {@code /},
 * {@code /healthz}, {@code /readyz} and Prometheus {@code /metrics}; bad input gets a JSON error with its status,
 * never a stack trace. An endpoint whose model the server was not given answers 404.
 *
 * <pre>{@code
 * try (VqaServer s = VqaServer.start(() -> VqaModel.load(dir), VqaServer.Settings.defaults())) { // or start(vqa, search, settings)
 *     s.awaitLoaded();
 *     s.runUntilSignalled(); // SIGTERM / SIGINT: in-flight requests finish, new ones get 503
 * }
 * }</pre>
 */
public final class VqaServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VqaServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Request bodies: one JSON value, nothing after it. */
    private static final com.fasterxml.jackson.databind.ObjectReader STRICT_JSON =
            JSON.reader().with(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

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
        public Settings {
            if (maxK < 1 || maxK > ImageIndex.MAX_K) {
                throw new IllegalArgumentException("max k must be from 1 to " + ImageIndex.MAX_K + ", got " + maxK);
            }
        }

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
    private final boolean answers;
    private final boolean searches;
    private final Javalin app;
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Timer latency;
    private final Timer embedLatency;
    private final Timer searchLatency;
    private final DistributionSummary batchSizes;
    private final DistributionSummary embedBatchSizes;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final CountDownLatch loaded = new CountDownLatch(1);
    private final byte[] page;
    private volatile boolean draining;
    private volatile VqaModel model;
    private volatile ImageSearch search;
    private volatile Batcher batcher;
    private volatile EmbedBatcher embedBatcher;
    private volatile Throwable loadError;
    private volatile ConnectionLimit connectionLimit;
    private volatile Server jetty;
    private final AtomicLong lastClientErrorLog = new AtomicLong(System.nanoTime() - CLIENT_ERROR_LOG_EVERY_NANOS);
    private final AtomicInteger clientErrorsNotLogged = new AtomicInteger();
    private final AtomicLong lastIndexLog = new AtomicLong(System.nanoTime() - CLIENT_ERROR_LOG_EVERY_NANOS);
    private final AtomicInteger indexErrorsNotLogged = new AtomicInteger();
    /** Client errors (a malformed body) are logged at most once per minute: any client could otherwise fill the disk. */
    private static final long CLIENT_ERROR_LOG_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);
    /** The API's routes and the one method each takes; the others get 405. */
    private static final Map<String, HandlerType> API = Map.of("/v1/answer", HandlerType.POST, "/v1/embed", HandlerType.POST,
            "/v1/search", HandlerType.POST, "/v1/images/{sha256}", HandlerType.GET);
    /** Request attribute: a route answered with its own JSON error (the 404 handler leaves it). */
    private static final String ERROR_SENT = "mm4j.error.sent";
    /** Thumbnail size (longer side) in search hits' {@code thumbnail_url}. */
    static final int THUMBNAIL = 160;

    private VqaServer(Settings settings, boolean ownsModel, boolean answers, boolean searches) {
        this.settings = settings;
        this.ownsModel = ownsModel;
        this.answers = answers;
        this.searches = searches;
        // the page shows the tabs of the endpoints served
        String html = new String(resource("/dev/mm4j/serve/index.html"), StandardCharsets.UTF_8)
                .replace("<body>", "<body data-answer=\"" + answers + "\" data-search=\"" + searches + "\">");
        if (!answers) { // search only: the header says what is served
            html = html.replace("<span id=\"model\">visual question answering</span>", "<span id=\"model\">image search</span>")
                    .replace("<title>Multimodal4J — ask about an image</title>", "<title>Multimodal4J — image search</title>");
        }
        this.page = html.getBytes(StandardCharsets.UTF_8);
        this.latency = Timer.builder("mm4j.request.latency").description("POST /v1/answer latency")
                .publishPercentileHistogram().register(registry);
        this.embedLatency = Timer.builder("mm4j.embed.latency").description("POST /v1/embed latency")
                .publishPercentileHistogram().register(registry);
        this.searchLatency = Timer.builder("mm4j.search.latency").description("POST /v1/search latency (embedding the query included)")
                .publishPercentileHistogram().register(registry);
        this.batchSizes = DistributionSummary.builder("mm4j.batch.size").description("requests per forward pass")
                .serviceLevelObjectives(1, 2, 4, 8, 16, 32, 64).register(registry);
        this.embedBatchSizes = DistributionSummary.builder("mm4j.embed.batch.size")
                .description("texts and images per embedding batch (/v1/embed, /v1/search)")
                .serviceLevelObjectives(1, 2, 4, 8, 16, 32, 64).register(registry);
        Gauge.builder("mm4j.embed.queue.depth", () -> embedBatcher == null ? 0 : embedBatcher.depth())
                .description("texts and images waiting to be embedded").register(registry);
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
        app.post("/v1/answer", ctx -> handle(ctx, latency, this::answerBody));
        app.post("/v1/embed", ctx -> handle(ctx, embedLatency, this::embedBody));
        app.post("/v1/search", ctx -> handle(ctx, searchLatency, this::searchBody));
        app.get("/v1/images/{sha256}", this::picture);
        app.head("/v1/images/{sha256}", this::picture); // the headers GET would send: type and length
        API.forEach((path, allowed) -> {
            for (HandlerType t : List.of(HandlerType.GET, HandlerType.HEAD, HandlerType.POST, HandlerType.PUT,
                    HandlerType.PATCH, HandlerType.DELETE, HandlerType.OPTIONS)) {
                if (t != allowed && !(t == HandlerType.HEAD && allowed == HandlerType.GET)) {
                    app.addHttpHandler(t, path, ctx -> {
                        ctx.header("Allow", allowed.name());
                        error(ctx, 405, "method not allowed: " + ctx.method() + " " + ctx.path() + " (use " + allowed + ")", null);
                    });
                }
            }
        });
        app.exception(Exception.class, (e, ctx) -> {
            if (e instanceof HttpResponseException h) {
                error(ctx, h.getStatus(), h.getMessage(), null);
            } else {
                failed(ctx, e);
            }
        });
        app.error(404, ctx -> {
            if (ctx.attribute(ERROR_SENT) == null) { // a route's own 404 (an image not in the index) stands
                HandlerType allowed = apiMethod(ctx.path());
                if (allowed != null) { // TRACE, CONNECT, methods Javalin does not know
                    ctx.header("Allow", allowed.name());
                    error(ctx, 405, "method not allowed: " + ctx.req().getMethod() + " " + ctx.path() + " (use " + allowed + ")", null);
                } else {
                    error(ctx, 404, "no such endpoint: " + ctx.req().getMethod() + " " + ctx.path(), null);
                }
            }
        });
    }

    /** The one method an API path takes, or null for a path outside the API. */
    private static HandlerType apiMethod(String path) {
        for (Map.Entry<String, HandlerType> e : API.entrySet()) {
            String p = e.getKey();
            if (p.endsWith("{sha256}") ? path.startsWith(p.substring(0, p.indexOf('{'))) && path.length() > p.indexOf('{')
                    && path.indexOf('/', p.indexOf('{')) < 0 : path.equals(p)) {
                return e.getValue();
            }
        }
        return null;
    }

    /** Starts listening now and loads the model in the background ({@code /readyz} says when); the server owns and closes the model. */
    public static VqaServer start(Callable<VqaModel> loader, Settings settings) {
        return start(loader, null, settings);
    }

    /**
     * Starts listening now and loads, in the background, the VQA model ({@code /v1/answer}) and the search
     * ({@code /v1/embed}; {@code /v1/search} and {@code /v1/images} when it has an index); either loader may be null
     * (its endpoints then answer 404), not both. The server owns and closes what they load.
     */
    public static VqaServer start(Callable<VqaModel> loader, Callable<ImageSearch> searchLoader, Settings settings) {
        if (loader == null && searchLoader == null) {
            throw new IllegalArgumentException("nothing to serve: give a VQA model, a search, or both");
        }
        VqaServer s = new VqaServer(settings, true, loader != null, searchLoader != null);
        s.listen();
        Thread t = new Thread(() -> {
            try {
                if (searchLoader != null) {
                    s.searchReady(searchLoader.call());
                }
                if (loader != null) {
                    s.ready(loader.call());
                }
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
        return start(model, null, settings);
    }

    /** Serves an already loaded model and/or search (either may be null, not both); the caller keeps owning them. */
    public static VqaServer start(VqaModel model, ImageSearch search, Settings settings) {
        if (model == null && search == null) {
            throw new IllegalArgumentException("nothing to serve: give a VQA model, a search, or both");
        }
        VqaServer s = new VqaServer(settings, false, model != null, search != null);
        if (model != null) {
            s.ready(model);
        }
        if (search != null) {
            s.searchReady(search);
        }
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

    /**
     * An exception out of a route: a body that ended early (the client closed the connection, or stopped sending for
     * the idle timeout) is the client's error, 400 / 408 with one rate-limited log line; anything else is ours, 500
     * with its stack trace in the log.
     */
    private void failed(Context ctx, Exception e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof java.util.concurrent.TimeoutException) {
                logClientError("request body stopped arriving (idle timeout)");
                error(ctx, 408, "body: stopped arriving for the idle timeout", null);
                return;
            }
            if (c instanceof org.eclipse.jetty.io.EofException) {
                logClientError("request body ended early (" + c.getMessage() + ")");
                error(ctx, 400, "body: ended before its Content-Length (the client closed the connection)", null);
                return;
            }
        }
        log.error("{} {} failed", ctx.method(), ctx.path(), e);
        error(ctx, 500, "internal error (" + e.getClass().getSimpleName() + "); see the server log", null);
    }

    /** 503 while the index folder is gone; one log line a minute at most. */
    private void indexUnavailable(Context ctx, ImageIndex.UnavailableException e) {
        long now = System.nanoTime();
        long last = lastIndexLog.get();
        if (now - last >= CLIENT_ERROR_LOG_EVERY_NANOS && lastIndexLog.compareAndSet(last, now)) {
            int more = indexErrorsNotLogged.getAndSet(0);
            log.warn("{}{}", e.getMessage(), more > 0 ? " (and " + more + " more requests since the last such line)" : "");
        } else {
            indexErrorsNotLogged.incrementAndGet();
        }
        error(ctx, 503, e.getMessage(), "10");
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

    private void searchReady(ImageSearch se) {
        this.embedBatcher = new EmbedBatcher(se, settings.maxBatch(), settings.maxWaitMs(), settings.maxQueue(),
                embedBatchSizes::record);
        this.search = se;
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

    /** Whether requests are answered now: models loaded and not shutting down. */
    public boolean ready() {
        return loaded.getCount() == 0 && loadError == null && !draining;
    }

    private void readyz(Context ctx) throws IOException {
        ImageSearch se = search;
        if (ready() && se != null && !se.available()) {
            try {
                se.size(); // the reason
            } catch (ImageIndex.UnavailableException e) {
                indexUnavailable(ctx, e);
                return;
            }
        }
        if (ready()) {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("status", "ready");
            if (answers) {
                body.put("model", model.name());
            }
            if (searches) {
                body.put("search", searchInfo(search));
            }
            json(ctx, 200, body);
        } else {
            String why = draining ? "shutting down" : loadError != null ? "model failed to load: " + loadError.getMessage()
                    : "model loading";
            error(ctx, 503, why, draining || loadError != null ? null : "5");
        }
    }

    /** What an endpoint answers (200, JSON), or an {@link HttpError} / {@link InvalidInputException} to refuse. */
    @FunctionalInterface
    private interface Endpoint {
        Map<String, Object> answer(Context ctx, long t0) throws IOException;
    }

    /** Runs an API endpoint: counted in flight (graceful stop waits for it), timed, its refusals as JSON errors. */
    private void handle(Context ctx, Timer timer, Endpoint endpoint) {
        long t0 = System.nanoTime();
        inFlight.incrementAndGet();
        try {
            json(ctx, 200, endpoint.answer(ctx, t0));
        } catch (HttpError e) {
            error(ctx, e.status, e.getMessage(), e.retryAfter);
        } catch (InvalidInputException e) {
            error(ctx, e.kind() == InvalidInputException.Kind.NOT_AN_IMAGE ? 415 : 400, e.getMessage(), null);
        } catch (ImageIndex.UnavailableException e) {
            indexUnavailable(ctx, e);
        } catch (IOException | RuntimeException e) {
            failed(ctx, e);
        } finally {
            inFlight.decrementAndGet();
            timer.record(System.nanoTime() - t0, TimeUnit.NANOSECONDS);
        }
    }

    /** 503 while shutting down, loading or after a failed load; 404 when this server was not given the endpoint's model. */
    private void checkServing(boolean served, String option) {
        if (draining) {
            throw new HttpError(503, "server is shutting down", "10");
        }
        if (loaded.getCount() > 0) {
            throw new HttpError(503, "model loading; try again shortly", "5");
        }
        if (loadError != null) {
            throw new HttpError(503, "model failed to load", "5");
        }
        if (!served) {
            throw new HttpError(404, "not served here: start mm4j serve with " + option);
        }
    }

    private Map<String, Object> answerBody(Context ctx, long t0) {
        checkServing(answers, "--model DIR");
        VqaModel m = model;
        Fields f = fields(ctx, "{\"image\": base64, \"question\": ..., \"k\": ...}", "question", "k");
        byte[] image = f.image();
        if (image == null) {
            throw new HttpError(400, "image: missing (" + f.imageField() + ")");
        }
        String question = f.values().get("question");
        String kText = f.values().get("k");
        int k = parseK(kText);
        VqaModel.Query q = m.prepare(image, question);
        long tPrepared = System.nanoTime();
        VqaModel.Result r = await(queued(() -> batcher.submit(q, k)), t0);
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

    /** Queues work on a batcher; a full queue (or a server shutting down) is 503 with Retry-After. */
    private <T> CompletableFuture<T> queued(java.util.function.Supplier<CompletableFuture<T>> submit) {
        try {
            return submit.get();
        } catch (RejectedExecutionException e) {
            throw new HttpError(503, draining ? "server is shutting down" : "busy: " + e.getMessage() + "; retry later", "1");
        }
    }

    /** Waits for queued work until the request's timeout (counted from {@code t0}); then 504, the work cancelled. */
    private <T> T await(CompletableFuture<T> future, long t0) {
        long left = settings.requestTimeoutMs() - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        try {
            return future.get(Math.max(1, left), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            future.cancel(false);
            throw new HttpError(504, "not answered within the request timeout of " + settings.requestTimeoutMs() + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HttpError(503, "interrupted", "1");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
        }
    }

    /** Whether an index is served (/v1/search, /v1/images). */
    private boolean indexed() {
        ImageSearch se = search;
        return se != null && se.indexed();
    }

    private Map<String, Object> embedBody(Context ctx, long t0) {
        checkServing(searches, "--index DIR or --embed-model DIR");
        ImageSearch se = search;
        Fields f = fields(ctx, "{\"image\": base64, \"text\": ...} (either or both)", "text");
        String text = f.values().get("text");
        if (f.image() == null && text == null) {
            throw new HttpError(400, "body: give 'image' (" + f.imageField() + ") and/or 'text'");
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", se.name());
        out.put("dimension", se.dimension());
        // decoded and tokenized here, on the request's thread; only the forward passes are queued (batched)
        float[] pixels = f.image() == null ? null : se.pixels(f.image());
        long[] ids = text == null ? null : se.textIds(text);
        EmbedBatcher b = embedBatcher;
        CompletableFuture<float[]> imageF = pixels == null ? null : queued(() -> b.image(pixels));
        CompletableFuture<float[]> textF = ids == null ? null : queued(() -> b.text(ids));
        float[] image = imageF == null ? null : await(imageF, t0);
        float[] txt = textF == null ? null : await(textF, t0);
        if (image != null) {
            out.put("image", image);
        }
        if (txt != null) {
            out.put("text", txt);
        }
        if (image != null && txt != null) {
            out.put("similarity", Embedder.cosine(image, txt));
        }
        out.put("timing_ms", Map.of("total", ms(System.nanoTime() - t0)));
        return out;
    }

    private Map<String, Object> searchBody(Context ctx, long t0) throws IOException {
        checkServing(indexed(), "--index DIR");
        ImageSearch se = search;
        Fields f = fields(ctx, "{\"text\": ..., \"k\": ...} or {\"image\": base64, \"k\": ...}", "text", "k");
        String text = f.values().get("text");
        if ((f.image() == null) == (text == null)) {
            throw new HttpError(400, "body: give 'text' or 'image' (" + f.imageField() + "), one of them");
        }
        int k = parseK(f.values().get("k"));
        float[] query;
        EmbedBatcher b = embedBatcher;
        if (text != null) {
            long[] ids = se.textIds(text);
            query = await(queued(() -> b.text(ids)), t0);
        } else {
            float[] pixels = se.pixels(f.image());
            query = await(queued(() -> b.image(pixels)), t0);
        }
        long tEmbedded = System.nanoTime();
        List<Map<String, Object>> hits = new ArrayList<>();
        for (ImageIndex.Hit h : se.search(query, k)) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("score", h.score());
            e.put("path", h.path());
            e.put("text", h.text());
            e.put("sha256", h.sha256());
            e.put("image_url", "/v1/images/" + h.sha256());
            e.put("thumbnail_url", "/v1/images/" + h.sha256() + "?size=" + THUMBNAIL);
            hits.add(e);
        }
        long tDone = System.nanoTime();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("hits", hits);
        out.put("query", text != null ? "text" : "image");
        out.put("search", searchInfo(se));
        Map<String, Object> timing = new LinkedHashMap<>();
        timing.put("embed", ms(tEmbedded - t0));
        timing.put("search", ms(tDone - tEmbedded));
        timing.put("total", ms(tDone - t0));
        out.put("timing_ms", timing);
        return out;
    }

    private static Map<String, Object> searchInfo(ImageSearch se) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", se.name());
        m.put("dimension", se.dimension());
        if (se.indexed()) {
            m.put("images", se.size());
        }
        return m;
    }

    /** {@code GET /v1/images/{sha256}[?size=N]}: an indexed image, or its thumbnail; nothing else on disk. */
    private void picture(Context ctx) throws IOException {
        try {
            checkServing(indexed(), "--index DIR");
            String sizeText = ctx.queryParam("size");
            int size = 0;
            if (sizeText != null) {
                try {
                    size = Integer.parseInt(sizeText.trim());
                } catch (NumberFormatException e) {
                    size = -1;
                }
                if (size < ImageSearch.MIN_THUMBNAIL || size > ImageSearch.MAX_THUMBNAIL) {
                    throw new HttpError(400, "size: must be an integer from " + ImageSearch.MIN_THUMBNAIL + " to "
                            + ImageSearch.MAX_THUMBNAIL + ", got '" + sizeText + "'");
                }
            }
            ImageSearch.Picture p = search.picture(ctx.pathParam("sha256"), size, settings.maxBodyBytes());
            // content-addressed: the same URL always means the same bytes
            ctx.header("Cache-Control", "public, max-age=31536000, immutable");
            ctx.header("X-Content-Type-Options", "nosniff");
            ctx.status(200).contentType(p.contentType());
            if (ctx.method() == HandlerType.HEAD) {
                ctx.header("Content-Length", Integer.toString(p.bytes().length));
            } else {
                ctx.result(p.bytes());
            }
        } catch (HttpError e) {
            error(ctx, e.status, e.getMessage(), e.retryAfter);
        } catch (NoSuchElementException e) {
            error(ctx, 404, e.getMessage(), null);
        } catch (ImageSearch.TooLargeException e) {
            error(ctx, 413, e.getMessage(), null);
        } catch (ImageIndex.UnavailableException e) {
            indexUnavailable(ctx, e);
        }
    }

    /**
     * The fields of a POST body: multipart/form-data (file field 'image', text fields) or a JSON object ('image' a
     * base64 string, optionally a data: URL). Absent fields are null.
     *
     * @param imageField how the image is given, for messages
     */
    private record Fields(byte[] image, Map<String, String> values, String imageField) {}

    /** Reads the body's image and the text fields {@code names}; {@code shape} shows a JSON body in messages. */
    private Fields fields(Context ctx, String shape, String... names) {
        long length = ctx.req().getContentLengthLong();
        if (length > settings.maxBodyBytes()) {
            throw new HttpError(413, "request body of " + length + " bytes is over the limit of " + settings.maxBodyBytes());
        }
        String type = ctx.contentType() == null ? "" : ctx.contentType().toLowerCase(Locale.ROOT);
        Map<String, String> values = new LinkedHashMap<>();
        if (type.startsWith("multipart/form-data")) {
            if (!type.contains("boundary=")) {
                logClientError("multipart without a boundary");
                throw new HttpError(400, "body: not valid multipart/form-data (the Content-Type has no boundary parameter)");
            }
            UploadedFile file;
            try {
                file = ctx.uploadedFile("image");
                for (String n : names) {
                    values.put(n, ctx.formParam(n));
                }
            } catch (Exception e) { // Jetty's parser throws (undeclared) IOExceptions for a malformed body
                HttpError h = multipartError(e);
                if (h.status == 400) {
                    logClientError(h.getMessage());
                }
                throw h;
            }
            if (file == null) {
                return new Fields(null, values, "multipart file field 'image'");
            }
            try (InputStream in = file.content()) {
                return new Fields(in.readAllBytes(), values, "multipart file field 'image'");
            } catch (IOException e) {
                throw new HttpError(400, "image: cannot read the upload: " + e.getMessage());
            }
        }
        if (!type.startsWith("application/json")) {
            throw new HttpError(415, "Content-Type must be multipart/form-data or application/json, got '"
                    + (type.isEmpty() ? "none" : type) + "'");
        }
        byte[] raw = ctx.bodyAsBytes();
        if (raw.length > settings.maxBodyBytes()) {
            throw new HttpError(413, "request body over the limit of " + settings.maxBodyBytes() + " bytes");
        }
        JsonNode n;
        try {
            n = STRICT_JSON.readTree(raw);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new HttpError(400, "body: not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (IOException e) {
            throw new HttpError(400, "body: cannot read (" + e.getMessage() + ")");
        }
        if (n == null || !n.isObject()) {
            throw new HttpError(400, "body: expected a JSON object " + shape);
        }
        for (String name : names) {
            JsonNode v = n.get(name);
            if (v == null || v.isNull()) {
                values.put(name, null);
            } else if (name.equals("k") ? !v.isIntegralNumber() : !v.isTextual()) {
                throw new HttpError(400, name + ": must be " + (name.equals("k") ? "an integer" : "a string") + ", got "
                        + v.getNodeType().toString().toLowerCase(Locale.ROOT) + " " + abbreviate(v.toString()));
            } else {
                values.put(name, v.asText());
            }
        }
        JsonNode img = n.get("image");
        if (img == null || img.isNull()) {
            return new Fields(null, values, "base64 string field 'image'");
        }
        if (!img.isTextual() || img.asText().isEmpty()) {
            throw new HttpError(400, "image: missing (base64 string field 'image')");
        }
        String b64 = img.asText();
        if (b64.startsWith("data:") && b64.contains(",")) {
            b64 = b64.substring(b64.indexOf(',') + 1);
        }
        try {
            return new Fields(Base64.getDecoder().decode(b64.replaceAll("\\s", "")), values, "base64 string field 'image'");
        } catch (IllegalArgumentException e) {
            throw new HttpError(400, "image: not valid base64 (" + e.getMessage() + ")");
        }
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 40) + "...";
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
        ctx.attribute(ERROR_SENT, Boolean.TRUE);
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
        if (embedBatcher != null) {
            embedBatcher.close();
        }
        app.stop();
        if (ownsModel && model != null) {
            model.close();
        }
        if (ownsModel && search != null) {
            try {
                search.close();
            } catch (IOException e) {
                log.warn("closing the search index: {}", e.getMessage());
            }
        }
    }

    @Override
    public void close() {
        stop(Duration.ofSeconds(30));
    }
}
