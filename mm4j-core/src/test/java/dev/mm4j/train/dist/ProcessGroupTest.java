package dev.mm4j.train.dist;

import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * libtorch's c10d through the native part, between real processes on 127.0.0.1: DJL's own arrays all-reduced in
 * place, one libtorch mapped per process, every listening socket on the loopback, and a rank killed with SIGKILL makes the other fail within the timeout.
 */
public class ProcessGroupTest {

    /** A rank's JVM, its output collected line by line. */
    public static final class Rank {
        public final Process process;
        public final List<String> lines = new ArrayList<>();
        final CompletableFuture<Void> ready = new CompletableFuture<>();
        final Thread reader;

        public Rank(String mainClass, String... args) throws IOException {
            List<String> cmd = new ArrayList<>(List.of(
                    ProcessHandle.current().info().command().orElse("java"),
                    "-Xmx1g", "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), mainClass));
            cmd.addAll(List.of(args));
            process = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String l; (l = r.readLine()) != null; ) {
                        synchronized (lines) {
                            lines.add(l);
                        }
                        if (l.equals("ready")) {
                            ready.complete(null);
                        }
                    }
                } catch (IOException ignored) {
                    // the process ended
                }
            });
            reader.setDaemon(true);
            reader.start();
        }

        public int await(long seconds) throws Exception {
            if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                fail("rank did not end within " + seconds + " s: " + output());
            }
            reader.join(5000);
            return process.exitValue();
        }

        public String value(String key) {
            synchronized (lines) {
                return lines.stream().filter(l -> l.startsWith(key + "=")).map(l -> l.substring(key.length() + 1))
                        .findFirst().orElseThrow(() -> new AssertionError("no " + key + " in " + lines));
            }
        }

        public String output() {
            synchronized (lines) {
                return String.join("\n", lines);
            }
        }
    }

    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @Test
    void twoRanksSumDjlArraysInPlaceWithOneLibtorchEach() throws Exception {
        String port = String.valueOf(freePort());
        Rank r0 = new Rank(C10dRank.class.getName(), port, "0", "2", "60", "sum");
        Rank r1 = new Rank(C10dRank.class.getName(), port, "1", "2", "60", "sum");
        assertEquals(0, r0.await(120), r0::output);
        assertEquals(0, r1.await(120), r1::output);
        for (Rank r : List.of(r0, r1)) {
            // (1 + 2) * [0..5] on both ranks; [0..4] + ([0..4] + 10)
            assertEquals("[0.0, 3.0, 6.0, 9.0, 12.0, 15.0]", r.value("fp32"), r::output);
            assertEquals("[10, 12, 14, 16, 18]", r.value("int64"), r::output);
            String[] libtorch = r.value("libtorch").split(",");
            assertEquals(1, libtorch.length, "exactly one libtorch_cpu.so mapped: " + r.value("libtorch"));
            assertTrue(libtorch[0].contains(".djl.ai"), "it is DJL's: " + libtorch[0]);
            // the store (rank 0) and Gloo listen on the loopback only: 127.0.0.1 (0100007F) or ::1
            String[] listening = r.value("listening").split(",");
            assertTrue(listening.length >= 1, r.value("listening"));
            for (String a : listening) {
                assertTrue(a.startsWith("0100007F:") || a.startsWith("00000000000000000000000001000000:"),
                        "listens on the loopback only: " + a);
            }
        }
    }

    @Test
    void aKilledRankMakesTheOtherFailWithinTheTimeout() throws Exception {
        String port = String.valueOf(freePort());
        int timeoutSeconds = 20;
        Rank r0 = new Rank(C10dRank.class.getName(), port, "0", "2", String.valueOf(timeoutSeconds), "stall");
        Rank r1 = new Rank(C10dRank.class.getName(), port, "1", "2", String.valueOf(timeoutSeconds), "stall");
        r1.ready.get(120, TimeUnit.SECONDS);
        Thread.sleep(500); // rank 0 is waiting in an all-reduce that rank 1 never joins
        long t0 = System.nanoTime();
        r1.process.destroyForcibly(); // SIGKILL
        assertEquals(3, r0.await(timeoutSeconds + 30), r0::output);
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(seconds < timeoutSeconds + 10, "rank 0 stopped " + seconds + " s after the kill");
        String error = r0.value("error");
        assertTrue(error.startsWith("rank 0 of 2: all-reduce failed"), error);
        assertTrue(error.contains("within 20.0 s"), "the timeout is printed: " + error);
        r1.await(30);
    }

    @Test
    void aRankThatHangsMakesTheOtherFailAfterTheTimeout() throws Exception {
        String port = String.valueOf(freePort());
        int timeoutSeconds = 5;
        Rank r0 = new Rank(C10dRank.class.getName(), port, "0", "2", String.valueOf(timeoutSeconds), "stall");
        Rank r1 = new Rank(C10dRank.class.getName(), port, "1", "2", String.valueOf(timeoutSeconds), "stall");
        try {
            r1.ready.get(120, TimeUnit.SECONDS);
            // SIGSTOP: rank 1 neither answers nor closes its connections
            assertEquals(0, new ProcessBuilder("kill", "-STOP", String.valueOf(r1.process.pid())).start().waitFor());
            assertEquals(3, r0.await(timeoutSeconds + 60), r0::output);
            long failedAfterMs = Long.parseLong(r0.value("failedAfterMs"));
            assertTrue(failedAfterMs >= timeoutSeconds * 1000L - 1000 && failedAfterMs < timeoutSeconds * 1000L + 15_000,
                    "rank 0 failed " + failedAfterMs + " ms into the all-reduce, with a " + timeoutSeconds + " s timeout");
            String error = r0.value("error");
            assertTrue(error.contains("within 5.0 s"), error);
        } finally {
            r1.process.destroyForcibly();
            r1.await(30);
        }
    }
}
