package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.data.Padding;
import dev.mm4j.inference.TinyBundle;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FloatVectorValues;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.store.FSDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code mm4j index} under faults: unusable files, a kill -9 in a first run, a corrupt index, settings. */
class IndexCommandTest {
    @TempDir Path tmp;

    private record Run(int rc, String out, String err) {}

    private static Run run(String... args) {
        PrintStream stdout = System.out;
        PrintStream stderr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true));
            System.setErr(new PrintStream(err, true));
            return new Run(Main.commandLine().execute(args), out.toString(), err.toString());
        } finally {
            System.setOut(stdout);
            System.setErr(stderr);
        }
    }

    /** One index entry: what is stored, and the vector. */
    private record Entry(String sha256, String text, float[] vector) {}

    /** Every entry of an index, by path. */
    private static Map<String, Entry> entries(Path index) throws Exception {
        Map<String, Entry> out = new TreeMap<>();
        try (var dir = FSDirectory.open(index); DirectoryReader r = DirectoryReader.open(dir)) {
            for (LeafReaderContext leaf : r.leaves()) {
                FloatVectorValues v = leaf.reader().getFloatVectorValues("vector");
                var live = leaf.reader().getLiveDocs();
                for (int doc = v.nextDoc(); doc != DocIdSetIterator.NO_MORE_DOCS; doc = v.nextDoc()) {
                    if (live != null && !live.get(doc)) {
                        continue;
                    }
                    var d = leaf.reader().storedFields().document(doc);
                    assertNull(out.put(d.get("path"), new Entry(d.get("sha256"), d.get("text"), v.vectorValue().clone())),
                            "one entry per path");
                }
            }
        }
        return out;
    }

    private static final Pattern SUMMARY = Pattern.compile("(\\d+) added, (\\d+) replaced, (\\d+) unchanged \\(skipped\\); (\\d+) images");

    /**
     * A first run over 36 images is killed with SIGKILL right after its first commit (every 4 images); the images
     * are large (2400 x 1800: each takes a while to decode) so that the run is far from done when the kill comes. The
     * rerun embeds only the images the killed run had not committed, and ends with an uninterrupted run's entries.
     */
    @Test
    @Timeout(600)
    void aKilledFirstRunResumesFromItsLastCommit() throws Exception {
        Path model = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path images = Files.createDirectories(tmp.resolve("images"));
        List<String> lines = new ArrayList<>();
        int n = 36;
        for (int i = 0; i < n; i++) {
            String name = "img" + (100 + i) + ".png";
            Files.write(images.resolve(name), TinyBundle.png(100 + i, 2400, 1800));
            lines.add("{\"image\": \"" + name + "\", \"text\": \"sign " + i + "\"}");
        }
        Path manifest = Files.write(images.resolve("captions.jsonl"), lines);
        Path index = tmp.resolve("index");
        String[] args = {"index", "--model", model.toString(), "--images", manifest.toString(), "--out", index.toString(),
                "--commit-every", "4", "--threads", "1"};

        Path log = tmp.resolve("child.log");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "-Xmx512m", "-Djava.awt.headless=true",
                "-Dai.djl.offline=true", Main.class.getName()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
            while (!(Files.exists(log) && Files.readString(log).contains(": committed "))) {
                assertTrue(p.isAlive(), () -> "the child ended: " + read(log));
                assertTrue(System.nanoTime() < deadline, () -> "no commit in 300 s: " + read(log));
                Thread.sleep(5);
            }
        } finally {
            p.destroyForcibly(); // SIGKILL
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        }
        assertNotEquals(0, p.exitValue(), "killed, not finished: " + read(log));
        Map<String, Entry> committed = entries(index);
        int c = committed.size();
        assertTrue(c >= 4 && c < n && c % 4 == 0, c + " images committed; " + read(log));
        System.out.println("killed after " + c + " of " + n + " images were committed");

        // the run is started again
        Run rerun = run(args);
        assertEquals(0, rerun.rc(), rerun.out() + rerun.err());
        Matcher m = SUMMARY.matcher(rerun.out());
        assertTrue(m.find(), rerun.out());
        // before: no commit until the end, so the killed run left nothing and the rerun embedded all 36
        assertEquals(n - c, Integer.parseInt(m.group(1)), "embeds only what was not committed: " + rerun.out());
        assertEquals(c, Integer.parseInt(m.group(3)), rerun.out());
        assertEquals(n, Integer.parseInt(m.group(4)), rerun.out());

        // the same entries as one uninterrupted run
        Path reference = tmp.resolve("reference");
        Run once = run("index", "--model", model.toString(), "--images", manifest.toString(), "--out", reference.toString(),
                "--threads", "1");
        assertEquals(0, once.rc(), once.out() + once.err());
        Map<String, Entry> resumed = entries(index);
        Map<String, Entry> expected = entries(reference);
        assertEquals(n, expected.size());
        assertEquals(expected.keySet(), resumed.keySet());
        for (String path : expected.keySet()) {
            Entry want = expected.get(path);
            Entry got = resumed.get(path);
            assertEquals(want.sha256(), got.sha256(), path);
            assertEquals(want.text(), got.text(), path);
            assertArrayEquals(want.vector(), got.vector(), 1e-5f, path);
        }
        for (Map.Entry<String, Entry> e : committed.entrySet()) {
            assertArrayEquals(e.getValue().vector(), resumed.get(e.getKey()).vector(), e.getKey() + " kept as committed");
        }
    }

    private static String read(Path log) {
        try {
            return Files.exists(log) ? Files.readString(log) : "(no log)";
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    @Test
    void unusableFilesAreSkippedAndACorruptIndexIsRefusedInOneLine() throws Exception {
        Path model = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path images = Files.createDirectories(tmp.resolve("images"));
        for (int i = 0; i < 3; i++) {
            Files.write(images.resolve("img" + i + ".png"), TinyBundle.png(i, 64, 48));
        }
        Files.write(images.resolve("zero.jpg"), new byte[0]);
        Path index = tmp.resolve("index");
        Run r = run("index", "--model", model.toString(), "--images", images.toString(), "--out", index.toString());
        // before: exit 1 on zero.jpg, nothing indexed
        assertEquals(0, r.rc(), r.out() + r.err());
        assertTrue(r.out().contains("3 added, 0 replaced, 0 unchanged (skipped); 3 images in " + index
                + " (HNSW M 16, beam width 100, float32;"), r.out());
        assertTrue(r.out().contains("skipped 1 file(s) that could not be used {image undecodable=1}:\n  "
                + images.resolve("zero.jpg").toAbsolutePath() + ": image undecodable\n"), r.out());
        Run ok = run("search", "--index", index.toString(), "a sign", "-k", "2");
        assertEquals(0, ok.rc(), ok.err());
        assertEquals(2, ok.out().lines().count(), ok.out());

        Path cfs = index.resolve("_0.cfs");
        try (FileChannel ch = FileChannel.open(cfs, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long at = ch.size() / 2;
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1);
            ch.read(b, at);
            b.put(0, (byte) (b.get(0) ^ 0x40)).rewind();
            ch.write(b, at);
        }
        for (String[] cmd : List.of(new String[] {"search", "--index", index.toString(), "a sign"},
                new String[] {"search", "--index", index.toString(), "a sign", "--exact"},
                new String[] {"index", "--model", model.toString(), "--images", images.toString(), "--out", index.toString()})) {
            Run bad = run(cmd);
            assertEquals(1, bad.rc(), cmd[0] + ": " + bad.out() + bad.err());
            String first = bad.err().lines().findFirst().orElse("");
            assertTrue(first.startsWith("error: corrupt index " + index + ": _0.cfs: checksum failed"), bad.err());
            assertEquals("", bad.out(), "no hits from a corrupt index");
        }
        // serve --index: the server does not become ready on it
        Run serve = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(120),
                () -> run("serve", "--index", index.toString(), "--host", "127.0.0.1", "--port", "0"));
        assertEquals(1, serve.rc(), serve.out() + serve.err());
        assertTrue(serve.err().contains("error: corrupt index " + index + ": _0.cfs: checksum failed"), serve.err());
        assertFalse(serve.err().contains("ready:"), serve.err());
    }

    @Test
    void settingsAreRecordedAndADifferentOneIsAUsageError() throws Exception {
        Path model = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path images = Files.createDirectories(tmp.resolve("images"));
        for (int i = 0; i < 3; i++) {
            Files.write(images.resolve("img" + i + ".png"), TinyBundle.png(i, 64, 48));
        }
        Path index = tmp.resolve("index");
        Run r = run("index", "--model", model.toString(), "--images", images.toString(), "--out", index.toString(),
                "--hnsw-m", "8", "--beam-width", "50", "--quantization", "int8");
        assertEquals(0, r.rc(), r.out() + r.err());
        assertTrue(r.out().contains("(HNSW M 8, beam width 50, int8;"), r.out());
        Files.write(images.resolve("img3.png"), TinyBundle.png(3, 64, 48));
        r = run("index", "--model", model.toString(), "--images", images.toString(), "--out", index.toString());
        assertEquals(0, r.rc(), r.out() + r.err());
        assertTrue(r.out().contains("1 added, 0 replaced, 3 unchanged (skipped); 4 images in " + index
                + " (HNSW M 8, beam width 50, int8;"), r.out());
        r = run("index", "--model", model.toString(), "--images", images.toString(), "--out", index.toString(), "--hnsw-m", "16");
        assertEquals(2, r.rc(), r.out() + r.err());
        assertTrue(r.err().startsWith("error: " + index + " was built with --hnsw-m 8 (asked: 16): leave the option out"), r.err());
        r = run("index", "--model", model.toString(), "--images", images.toString(), "--out", tmp.resolve("x").toString(),
                "--quantization", "float16");
        assertEquals(2, r.rc(), r.out() + r.err());
        assertTrue(r.err().startsWith("error: quantization must be none or int8, got 'float16'"), r.err());
        r = run("index", "--model", model.toString(), "--images", images.toString(), "--out", tmp.resolve("x").toString(),
                "--commit-every", "0");
        assertEquals(2, r.rc(), r.out() + r.err());
        Run s = run("search", "--index", index.toString(), "a sign", "-k", "4");
        assertEquals(0, s.rc(), s.err());
        assertEquals(4, s.out().lines().count(), s.out());
    }
}
