package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.spark.SparkFixtures;
import dev.mm4j.spark.SparkSessions;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code batch-predict} through the product's command line on Spark's mini standalone cluster,
 * {@code local-cluster[2,1,1024]}: a master and two workers in this JVM, each worker launching an executor JVM of
 * its own, so the job's code must be shipped to them and everything a task uses must be serialisable. The
 * output must equal {@code evaluate}'s on the same bundle and split, also when an executor JVM is killed
 * (SIGKILL) while one of its tasks is reading an image: the test turns that image into a named pipe, and the
 * moment an executor opens the pipe is the moment the test kills that executor (no timing involved).
 *
 * <p>Every listener of the run (driver, master, workers, their web UIs, executors) is on the loopback: the test
 * samples the sockets of this JVM and its executor JVMs while the first run goes on.
 *
 * <p>A worker builds its executors' class path from {@code SPARK_HOME/jars} and needs {@code SPARK_SCALA_VERSION}
 * in its environment; the spark profile sets both for the tests' JVM, and this test fills {@code SPARK_HOME/jars}
 * with links to the jars of its own class path (the product's classes are not there: batch-predict ships them).
 */
class LocalClusterTest {
    static final String MASTER = "local-cluster[2,1,1024]";
    /** Executors JIT with C1 only: they run for seconds, and a full JIT would compete with them for the cores. */
    static final String EXECUTOR_JVM = "spark.executor.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";
    static final Pattern ACCURACY = Pattern.compile("VQA accuracy [0-9.]+% over \\d+ questions");
    static final Pattern SKIPPED = Pattern.compile("\\d+ questions skipped .*");

    @TempDir
    Path tmp;

    @Test
    void batchPredictOnExecutorJvmsEqualsEvaluateAlsoWhenAnExecutorIsKilledMidJob() throws Exception {
        sparkHomeOfThisClassPath();
        SparkFixtures.Fixture f = SparkFixtures.get();
        Path data = copy(f.data(), tmp.resolve("data"));
        String[] split = {"--model", f.bundle().toString(), "--data", data.toString(), "--split", "val", "--batch-size", "4"};

        Path reference = tmp.resolve("evaluate.json");
        String evaluated = cli(concat(new String[] {"evaluate", "--predictions", reference.toString()}, split));

        long t0 = System.nanoTime();
        Path out1 = tmp.resolve("cluster");
        String run1;
        try (Listeners listeners = new Listeners()) {
            run1 = cli(concat(new String[] {"batch-predict", "--master", MASTER, "--partitions", "4", "--out", out1.toString(),
                    "--conf", "spark.executor.memory=768m", "--conf", EXECUTOR_JVM}, split));
            listeners.close();
            System.out.println("listeners of the test JVM and its executor JVMs during the run: " + listeners.seen.keySet());
            // the driver's, the master's and the two workers' (web UIs included) in this JVM, and the executors'
            assertTrue(listeners.seen.size() >= 8, "listeners seen: " + listeners.seen.keySet());
            assertTrue(listeners.seen.keySet().stream().anyMatch(l -> !l.endsWith("(pid " + ProcessHandle.current().pid() + ")")),
                    "an executor JVM's listener seen: " + listeners.seen.keySet());
            assertEquals(Set.of(), listeners.outsideLoopback(), "listeners outside the loopback");
        }
        System.out.printf("local-cluster run: %.1f s%n", (System.nanoTime() - t0) / 1e9);
        assertTrue(run1.contains("37 of 40 questions predicted on " + MASTER + " in 4 partitions"), run1);
        assertSameAsEvaluate(evaluated, reference, run1, out1);

        // the second run: one image is a named pipe; the executor that opens it is killed, the retry is served
        JsonNode records = new ObjectMapper().readTree(data.resolve("TextVQA_0.5.1_val.json").toFile()).get("data");
        Path image = data.resolve("train_images").resolve(records.get(30).get("image_id").asText() + ".jpg");
        for (int i = 0; i < records.size(); i++) {
            assertTrue(i == 30 || !records.get(i).get("image_id").equals(records.get(30).get("image_id")), "image of record 30 is its own");
        }
        byte[] bytes = Files.readAllBytes(image);
        Files.delete(image);
        Process mkfifo = new ProcessBuilder("mkfifo", image.toString()).inheritIO().start();
        assertEquals(0, mkfifo.waitFor());
        PipeServer pipe = new PipeServer(image, bytes);
        pipe.start();
        Path out2 = tmp.resolve("cluster-killed");
        t0 = System.nanoTime();
        String run2;
        try {
            run2 = cli(concat(new String[] {"batch-predict", "--master", MASTER, "--partitions", "4", "--out", out2.toString(),
                    "--conf", "spark.executor.memory=768m", "--conf", EXECUTOR_JVM}, split));
        } finally {
            pipe.stop();
        }
        System.out.printf("local-cluster run with an executor killed: %.1f s%n", (System.nanoTime() - t0) / 1e9);
        assertNotNull(pipe.killed.getNow(null), "an executor was killed while reading " + image);
        assertTrue(pipe.killed.get().contains("CoarseGrainedExecutorBackend"), pipe.killed.get());
        assertTrue(pipe.served >= 1, "the retried task read the image");
        assertSameAsEvaluate(evaluated, reference, run2, out2);

        try (SparkSession spark = SparkSessions.open("local[1]", "test")) {
            List<Row> a = spark.read().parquet(out1.resolve("predictions.parquet").toString()).orderBy("position").collectAsList();
            List<Row> b = spark.read().parquet(out2.resolve("predictions.parquet").toString()).orderBy("position").collectAsList();
            assertEquals(37, a.size());
            assertEquals(a, b, "predictions.parquet of the run with a killed executor");
        }
    }

    static void assertSameAsEvaluate(String evaluated, Path reference, String run, Path out) throws IOException {
        assertEquals(-1, Files.mismatch(reference, out.resolve("predictions.json")), "predictions.json byte for byte");
        assertEquals(find(ACCURACY, evaluated), find(ACCURACY, run), run);
        assertEquals(find(SKIPPED, evaluated), find(SKIPPED, run), run);
        assertTrue(find(SKIPPED, run).startsWith("3 questions skipped"), run);
    }

    /**
     * Serves a named pipe: the first process that opens it for reading is killed (kill -9), every later reader
     * gets the image's bytes.
     */
    static final class PipeServer implements Runnable {
        final Path fifo;
        final byte[] bytes;
        final CompletableFuture<String> killed = new CompletableFuture<>();
        final AtomicBoolean stopping = new AtomicBoolean();
        volatile int served;
        final Thread thread = new Thread(this, "fifo server");

        PipeServer(Path fifo, byte[] bytes) {
            this.fifo = fifo;
            this.bytes = bytes;
        }

        void start() {
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void run() {
            try {
                while (!stopping.get()) {
                    try (OutputStream out = new FileOutputStream(fifo.toFile())) { // blocks until a reader opens it
                        if (stopping.get()) {
                            return;
                        }
                        if (!killed.isDone()) {
                            ProcessHandle reader = readerOf(fifo).orElseThrow(() -> new IllegalStateException("no reader of " + fifo));
                            String command = reader.info().commandLine().orElse("pid " + reader.pid());
                            reader.destroyForcibly();
                            reader.onExit().get(60, TimeUnit.SECONDS);
                            killed.complete(command);
                            continue;
                        }
                        out.write(bytes);
                        served++;
                    } catch (IOException e) {
                        // the reader went away; the next one opens the pipe again
                    }
                }
            } catch (Exception e) {
                killed.completeExceptionally(e);
            }
        }

        void stop() throws Exception {
            stopping.set(true);
            try (InputStream in = new FileInputStream(fifo.toFile())) { // releases a server waiting for a reader
                byte[] buf = new byte[8192];
                while (in.read(buf) >= 0) {
                    // drain (a pipe cannot seek, so no readAllBytes)
                }
            }
            thread.join(10_000);
        }

        /** The process below this JVM that has {@code file} open. */
        static Optional<ProcessHandle> readerOf(Path file) throws IOException {
            Path target = file.toRealPath();
            for (ProcessHandle p : ProcessHandle.current().descendants().toList()) {
                try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(p.pid()), "fd"))) {
                    for (Path fd : fds.toList()) {
                        try {
                            if (Files.readSymbolicLink(fd).equals(target)) {
                                return Optional.of(p);
                            }
                        } catch (IOException e) {
                            // closed meanwhile
                        }
                    }
                } catch (IOException e) {
                    // the process ended meanwhile
                }
            }
            return Optional.empty();
        }
    }

    /** SPARK_HOME/jars (SPARK_HOME set by the spark profile) as links to the jars of this JVM's class path. */
    static void sparkHomeOfThisClassPath() throws IOException {
        String home = System.getenv("SPARK_HOME");
        assertNotNull(home, "SPARK_HOME (set by the spark profile's surefire configuration)");
        assertEquals("2.13", System.getenv("SPARK_SCALA_VERSION"));
        Path jars = Path.of(home, "jars");
        if (Files.isDirectory(jars)) {
            dev.mm4j.util.FileTrees.delete(jars);
        }
        Files.createDirectories(jars);
        int n = 0;
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path p = Path.of(entry);
            if (entry.endsWith(".jar") && Files.isRegularFile(p)) {
                Files.createSymbolicLink(jars.resolve(String.format("%04d-%s", n++, p.getFileName())), p.toAbsolutePath());
            }
        }
        assertTrue(n > 50, "jars on the class path: " + n);
    }

    static String cli(String... args) {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        int rc = SparkMainTest.run(stdout, args);
        String text = stdout.toString(StandardCharsets.UTF_8);
        System.out.print(text);
        assertEquals(0, rc, args[0] + ": " + text);
        return text;
    }

    static String find(Pattern p, String text) {
        Matcher m = p.matcher(text);
        assertTrue(m.find(), p + " in " + text);
        return m.group();
    }

    static String[] concat(String[] a, String[] b) {
        List<String> all = new ArrayList<>(List.of(a));
        all.addAll(List.of(b));
        return all.toArray(String[]::new);
    }

    static Path copy(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path t = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(t);
                } else {
                    Files.copy(p, t);
                }
            }
        }
        return to;
    }
}
