package dev.mm4j.download;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mm4j.report.ProgressReporter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(30)
class DownloaderTest {
    static final int SIZE = 300_000;
    static final int K = 100_000;

    @TempDir Path cache;
    FixtureServer server;
    byte[] data;

    @BeforeEach
    void start() throws IOException {
        server = new FixtureServer();
        data = new byte[SIZE];
        new Random(42).nextBytes(data);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    Downloader downloader(int attempts) {
        return new Downloader(cache, Downloader.Options.defaults()
                .withMaxAttempts(attempts)
                .withRetryBackoff(Duration.ZERO)
                .withReadTimeout(Duration.ofSeconds(5))
                .withProgress(ProgressReporter.Mode.OFF));
    }

    /** Where the cache keeps the fixture server's {@code path} ({@link CacheLayout}). */
    Path at(String path) {
        return cache.resolve(CacheLayout.pathOf(java.net.URI.create(server.url(path))));
    }

    static String sha(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void normalDownloadIsVerifiedAndRecorded() throws Exception {
        server.put("/files/a.bin", data);
        Path p = downloader(1).fetch(Downloader.Request.of(server.url("/files/a.bin")).withSha256(sha(data)));
        assertEquals(at("/files/a.bin"), p);
        assertArrayEquals(data, Files.readAllBytes(p));
        assertEquals(sha(data), Downloader.recordedSha(p));
        assertFalse(Files.exists(at("/files/a.bin.part")));
        assertEquals(1, server.seen("/files/a.bin").size());
        assertNull(server.seen("/files/a.bin").get(0).range());
    }

    @Test
    void droppedConnectionIsResumedWithRange() throws Exception {
        var r = server.put("/drop/b.bin", data);
        r.dropAfter = K;
        r.dropTimes = 1;
        Path p = downloader(3).fetch(Downloader.Request.of(server.url("/drop/b.bin")).withPath("sub/b.bin"));
        assertArrayEquals(data, Files.readAllBytes(p));
        var seen = server.seen("/drop/b.bin");
        assertEquals(2, seen.size());
        assertNull(seen.get(0).range());
        assertTrue(seen.get(1).range() != null && seen.get(1).range().startsWith("bytes="), seen.toString());
        long resumedAt = Long.parseLong(seen.get(1).range().replaceAll("bytes=(\\d+)-", "$1"));
        assertTrue(resumedAt > 0 && resumedAt <= K, "resumed at " + resumedAt);
        assertEquals(sha(data), Downloader.recordedSha(p));
    }

    @Test
    void partFileSurvivesAFailedCallAndTheNextCallResumes() throws Exception {
        var r = server.put("/drop/c.bin", data);
        r.dropAfter = K;
        r.dropTimes = 1;
        IOException e = assertThrows(IOException.class,
                () -> downloader(1).fetch(Downloader.Request.of(server.url("/drop/c.bin"))));
        assertTrue(e.getMessage().contains(server.url("/drop/c.bin")), e.getMessage());
        Path part = at("/drop/c.bin.part");
        assertTrue(Files.size(part) > 0 && Files.size(part) <= K);
        assertFalse(Files.exists(at("/drop/c.bin")));
        long have = Files.size(part);

        Path p = downloader(1).fetch(Downloader.Request.of(server.url("/drop/c.bin")).withSha256(sha(data)));
        assertArrayEquals(data, Files.readAllBytes(p));
        assertEquals("bytes=" + have + "-", server.seen("/drop/c.bin").get(1).range());
        assertFalse(Files.exists(part));
    }

    @Test
    void serverIgnoringRangeRestartsFromZero() throws Exception {
        var r = server.put("/norange/d.bin", data);
        r.honorRange = false;
        r.dropAfter = K;
        r.dropTimes = 1;
        Path p = downloader(2).fetch(Downloader.Request.of(server.url("/norange/d.bin")).withSha256(sha(data)));
        assertArrayEquals(data, Files.readAllBytes(p));
        var seen = server.seen("/norange/d.bin");
        assertEquals(2, seen.size());
        assertTrue(seen.get(1).range() != null, "the retry asked for a range");
    }

    @Test
    void completePartFileIsAcceptedOn416() throws Exception {
        server.put("/files/e.bin", data);
        Files.createDirectories(at("/files/e.bin").getParent());
        Files.write(at("/files/e.bin.part"), data);
        Path p = downloader(1).fetch(Downloader.Request.of(server.url("/files/e.bin")).withExpectedSize(SIZE));
        assertArrayEquals(data, Files.readAllBytes(p));
        assertEquals("bytes=" + SIZE + "-", server.seen("/files/e.bin").get(0).range());
    }

    @Test
    void wrongChecksumIsAnErrorAndLeavesNothingInPlace() throws Exception {
        server.put("/files/f.bin", data);
        byte[] other = data.clone();
        other[7] ^= 1;
        String url = server.url("/files/f.bin");
        var e = assertThrows(Downloader.ChecksumException.class,
                () -> downloader(1).fetch(Downloader.Request.of(url).withSha256(sha(other))));
        assertTrue(e.getMessage().contains(url) && e.getMessage().contains(sha(other))
                && e.getMessage().contains(sha(data)), e.getMessage());
        assertFalse(Files.exists(at("/files/f.bin")));
        assertFalse(Files.exists(at("/files/f.bin.part")));
        assertFalse(Files.exists(at("/files/f.bin.sha256")));
    }

    @Test
    void cacheHitSendsNoRequest() throws Exception {
        server.put("/files/g.bin", data);
        var req = Downloader.Request.of(server.url("/files/g.bin"));
        Path p1 = downloader(1).fetch(req);
        assertEquals(1, server.seen("/files/g.bin").size());
        Downloader d = downloader(1);
        Path p2 = d.fetch(req);
        Path p3 = d.fetch(req.withSha256(sha(data)));
        assertEquals(p1, p2);
        assertEquals(p1, p3);
        assertEquals(0, d.requestCount());
        assertEquals(1, server.seen("/files/g.bin").size());
    }

    @Test
    void cachedFileWithAnotherRecordedShaIsFetchedAgain() throws Exception {
        server.put("/files/h.bin", data);
        Files.createDirectories(at("/files/h.bin").getParent());
        Files.writeString(at("/files/h.bin"), "stale");
        Path p = downloader(1).fetch(Downloader.Request.of(server.url("/files/h.bin")).withSha256(sha(data)));
        assertArrayEquals(data, Files.readAllBytes(p));
        assertEquals(1, server.seen("/files/h.bin").size());
    }

    @Test
    void notFoundNamesTheUrlAndIsNotRetried() {
        String url = server.url("/nope/missing.bin");
        var e = assertThrows(Downloader.HttpStatusException.class,
                () -> downloader(3).fetch(Downloader.Request.of(url)));
        assertEquals(404, e.status());
        assertTrue(e.getMessage().contains("404") && e.getMessage().contains(url), e.getMessage());
        assertEquals(1, server.seen("/nope/missing.bin").size());
        assertFalse(Files.exists(at("/nope/missing.bin")));
    }

    @Test
    void aRefusedConnectionFailsAtOnceInOneClearLine() throws Exception {
        int port;
        try (java.net.ServerSocket free = new java.net.ServerSocket(0)) {
            port = free.getLocalPort(); // closed again: nobody listens there
        }
        String url = "http://127.0.0.1:" + port + "/files/x.bin";
        Downloader d = new Downloader(cache, Downloader.Options.defaults().withProgress(ProgressReporter.Mode.OFF)); // 5 attempts, 2 s backoff
        long t0 = System.nanoTime();
        var e = assertThrows(IOException.class, () -> d.fetch(Downloader.Request.of(url)));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        // before: 5 attempts over ~21 s, then "...partial data kept in x.bin.part for a later resume: null"
        assertTrue(ms < 5000, "took " + ms + " ms");
        assertEquals(1, d.requestCount());
        assertEquals("cannot connect to 127.0.0.1:" + port + " for " + url + ": connection refused; nothing was downloaded",
                e.getMessage().toLowerCase(java.util.Locale.ROOT));
        assertFalse(Files.exists(cache.resolve("x.bin.part")));
    }

    @Test
    void stalledServerHitsTheReadTimeout() {
        var r = server.put("/slow/i.bin", data);
        r.dropAfter = 1000;
        r.dropTimes = 1;
        r.stallMs = 3000;
        Downloader d = new Downloader(cache, Downloader.Options.defaults().withMaxAttempts(1)
                .withReadTimeout(Duration.ofMillis(300)).withProgress(ProgressReporter.Mode.OFF));
        long t0 = System.nanoTime();
        var e = assertThrows(IOException.class, () -> d.fetch(Downloader.Request.of(server.url("/slow/i.bin"))));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 2500, "took " + ms + " ms");
        assertTrue(e.getMessage().contains("/slow/i.bin"), e.getMessage());
    }

    @Test
    void expectedSizeMismatchIsAnError() {
        server.put("/files/j.bin", data);
        var e = assertThrows(IOException.class, () -> downloader(1)
                .fetch(Downloader.Request.of(server.url("/files/j.bin")).withExpectedSize(SIZE + 1)));
        assertTrue(e.getMessage().contains("size mismatch") && e.getMessage().contains("/files/j.bin"),
                e.getMessage());
        assertFalse(Files.exists(at("/files/j.bin")));
        assertFalse(Files.exists(at("/files/j.bin.part")));
    }

    @Test
    void plainProgressLinesDoNotDisturbTheDownload() throws Exception {
        server.put("/files/k.bin", data);
        Downloader d = new Downloader(cache, Downloader.Options.defaults().withMaxAttempts(1)
                .withProgress(ProgressReporter.Mode.PLAIN));
        assertArrayEquals(data, Files.readAllBytes(d.fetch(Downloader.Request.of(server.url("/files/k.bin")))));
    }

    @Test
    void fileNamesAndPathsAreChecked() throws Exception {
        assertEquals("x.pt", Downloader.fileNameFromUrl(java.net.URI.create("https://h/a/b/x.pt")));
        assertEquals("a b.txt", Downloader.fileNameFromUrl(java.net.URI.create("https://h/a/a%20b.txt")));
        assertThrows(IllegalArgumentException.class,
                () -> Downloader.fileNameFromUrl(java.net.URI.create("https://h/")));
        assertThrows(IllegalArgumentException.class,
                () -> Downloader.fileNameFromUrl(java.net.URI.create("https://h/a/..%2F..%2Fevil")));
        assertThrows(IOException.class, () -> Downloader.resolveInside(cache, "../x"));
        assertThrows(IOException.class, () -> Downloader.resolveInside(cache, "/etc/passwd"));
        assertThrows(IOException.class, () -> Downloader.resolveInside(cache, "a/../../x"));
        assertEquals(cache.resolve("a/b.txt").toAbsolutePath().normalize(), Downloader.resolveInside(cache, "a/b.txt"));
        assertThrows(IOException.class,
                () -> downloader(1).fetch(Downloader.Request.of(server.url("/x")).withPath("../escape.bin")));
        assertTrue(server.seen.isEmpty());
    }
}
