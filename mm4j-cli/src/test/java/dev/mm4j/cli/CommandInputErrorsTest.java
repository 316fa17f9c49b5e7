package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.serve.TinyIndex;
import dev.mm4j.data.Padding;
import dev.mm4j.inference.TinyBundle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad command-line input gets a one-line error naming what is wrong, and the usage exit code where it is usage. */
class CommandInputErrorsTest {
    @TempDir Path tmp;

    static HuggingFaceFoldersTest.Run run(String... args) {
        return HuggingFaceFoldersTest.run(args);
    }

    static void assertOneLineError(HuggingFaceFoldersTest.Run r, int rc, String start) {
        assertEquals(rc, r.rc(), r.err());
        assertTrue(r.err().startsWith("error: " + start), r.err());
        assertEquals(2, r.err().lines().count(), r.err()); // the message and the MM4J_DEBUG hint
        assertEquals("", r.out(), "nothing printed on stdout");
    }

    @Test
    void classifyRefusesALabelGivenTwice() throws Exception {
        Path model = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path image = Files.write(tmp.resolve("sign.png"), TinyBundle.png(1, 64, 48));
        assertOneLineError(run("classify", "--model", model.toString(), "--labels", "stop,open, stop", image.toString()), 2,
                "label 'stop' is given twice: give each label once");
        HuggingFaceFoldersTest.Run ok = run("classify", "--model", model.toString(), "--labels", "stop,open", image.toString());
        assertEquals(0, ok.rc(), ok.err());
        assertEquals(3, ok.out().lines().count(), ok.out());
    }

    @Test
    void searchRefusesAnEmptyQueryTextAsTheServerDoes() throws Exception {
        Path model = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path index = TinyIndex.build(tmp, model, 2);
        for (String q : List.of("", "   ")) {
            assertOneLineError(run("search", "--index", index.toString(), q), 2, "the query text is empty");
        }
        HuggingFaceFoldersTest.Run ok = run("search", "--index", index.toString(), "a sign", "-k", "2");
        assertEquals(0, ok.rc(), ok.err());
        assertEquals(2, ok.out().lines().count(), ok.out());
    }

    @Test
    void aFolderGivenWhereAFileBelongsIsNamedInTheError() throws Exception {
        Path model = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path index = TinyIndex.build(tmp, model, 2);
        Path dir = Files.createDirectories(tmp.resolve("a folder"));
        String m = model.toString();
        List<List<String>> commands = List.of(
                List.of("classify", "--model", m, "--labels", "stop,open", dir.toString()),
                List.of("predict", "--model", m, "--image", dir.toString(), "-q", "what?"),
                List.of("search", "--index", index.toString(), "--image", dir.toString()),
                List.of("classify", "--model", tmp.resolve("images").resolve("img100.png").toString(), "--config", dir.toString(),
                        "--labels", "a,b", tmp.resolve("images").resolve("img100.png").toString()),
                List.of("finetune", "--settings", dir.toString(), "--out", tmp.resolve("run1").toString()),
                List.of("finetune", "--model-config", dir.toString(), "--out", tmp.resolve("run2").toString()),
                List.of("finetune", "--vocab", dir.toString(), "--data", tmp.resolve("images").toString(), "--out",
                        tmp.resolve("run3").toString()));
        List<String> unnamed = new java.util.ArrayList<>();
        for (List<String> c : commands) {
            HuggingFaceFoldersTest.Run r = run(c.toArray(String[]::new));
            String first = r.err().lines().findFirst().orElse("");
            System.out.println(String.join(" ", c) + "\n  -> " + r.rc() + " " + first);
            if (r.rc() == 0 || !first.contains(dir.toString()) || !first.contains("directory")) {
                unnamed.add(c + " -> " + r.rc() + " " + first);
            }
        }
        assertEquals(List.of(), unnamed, "errors that do not name the folder");
    }

    /** bench --anchors checks the reference environment before our own bench runs: a wrong path fails at once. */
    @Test
    void benchAnchorsNamesWhatIsMissingBeforeItRuns() throws Exception {
        Path python = tmp.resolve("no-python");
        HuggingFaceFoldersTest.Run r = run("bench", "--anchors", python.toString());
        assertEquals(2, r.rc(), r.err());
        assertTrue(r.err().startsWith("error: --anchors: " + python + " is not an executable Python interpreter"), r.err());
        assertEquals("", r.out(), "nothing measured");
        Path scripts = Files.createDirectories(tmp.resolve("scripts"));
        r = run("bench", "--anchors", "/bin/sh", "--anchors-scripts", scripts.toString());
        assertEquals(2, r.rc(), r.err());
        assertTrue(r.err().startsWith("error: --anchors-scripts: " + scripts + " holds no bench_anchors.py"), r.err());
        assertEquals("", r.out(), "nothing measured");
    }
}
