package dev.mm4j.download;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A loopback HTTP server for tests: serves fixture bytes with scripted misbehaviour. */
public final class FixtureServer implements AutoCloseable {

    /** How one path behaves. */
    public static final class Resource {
        final byte[] bytes;
        boolean honorRange = true;
        /** For the first {@code dropTimes} requests, close the connection after this many body bytes (-1: never). */
        int dropAfter = -1;
        int dropTimes = 0;
        /** Stall this long (ms) after the first {@code dropAfter} bytes instead of closing. */
        long stallMs = 0;
        public String contentType = "application/octet-stream";
        final AtomicInteger served = new AtomicInteger();

        Resource(byte[] bytes) {
            this.bytes = bytes;
        }
    }

    /** A request as the server saw it. */
    public record Seen(String path, String range) {}

    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-");
    private final HttpServer server;
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fixture-http");
        t.setDaemon(true);
        return t;
    });
    final Map<String, Resource> resources = new ConcurrentHashMap<>();
    public final List<Seen> seen = new CopyOnWriteArrayList<>();

    public FixtureServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.setExecutor(pool);
        server.start();
    }

    public String base() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    public String url(String path) {
        return base() + path;
    }

    public Resource put(String path, byte[] bytes) {
        Resource r = new Resource(bytes);
        resources.put(path, r);
        return r;
    }

    public List<Seen> seen(String path) {
        return seen.stream().filter(s -> s.path().equals(path)).toList();
    }

    private void handle(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        String range = ex.getRequestHeaders().getFirst("Range");
        seen.add(new Seen(path, range));
        Resource r = resources.get(path);
        try (ex) {
            if (r == null) {
                ex.sendResponseHeaders(404, -1);
                return;
            }
            int nth = r.served.incrementAndGet();
            ex.getResponseHeaders().set("Content-Type", r.contentType);
            long start = 0;
            int status = 200;
            if (range != null && r.honorRange) {
                Matcher m = RANGE.matcher(range);
                if (m.matches()) {
                    start = Long.parseLong(m.group(1));
                    if (start >= r.bytes.length) {
                        ex.getResponseHeaders().set("Content-Range", "bytes */" + r.bytes.length);
                        ex.sendResponseHeaders(416, -1);
                        return;
                    }
                    status = 206;
                    ex.getResponseHeaders().set("Content-Range",
                            "bytes " + start + "-" + (r.bytes.length - 1) + "/" + r.bytes.length);
                }
            }
            int len = (int) (r.bytes.length - start);
            ex.sendResponseHeaders(status, len);
            OutputStream out = ex.getResponseBody();
            if (r.dropAfter >= 0 && nth <= r.dropTimes) {
                out.write(r.bytes, (int) start, Math.min(r.dropAfter, len));
                out.flush();
                if (r.stallMs > 0) {
                    try {
                        Thread.sleep(r.stallMs);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return; // closing with bytes missing drops the connection
            }
            out.write(r.bytes, (int) start, len);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        pool.shutdownNow();
    }
}
