package dev.mm4j.serve;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import dev.mm4j.inference.InvalidInputException;
import dev.mm4j.search.ImageIndex;
import io.javalin.http.Context;
import io.javalin.http.UploadedFile;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What every endpoint of a {@link ModelServer} shares: availability (503 while loading, after a failed load or while
 * shutting down; 404 for what this server was not given), request bodies (multipart or JSON, size limits), errors as
 * {@code {"error", "status"}} JSON (never a stack trace; client errors logged at most once a minute), the request
 * timeout, the in-flight count a graceful stop waits for, and the Prometheus registry the resources' metrics live in.
 */
final class ServePolicy {
    private static final Logger log = LoggerFactory.getLogger(ModelServer.class);
    static final ObjectMapper JSON = new ObjectMapper();
    /** Request bodies: one JSON value, nothing after it. */
    private static final ObjectReader STRICT_JSON = JSON.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /** Client errors (a malformed body) are logged at most once per minute: any client could otherwise fill the disk. */
    private static final long CLIENT_ERROR_LOG_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);
    /** Request attribute: a route answered with its own JSON error (the 404 handler leaves it). */
    static final String ERROR_SENT = "mm4j.error.sent";

    /** An error answered as {@code {"error": message, "status": status}}. */
    static final class HttpError extends RuntimeException {
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

    /** What an endpoint answers (200, JSON), or an {@link HttpError} / {@link InvalidInputException} to refuse. */
    @FunctionalInterface
    interface Endpoint {
        Map<String, Object> answer(Context ctx, long t0) throws IOException;
    }

    /**
     * The fields of a POST body: multipart/form-data (file field 'image', text fields) or a JSON object ('image' a
     * base64 string, optionally a data: URL). Absent fields are null.
     *
     * @param imageField how the image is given, for messages
     */
    record Fields(byte[] image, Map<String, String> values, String imageField) {}

    final ModelServer.Settings settings;
    final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    final CountDownLatch loaded = new CountDownLatch(1);
    final AtomicInteger inFlight = new AtomicInteger();
    volatile boolean draining;
    volatile Throwable loadError;
    private final AtomicLong lastClientErrorLog = new AtomicLong(System.nanoTime() - CLIENT_ERROR_LOG_EVERY_NANOS);
    private final AtomicInteger clientErrorsNotLogged = new AtomicInteger();
    private final AtomicLong lastIndexLog = new AtomicLong(System.nanoTime() - CLIENT_ERROR_LOG_EVERY_NANOS);
    private final AtomicInteger indexErrorsNotLogged = new AtomicInteger();

    ServePolicy(ModelServer.Settings settings) {
        this.settings = settings;
    }

    /** A latency timer with a percentile histogram. */
    Timer timer(String name, String description) {
        return Timer.builder(name).description(description).publishPercentileHistogram().register(registry);
    }

    /** A batch-size distribution with buckets at powers of two up to 64. */
    DistributionSummary batchSizes(String name, String description) {
        return DistributionSummary.builder(name).description(description).serviceLevelObjectives(1, 2, 4, 8, 16, 32, 64)
                .register(registry);
    }

    void countResponse(int status) {
        Counter.builder("mm4j.requests").description("HTTP responses by status (every endpoint, Jetty-level rejects included)")
                .tag("status", Integer.toString(status)).register(registry).increment();
    }

    /** Whether requests are answered now: models loaded and not shutting down. */
    boolean ready() {
        return loaded.getCount() == 0 && loadError == null && !draining;
    }

    /** 503 while shutting down, loading or after a failed load; 404 when this server was not given the endpoint's model. */
    void checkServing(boolean served, String option) {
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

    /** Runs an API endpoint: counted in flight (graceful stop waits for it), timed, its refusals as JSON errors. */
    void handle(Context ctx, Timer timer, Endpoint endpoint) {
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

    /**
     * An exception out of a route: a body that ended early (the client closed the connection, or stopped sending for
     * the idle timeout) is the client's error, 400 / 408 with one rate-limited log line; anything else is ours, 500
     * with its stack trace in the log.
     */
    void failed(Context ctx, Exception e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof TimeoutException) {
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
    void indexUnavailable(Context ctx, ImageIndex.UnavailableException e) {
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
    void logClientError(String what) {
        long now = System.nanoTime();
        long last = lastClientErrorLog.get();
        if (now - last >= CLIENT_ERROR_LOG_EVERY_NANOS && lastClientErrorLog.compareAndSet(last, now)) {
            int more = clientErrorsNotLogged.getAndSet(0);
            log.warn("bad request: {}{}", what, more > 0 ? " (and " + more + " more client errors since the last such line)" : "");
        } else {
            clientErrorsNotLogged.incrementAndGet();
        }
    }

    /** Queues work on a batcher; a full queue (or a server shutting down) is 503 with Retry-After. */
    <T> CompletableFuture<T> queued(Supplier<CompletableFuture<T>> submit) {
        try {
            return submit.get();
        } catch (RejectedExecutionException e) {
            throw new HttpError(503, draining ? "server is shutting down" : "busy: " + e.getMessage() + "; retry later", "1");
        }
    }

    /** Waits for queued work until the request's timeout (counted from {@code t0}); then 504, the work cancelled. */
    <T> T await(CompletableFuture<T> future, long t0) {
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

    /** Reads the body's image and the text fields {@code names}; {@code shape} shows a JSON body in messages. */
    Fields fields(Context ctx, String shape, String... names) {
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
            } else if (INTEGER_FIELDS.contains(name) ? !v.isIntegralNumber()
                    : BOOLEAN_FIELDS.contains(name) ? !v.isBoolean() : !v.isTextual()) {
                throw new HttpError(400, name + ": must be " + (INTEGER_FIELDS.contains(name) ? "an integer"
                        : BOOLEAN_FIELDS.contains(name) ? "true or false" : "a string") + ", got "
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

    /** The {@code k} field: 5 when absent, else from 1 to the settings' max k. */
    /** JSON fields whose value is an integer, or true/false; every other field is a string. */
    private static final java.util.Set<String> INTEGER_FIELDS = java.util.Set.of("k", "candidates");
    private static final java.util.Set<String> BOOLEAN_FIELDS = java.util.Set.of("exact");

    /** {@code candidates} of /v1/search: the HNSW search's breadth, default {@link ImageIndex#DEFAULT_CANDIDATES}. */
    static int parseCandidates(String s) {
        if (s == null || s.isBlank()) {
            return ImageIndex.DEFAULT_CANDIDATES;
        }
        try {
            int c = Integer.parseInt(s.trim());
            if (c >= 1 && c <= ImageIndex.MAX_K) {
                return c;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new HttpError(400, "candidates: must be an integer from 1 to " + ImageIndex.MAX_K + ", got '" + s + "'");
    }

    /** A true/false field (absent: false). */
    static boolean parseBoolean(String name, String s) {
        if (s == null || s.isBlank()) {
            return false;
        }
        return switch (s.trim()) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new HttpError(400, name + ": must be true or false, got '" + s + "'");
        };
    }

    int parseK(String s) {
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

    static double ms(long nanos) {
        return round(nanos / 1e6);
    }

    static double round(double ms) {
        return Math.round(ms * 100) / 100.0;
    }

    static void json(Context ctx, int status, Object body) {
        try {
            ctx.status(status).contentType("application/json").result(JSON.writeValueAsBytes(body));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static void error(Context ctx, int status, String message, String retryAfter) {
        if (retryAfter != null) {
            ctx.header("Retry-After", retryAfter);
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("error", message);
        body.put("status", status);
        ctx.attribute(ERROR_SENT, Boolean.TRUE);
        json(ctx, status, body);
    }

    /** Jetty's own error responses (requests that never reach the routes: bad URI, bad headers) as JSON errors. */
    static final class JsonErrorHandler extends ErrorHandler {
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
}
