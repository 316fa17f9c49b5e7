package dev.mm4j.download;

import dev.mm4j.report.ProgressReporter;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLDecoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Downloads files over HTTP(S) into a cache folder, resumably and verified.
 *
 * <ul>
 *   <li>Where a file goes is {@link CacheLayout#pathOf} its URL (the logical one: {@link Request#from} fetches the
 *       same file from a mirror).
 *   <li>The bytes go to {@code <name>.part}; after an interruption the next attempt (in the same call, up to
 *       {@code maxAttempts}, or a later call) sends {@code Range: bytes=N-}. A 206 reply is appended (its
 *       {@code Content-Range} start must be N); a 200 reply means the server ignored the range, so the part
 *       file is restarted from 0; a 416 reply with {@code bytes *}{@code /N} means the part was already whole.
 *   <li>The size is checked against the request's expected size and/or the server's total
 *       ({@code Content-Length} / {@code Content-Range}); the SHA-256 against the request's when given. A wrong
 *       checksum is an {@link IOException} naming the URL and both digests, and the bad bytes are deleted.
 *   <li>Only then is the part renamed into place, and its SHA-256 recorded next to it in {@code <name>.sha256}
 *       ({@code sha256sum} format). A file in place is a cache hit and costs no request (when a SHA-256 is
 *       asked for, the recorded one, or else the file's own, must match; otherwise it is fetched again).
 *   <li>Every wait is bounded: connect timeout, a read timeout (no byte for that long aborts the attempt),
 *       a bounded number of attempts.
 * </ul>
 */
public final class Downloader {
    private static final Logger LOG = LoggerFactory.getLogger(Downloader.class);

    /** Environment variable naming the cache folder. */
    public static final String ENV_CACHE = "MM4J_CACHE";
    /** System property naming the cache folder; wins over {@link #ENV_CACHE} (tests, embedding applications). */
    public static final String PROPERTY_CACHE = "mm4j.cache";

    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes\\s+(\\d+)-(\\d+)/(\\d+|\\*)",
            Pattern.CASE_INSENSITIVE);
    private static final Pattern CONTENT_RANGE_UNSATISFIED = Pattern.compile("bytes\\s+\\*/(\\d+)",
            Pattern.CASE_INSENSITIVE);
    private static final ScheduledExecutorService WATCHDOG = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "mm4j-download-watchdog");
        t.setDaemon(true);
        return t;
    });

    /** What to fetch. {@code relativePath} (under the cache), {@code sha256} and {@code expectedSize} are optional. */
    public record Request(URI uri, String relativePath, String sha256, long expectedSize) {
        public Request {
            Objects.requireNonNull(uri, "uri");
            if (sha256 != null) {
                sha256 = sha256.trim().toLowerCase(Locale.ROOT);
                if (!sha256.matches("[0-9a-f]{64}")) {
                    throw new IllegalArgumentException("not a SHA-256 hex digest: " + sha256);
                }
            }
        }

        /** A request for {@code url}, kept at {@link CacheLayout#pathOf}, unverified beyond the server's size. */
        public static Request of(String url) {
            return of(URI.create(url));
        }

        public static Request of(URI url) {
            return new Request(url, CacheLayout.pathOf(url), null, -1);
        }

        /** The same file (same place in the cache), fetched from {@code source} (a mirror) instead. */
        public Request from(URI source) {
            return new Request(source, effectivePath(), sha256, expectedSize);
        }

        public Request withPath(String path) {
            return new Request(uri, path, sha256, expectedSize);
        }

        public Request withSha256(String hex) {
            return new Request(uri, relativePath, hex, expectedSize);
        }

        public Request withExpectedSize(long size) {
            return new Request(uri, relativePath, sha256, size);
        }

        /** The path under the cache folder: the given one, or the URL's ({@link CacheLayout#pathOf}). */
        public String effectivePath() {
            return relativePath != null ? relativePath : CacheLayout.pathOf(uri);
        }
    }

    /** Tunables; {@link #defaults()} for the usual ones. */
    public record Options(Duration connectTimeout, Duration readTimeout, int maxAttempts, Duration retryBackoff,
            ProgressReporter.Mode progress) {
        public Options {
            if (maxAttempts < 1) throw new IllegalArgumentException("maxAttempts must be >= 1");
        }

        public static Options defaults() {
            return new Options(Duration.ofSeconds(30), Duration.ofSeconds(60), 5, Duration.ofSeconds(2),
                    ProgressReporter.Mode.AUTO);
        }

        public Options withMaxAttempts(int n) {
            return new Options(connectTimeout, readTimeout, n, retryBackoff, progress);
        }

        public Options withReadTimeout(Duration d) {
            return new Options(connectTimeout, d, maxAttempts, retryBackoff, progress);
        }

        public Options withRetryBackoff(Duration d) {
            return new Options(connectTimeout, readTimeout, maxAttempts, d, progress);
        }

        public Options withProgress(ProgressReporter.Mode mode) {
            return new Options(connectTimeout, readTimeout, maxAttempts, retryBackoff, mode);
        }
    }

    /** An HTTP reply with an error status. */
    public static final class HttpStatusException extends IOException {
        private final int status;
        private final URI uri;

        public HttpStatusException(int status, URI uri) {
            super("HTTP " + status + " for " + uri);
            this.status = status;
            this.uri = uri;
        }

        public int status() {
            return status;
        }

        public URI uri() {
            return uri;
        }

        boolean retryable() {
            return status >= 500 || status == 408 || status == 429;
        }
    }

    /** A downloaded file whose SHA-256 is not the expected one. */
    public static final class ChecksumException extends IOException {
        public ChecksumException(String message) {
            super(message);
        }
    }

    private final Path cacheDir;
    private final Options options;
    private final HttpClient client;
    private final AtomicLong requests = new AtomicLong();

    public Downloader(Path cacheDir) {
        this(cacheDir, Options.defaults());
    }

    public Downloader(Path cacheDir, Options options) {
        this.cacheDir = cacheDir.toAbsolutePath().normalize();
        this.options = options;
        this.client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(options.connectTimeout())
                .build();
    }

    /** {@code -Dmm4j.cache}, else {@code $MM4J_CACHE}, else {@code ~/.cache/mm4j}. */
    public static Path defaultCacheDir() {
        String prop = System.getProperty(PROPERTY_CACHE);
        if (prop != null && !prop.isBlank()) return Path.of(prop);
        String env = System.getenv(ENV_CACHE);
        if (env != null && !env.isBlank()) return Path.of(env);
        return Path.of(System.getProperty("user.home"), ".cache", "mm4j");
    }
    /** The cache folder this downloader stores into. */
    public Path cacheDir() {
        return cacheDir;
    }


    /** How many HTTP requests this downloader has sent (for logs and tests). */
    public long requestCount() {
        return requests.get();
    }

    /** The last non-empty path segment of the URL, percent-decoded; rejects names that are not plain file names. */
    public static String fileNameFromUrl(URI uri) {
        String path = uri.getRawPath();
        if (path == null) path = "";
        while (path.endsWith("/")) path = path.substring(0, path.length() - 1);
        String last = URLDecoder.decode(path.substring(path.lastIndexOf('/') + 1), StandardCharsets.UTF_8);
        if (last.isEmpty() || last.equals(".") || last.equals("..") || last.contains("/") || last.contains("\\")) {
            throw new IllegalArgumentException("cannot derive a file name from " + uri + "; give one");
        }
        return last;
    }

    /**
     * {@code dir.resolve(relative)}, refusing absolute paths and anything that would land outside {@code dir}.
     */
    public static Path resolveInside(Path dir, String relative) throws IOException {
        if (relative == null || relative.isBlank()) throw new IOException("empty path");
        String r = relative.replace('\\', '/');
        if (r.startsWith("/") || r.matches("^[A-Za-z]:.*")) throw new IOException("absolute path not allowed: " + relative);
        for (String seg : r.split("/")) {
            if (seg.equals("..")) throw new IOException("path escapes its folder: " + relative);
        }
        Path base = dir.toAbsolutePath().normalize();
        Path p = base.resolve(r).normalize();
        if (!p.startsWith(base) || p.equals(base)) throw new IOException("path escapes its folder: " + relative);
        return p;
    }

    /** The file a request is (or will be) cached at. */
    public Path targetOf(Request r) throws IOException {
        return resolveInside(cacheDir, r.effectivePath());
    }

    /** Lower-case hex SHA-256 of a file. */
    public static String sha256Hex(Path file) throws IOException {
        MessageDigest md = sha256();
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buf) >= 0) {
                buf.flip();
                md.update(buf);
                buf.clear();
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The SHA-256 recorded for a cached file, or null. */
    static String recordedSha(Path target) throws IOException {
        Path f = shaFileOf(target);
        if (!Files.isRegularFile(f)) return null;
        String s = Files.readString(f, StandardCharsets.UTF_8).trim();
        int sp = s.indexOf(' ');
        String hex = (sp < 0 ? s : s.substring(0, sp)).toLowerCase(Locale.ROOT);
        return hex.matches("[0-9a-f]{64}") ? hex : null;
    }

    static Path shaFileOf(Path target) {
        return target.resolveSibling(target.getFileName() + ".sha256");
    }

    static Path partFileOf(Path target) {
        return target.resolveSibling(target.getFileName() + ".part");
    }

    /**
     * Makes sure the file is in the cache and returns its path: a cache hit sends no request; otherwise it is
     * downloaded (resuming a {@code .part} left by an earlier try), verified and renamed into place.
     */
    public Path fetch(Request r) throws IOException {
        Path target = targetOf(r);
        if (Files.isRegularFile(target)) {
            if (cacheHit(r, target)) {
                LOG.debug("cache hit: {}", target);
                return target;
            }
        }
        Files.createDirectories(target.getParent());
        Path part = partFileOf(target);
        long serverTotal = -1;
        IOException last = null;
        for (int attempt = 1; attempt <= options.maxAttempts(); attempt++) {
            try {
                serverTotal = downloadOnce(r, part);
                last = null;
                break;
            } catch (HttpStatusException e) {
                if (!e.retryable()) throw e;
                last = e;
            } catch (RestartException e) {
                Files.deleteIfExists(part);
                last = new IOException(e.getMessage() + " (" + r.uri() + ")");
            } catch (java.net.ConnectException | java.nio.channels.UnresolvedAddressException e) {
                // nobody listens there (or no such host): retrying will not change that
                throw new IOException("cannot connect to " + hostPort(r.uri()) + " for " + r.uri() + ": "
                        + (e instanceof java.nio.channels.UnresolvedAddressException ? "unknown host"
                        : connectProblem(e)) + nothingOrPartial(part), e);
            } catch (IOException e) {
                if (e.getCause() instanceof java.nio.channels.UnresolvedAddressException
                        || e.getCause() instanceof java.net.UnknownHostException) {
                    throw new IOException("cannot connect to " + hostPort(r.uri()) + " for " + r.uri() + ": unknown host"
                            + nothingOrPartial(part), e);
                }
                last = e;
            }
            long have = Files.exists(part) ? Files.size(part) : 0;
            LOG.warn("download of {} interrupted at {} bytes (attempt {}/{}): {}", r.uri(), have, attempt,
                    options.maxAttempts(), last.toString());
            if (attempt < options.maxAttempts()) sleep(options.retryBackoff().multipliedBy(attempt));
        }
        if (last != null) {
            throw new IOException("download of " + r.uri() + " failed after " + options.maxAttempts() + " attempt(s): "
                    + (last.getMessage() != null ? last.getMessage() : last.toString()) + nothingOrPartial(part), last);
        }
        long size = Files.size(part);
        long expected = r.expectedSize() >= 0 ? r.expectedSize() : serverTotal;
        if (r.expectedSize() >= 0 && serverTotal >= 0 && r.expectedSize() != serverTotal) {
            Files.deleteIfExists(part);
            throw new IOException("size mismatch for " + r.uri() + ": expected " + r.expectedSize()
                    + " bytes, the server has " + serverTotal);
        }
        if (expected >= 0 && size != expected) {
            Files.deleteIfExists(part);
            throw new IOException("size mismatch for " + r.uri() + ": expected " + expected + " bytes, got " + size
                    + "; the partial file was discarded");
        }
        String actual = sha256Hex(part);
        if (r.sha256() != null && !r.sha256().equals(actual)) {
            Files.deleteIfExists(part);
            throw new ChecksumException("SHA-256 mismatch for " + r.uri() + ": expected " + r.sha256() + ", got "
                    + actual + " (" + size + " bytes); the download was discarded, nothing was stored at " + target);
        }
        AtomicFiles.moveIntoPlace(part, target);
        AtomicFiles.writeString(shaFileOf(target), actual + "  " + target.getFileName() + "\n");
        LOG.info("downloaded {} -> {} ({} bytes, sha256 {})", r.uri(), target, size, actual);
        return target;
    }

    /** HttpClient's ConnectException often has no message of its own: the cause says "Connection refused". */
    private static String connectProblem(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() != null && !t.getMessage().isBlank()) return t.getMessage();
        }
        return "connection refused";
    }

    private static String hostPort(URI uri) {
        return uri.getHost() + (uri.getPort() >= 0 ? ":" + uri.getPort() : "");
    }

    /** The end of a failure message: what is left for a later resume. */
    private static String nothingOrPartial(Path part) throws IOException {
        long have = Files.exists(part) ? Files.size(part) : 0;
        return have > 0 ? "; the " + have + " bytes received are kept in " + part + " for a later resume"
                : "; nothing was downloaded";
    }

    private boolean cacheHit(Request r, Path target) throws IOException {
        if (r.expectedSize() >= 0 && Files.size(target) != r.expectedSize()) {
            LOG.warn("cached {} has {} bytes, expected {}; fetching again", target, Files.size(target),
                    r.expectedSize());
            return false;
        }
        String recorded = recordedSha(target);
        if (r.sha256() == null) {
            return true;
        }
        if (recorded == null) {
            recorded = sha256Hex(target);
            if (recorded.equals(r.sha256())) {
                AtomicFiles.writeString(shaFileOf(target), recorded + "  " + target.getFileName() + "\n");
            }
        }
        if (recorded.equals(r.sha256())) return true;
        LOG.warn("cached {} has sha256 {}, expected {}; fetching again", target, recorded, r.sha256());
        return false;
    }

    /**
     * GETs a small text document (an API listing) with the same client and timeouts; not cached.
     *
     * @throws HttpStatusException on a non-2xx reply
     */
    public String getText(URI uri) throws IOException {
        HttpRequest req = HttpRequest.newBuilder(uri)
                .GET()
                .timeout(options.connectTimeout().plus(options.readTimeout()))
                .header("User-Agent", "mm4j-downloader/0.1")
                .header("Accept", "application/json")
                .build();
        requests.incrementAndGet();
        HttpResponse<String> resp;
        try {
            resp = client.send(req, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while fetching " + uri, e);
        }
        if (resp.statusCode() / 100 != 2) throw new HttpStatusException(resp.statusCode(), uri);
        return resp.body();
    }

    /** Thrown when the part file must be dropped and the download restarted from 0. */
    private static final class RestartException extends IOException {
        RestartException(String m) {
            super(m);
        }
    }

    /** One HTTP attempt; returns the server's total size, or -1 when it did not say. */
    private long downloadOnce(Request r, Path part) throws IOException {
        long have = Files.exists(part) ? Files.size(part) : 0;
        HttpRequest.Builder b = HttpRequest.newBuilder(r.uri())
                .GET()
                .timeout(options.connectTimeout().plus(options.readTimeout()))
                .header("User-Agent", "mm4j-downloader/0.1")
                .header("Accept-Encoding", "identity");
        if (have > 0) b.header("Range", "bytes=" + have + "-");
        HttpResponse<InputStream> resp;
        requests.incrementAndGet();
        try {
            resp = client.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while fetching " + r.uri(), e);
        }
        int status = resp.statusCode();
        long total;
        boolean append;
        try (InputStream body = resp.body()) {
            switch (status) {
                case 206: {
                    String cr = resp.headers().firstValue("Content-Range").orElse("");
                    Matcher m = CONTENT_RANGE.matcher(cr);
                    if (!m.find()) throw new RestartException("206 without a usable Content-Range: '" + cr + "'");
                    long start = Long.parseLong(m.group(1));
                    if (start != have) {
                        throw new RestartException("server resumed at byte " + start + " instead of " + have);
                    }
                    total = m.group(3).equals("*") ? -1 : Long.parseLong(m.group(3));
                    append = true;
                    LOG.info("resuming {} at byte {}", r.uri(), have);
                    break;
                }
                case 200: {
                    if (have > 0) LOG.info("server ignored the Range request for {}; restarting from 0", r.uri());
                    OptionalLong cl = resp.headers().firstValueAsLong("Content-Length");
                    total = cl.isPresent() ? cl.getAsLong() : -1;
                    append = false;
                    have = 0;
                    break;
                }
                case 416: {
                    String cr = resp.headers().firstValue("Content-Range").orElse("");
                    Matcher m = CONTENT_RANGE_UNSATISFIED.matcher(cr);
                    if (m.find() && Long.parseLong(m.group(1)) == have) {
                        return have; // the part file already holds everything
                    }
                    throw new RestartException("server refused the range bytes=" + have + "- (" + cr + ")");
                }
                default:
                    throw new HttpStatusException(status, r.uri());
            }
            copy(r, body, part, append, have, total);
        }
        return total;
    }

    private void copy(Request r, InputStream body, Path part, boolean append, long have, long total)
            throws IOException {
        AtomicLong lastProgress = new AtomicLong(System.nanoTime());
        long readTimeoutNanos = options.readTimeout().toNanos();
        long period = Math.max(10, options.readTimeout().toMillis() / 4);
        ScheduledFuture<?> watchdog = WATCHDOG.scheduleAtFixedRate(() -> {
            if (System.nanoTime() - lastProgress.get() > readTimeoutNanos) {
                try {
                    body.close(); // makes the blocked read fail
                } catch (IOException ignored) {
                    // closing is best effort
                }
            }
        }, period, period, TimeUnit.MILLISECONDS);
        StandardOpenOption mode = append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING;
        String name = r.effectivePath();
        try (FileChannel ch = FileChannel.open(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE, mode);
                ProgressReporter progress = ProgressReporter.forBytes(name, total, have, options.progress())) {
            byte[] buf = new byte[1 << 16];
            long written = have;
            int n;
            while (true) {
                try {
                    n = body.read(buf);
                } catch (IOException e) {
                    if (System.nanoTime() - lastProgress.get() > readTimeoutNanos) {
                        throw new IOException("no data from " + r.uri() + " for " + options.readTimeout().toMillis()
                                + " ms after " + written + " bytes", e);
                    }
                    throw new IOException("connection to " + r.uri() + " broke after " + written + " bytes"
                            + (total >= 0 ? " of " + total : "") + ": " + e.getMessage(), e);
                }
                if (n < 0) break;
                lastProgress.set(System.nanoTime());
                ByteBuffer bb = ByteBuffer.wrap(buf, 0, n);
                while (bb.hasRemaining()) ch.write(bb);
                written += n;
                progress.stepTo(written);
            }
            ch.force(true);
            if (total >= 0 && written != total) {
                throw new IOException("connection to " + r.uri() + " ended after " + written + " of " + total
                        + " bytes");
            }
        } finally {
            watchdog.cancel(false);
        }
    }

    private static void sleep(Duration d) throws IOException {
        if (d.isZero() || d.isNegative()) return;
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }
}
