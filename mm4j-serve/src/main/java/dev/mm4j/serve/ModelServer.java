package dev.mm4j.serve;

import dev.mm4j.inference.VqaModel;
import dev.mm4j.search.ImageIndex;
import io.javalin.Javalin;
import io.javalin.config.SizeUnit;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.javalin.http.HttpResponseException;
import io.micrometer.core.instrument.Gauge;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.eclipse.jetty.server.AbstractConnector;
import org.eclipse.jetty.server.ConnectionLimit;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP server of mm4j's models (Javalin) around a {@link VqaModel} and/or an {@link ImageSearch}, by resource:
 * answers ({@code POST /v1/answer}, multipart or JSON, batched dynamically: {@link AnswerRoutes}), search
 * ({@code POST /v1/embed}, {@code POST /v1/search}: {@link SearchRoutes}) and the indexed images and their thumbnails
 * ({@code GET /v1/images/{sha256}}: {@link ImageRoutes}), over one error, availability and metrics policy
 * ({@link ServePolicy}); plus the web page at {@code /}, {@code /healthz}, {@code /readyz} and Prometheus
 * {@code /metrics}. Bad input gets a JSON error with its status, never a stack trace. An endpoint whose model the
 * server was not given answers 404.
 *
 * <pre>{@code
 * try (ModelServer s = ModelServer.start(() -> VqaModel.load(dir), ModelServer.Settings.defaults())) { // or start(vqa, search, settings)
 *     s.awaitLoaded();
 *     s.runUntilSignalled(); // SIGTERM / SIGINT: in-flight requests finish, new ones get 503
 * }
 * }</pre>
 */
public final class ModelServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ModelServer.class);

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

    private final Settings settings;
    private final boolean ownsModel;
    private final ServePolicy policy;
    private final AnswerRoutes answers;
    private final SearchRoutes searches;
    private final ClassifyRoutes classifies;
    /** The API's resources; a new endpoint is one more here. */
    private final List<Resource> resources;
    /** The API's routes and the one method each takes (HEAD goes with GET); the others get 405. */
    private final Map<String, HandlerType> api = new LinkedHashMap<>();
    private final Javalin app;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final byte[] page;
    private volatile ConnectionLimit connectionLimit;
    private volatile Server jetty;

    private ModelServer(Settings settings, boolean ownsModel, boolean answering, boolean searching, boolean classifying) {
        this.settings = settings;
        this.ownsModel = ownsModel;
        this.policy = new ServePolicy(settings);
        this.answers = new AnswerRoutes(policy, answering);
        this.searches = new SearchRoutes(policy, searching);
        this.classifies = new ClassifyRoutes(policy, classifying);
        this.resources = List.of(answers, searches, new ImageRoutes(policy, searches), classifies);
        // the page shows the tabs of the endpoints served
        String html = new String(resource("/dev/mm4j/serve/index.html"), StandardCharsets.UTF_8)
                .replace("<body>", "<body data-answer=\"" + answering + "\" data-search=\"" + searching + "\">");
        if (!answering) { // no questions: the header says what is served
            String what = searching ? "image search" : "classification";
            html = html.replace("<span id=\"model\">visual question answering</span>", "<span id=\"model\">" + what + "</span>")
                    .replace("<title>Multimodal4J — ask about an image</title>", "<title>Multimodal4J — " + what + "</title>");
        }
        this.page = html.getBytes(StandardCharsets.UTF_8);
        Gauge.builder("mm4j.connections.open", () -> connectionLimit == null ? 0 : connectionLimit.getConnections())
                .description("HTTP connections open (at most --max-connections)").register(policy.registry);
        ServePolicy.JsonErrorHandler jsonErrors = new ServePolicy.JsonErrorHandler();
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
                server.setRequestLog((req, resp) -> policy.countResponse(resp.getCommittedMetaData() != null
                        ? resp.getCommittedMetaData().getStatus() : resp.getStatus()));
            });
            cfg.jetty.modifyServletContextHandler(h -> h.setErrorHandler(jsonErrors));
        });
        app.get("/", ctx -> ctx.contentType("text/html; charset=utf-8").result(page));
        app.get("/healthz", ctx -> ServePolicy.json(ctx, 200, Map.of("status", "ok")));
        app.get("/readyz", this::readyz);
        app.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(policy.registry.scrape()));
        for (Resource r : resources) {
            for (Resource.Route route : r.routes()) {
                app.addHttpHandler(route.method(), route.path(), route.handler());
                if (route.method() != HandlerType.HEAD) {
                    api.put(route.path(), route.method());
                }
            }
        }
        api.forEach((path, allowed) -> {
            for (HandlerType t : List.of(HandlerType.GET, HandlerType.HEAD, HandlerType.POST, HandlerType.PUT,
                    HandlerType.PATCH, HandlerType.DELETE, HandlerType.OPTIONS)) {
                if (t != allowed && !(t == HandlerType.HEAD && allowed == HandlerType.GET)) {
                    app.addHttpHandler(t, path, ctx -> {
                        ctx.header("Allow", allowed.name());
                        ServePolicy.error(ctx, 405, "method not allowed: " + ctx.method() + " " + ctx.path() + " (use " + allowed + ")", null);
                    });
                }
            }
        });
        app.exception(Exception.class, (e, ctx) -> {
            if (e instanceof HttpResponseException h) {
                ServePolicy.error(ctx, h.getStatus(), h.getMessage(), null);
            } else {
                policy.failed(ctx, e);
            }
        });
        app.error(404, ctx -> {
            if (ctx.attribute(ServePolicy.ERROR_SENT) == null) { // a route's own 404 (an image not in the index) stands
                HandlerType allowed = apiMethod(ctx.path());
                if (allowed != null) { // TRACE, CONNECT, methods Javalin does not know
                    ctx.header("Allow", allowed.name());
                    ServePolicy.error(ctx, 405, "method not allowed: " + ctx.req().getMethod() + " " + ctx.path() + " (use " + allowed + ")", null);
                } else {
                    ServePolicy.error(ctx, 404, "no such endpoint: " + ctx.req().getMethod() + " " + ctx.path(), null);
                }
            }
        });
    }

    /** The one method an API path takes, or null for a path outside the API. */
    private HandlerType apiMethod(String path) {
        for (Map.Entry<String, HandlerType> e : api.entrySet()) {
            String p = e.getKey();
            int brace = p.indexOf('{');
            if (brace >= 0 ? path.startsWith(p.substring(0, brace)) && path.length() > brace && path.indexOf('/', brace) < 0
                    : path.equals(p)) {
                return e.getValue();
            }
        }
        return null;
    }

    /** Starts listening now and loads the model in the background ({@code /readyz} says when); the server owns and closes the model. */
    public static ModelServer start(Callable<VqaModel> loader, Settings settings) {
        return start(loader, null, settings);
    }

    /**
     * Starts listening now and loads, in the background, the VQA model ({@code /v1/answer}) and the search
     * ({@code /v1/embed}; {@code /v1/search} and {@code /v1/images} when it has an index); either loader may be null
     * (its endpoints then answer 404), not both. The server owns and closes what they load.
     */
    public static ModelServer start(Callable<VqaModel> loader, Callable<ImageSearch> searchLoader, Settings settings) {
        return start(loader, searchLoader, null, settings);
    }

    /**
     * The same, with a labelled-classification model ({@code /v1/classify}; {@link LabelledModel}) too; any loader may
     * be null (its endpoints then answer 404), not all.
     */
    public static ModelServer start(Callable<VqaModel> loader, Callable<ImageSearch> searchLoader,
            Callable<LabelledModel> classifierLoader, Settings settings) {
        if (loader == null && searchLoader == null && classifierLoader == null) {
            throw new IllegalArgumentException("nothing to serve: give a VQA model, a search, a classifier, or several");
        }
        ModelServer s = new ModelServer(settings, true, loader != null, searchLoader != null, classifierLoader != null);
        s.listen();
        Thread t = new Thread(() -> {
            try {
                if (searchLoader != null) {
                    s.searches.ready(warmedUp(searchLoader.call(), ImageSearch::warmUp, "search"));
                }
                if (loader != null) {
                    s.answers.ready(warmedUp(loader.call(), VqaModel::warmUp, "VQA model"));
                }
                if (classifierLoader != null) {
                    s.classifies.ready(warmedUp(classifierLoader.call(), LabelledModel::warmUp, "classifier"));
                }
            } catch (Throwable e) {
                s.policy.loadError = e;
                log.error("loading the model failed: {}", e.getMessage());
            } finally {
                s.policy.loaded.countDown();
            }
        }, "mm4j-model-loader");
        t.setDaemon(true);
        t.start();
        return s;
    }

    /** A model's warm-up ({@code warmUp}): one forward pass, its seconds. */
    private interface WarmUp<T> {
        double run(T model) throws Exception;
    }

    /**
     * {@code model}, warmed up before it is served, so that {@code /readyz} says ready once the first request costs what
     * the next ones do (a first forward pass prepares the int8 weight forms and bfloat16 weight copies, see the
     * README's Serve section); closed if its warm-up fails.
     */
    private static <T extends AutoCloseable> T warmedUp(T model, WarmUp<T> warmUp, String what) throws Exception {
        try {
            log.info("{} warmed up in {} s (one forward pass)", what, String.format("%.2f", warmUp.run(model)));
            return model;
        } catch (Exception | Error e) {
            try {
                model.close();
            } catch (Exception closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    /** Serves an already loaded model; the caller keeps owning (and closes) it. */
    public static ModelServer start(VqaModel model, Settings settings) {
        return start(model, null, settings);
    }

    /**
     * Serves an already loaded model and/or search (either may be null, not both); the caller keeps owning them, and
     * warms them up if the first request should not pay for it ({@link VqaModel#warmUp}, {@link ImageSearch#warmUp}).
     */
    public static ModelServer start(VqaModel model, ImageSearch search, Settings settings) {
        if (model == null && search == null) {
            throw new IllegalArgumentException("nothing to serve: give a VQA model, a search, or both");
        }
        ModelServer s = new ModelServer(settings, false, model != null, search != null, false);
        if (model != null) {
            s.answers.ready(model);
        }
        if (search != null) {
            s.searches.ready(search);
        }
        s.policy.loaded.countDown();
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

    /** Waits for the model; rethrows a loading failure as an IOException. */
    public void awaitLoaded() throws IOException, InterruptedException {
        policy.loaded.await();
        Throwable loadError = policy.loadError;
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
        return policy.ready();
    }

    private void readyz(Context ctx) throws IOException {
        if (ready()) {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("status", "ready");
            try {
                for (Resource r : resources) {
                    r.describe(body);
                }
            } catch (ImageIndex.UnavailableException e) {
                policy.indexUnavailable(ctx, e);
                return;
            }
            ServePolicy.json(ctx, 200, body);
        } else {
            Throwable loadError = policy.loadError;
            String why = policy.draining ? "shutting down" : loadError != null ? "model failed to load: " + loadError.getMessage()
                    : "model loading";
            ServePolicy.error(ctx, 503, why, policy.draining || loadError != null ? null : "5");
        }
    }

    private static byte[] resource(String name) {
        try (InputStream in = ModelServer.class.getResourceAsStream(name)) {
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
        policy.draining = true;
        long deadline = System.nanoTime() + grace.toNanos();
        while (policy.inFlight.get() > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        resources.forEach(Resource::stop);
        app.stop();
        if (ownsModel) {
            resources.forEach(Resource::release);
        }
    }

    @Override
    public void close() {
        stop(Duration.ofSeconds(30));
    }
}
