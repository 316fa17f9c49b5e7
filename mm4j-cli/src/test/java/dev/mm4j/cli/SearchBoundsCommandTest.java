package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.serve.TinyIndex;
import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.Padding;
import dev.mm4j.flava.FlavaForRetrieval;
import dev.mm4j.inference.TinyBundle;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Usage errors of {@code search} (-k, --candidates) and {@code serve} (a retrieval bundle as --model): one line, exit 2. */
class SearchBoundsCommandTest {
    @TempDir Path tmp;

    @Test
    void hugeKAndCandidatesAreOneLineUsageErrors() throws Exception {
        Path bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path index = TinyIndex.build(tmp, bundle, 3);
        for (String[] opt : new String[][] {{"-k", "1000000000"}, {"-k", "2147483647"}, {"--candidates", "1000000000"}}) {
            StringWriter err = new StringWriter();
            int code = Main.commandLine().setErr(new PrintWriter(err)).execute("search", "--index", index.toString(),
                    "--threads", "1", opt[0], opt[1], "a sign");
            assertEquals(2, code, err.toString());
            String first = err.toString().lines().findFirst().orElse("");
            assertTrue(first.startsWith("error: -k and --candidates must be from 1 to 10000, got "), err.toString());
            assertFalse(err.toString().contains("\tat ") || err.toString().contains("OutOfMemoryError"), err.toString());
        }
        StringWriter out = new StringWriter();
        Main.commandLine().setOut(new PrintWriter(out)).execute("search", "--help");
        assertTrue(out.toString().contains("1 to 10000"), out.toString());
    }

    @Test
    void aRetrievalBundleAsModelIsRefusedBeforeListening() throws Exception {
        Path retrieval = tmp.resolve("retrieval");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            ModelBundle.Info info = new ModelBundle.Info();
            info.maxLength = 16;
            ModelBundle.writeRetrieval(retrieval, FlavaForRetrieval.create(TinyBundle.config(), m), info, null);
        }
        assertTrue(ModelBundle.isRetrieval(retrieval));
        assertFalse(ModelBundle.isRetrieval(TinyBundle.write(tmp.resolve("vqa"), Padding.DYNAMIC)));
        StringWriter err = new StringWriter();
        int code = Main.commandLine().setErr(new PrintWriter(err)).execute("serve", "--model", retrieval.toString(), "--port", "0");
        assertEquals(2, code, err.toString());
        assertTrue(err.toString().contains("is a retrieval model (embeddings, no answers): pass it as --embed-model "
                + retrieval), err.toString());
        assertFalse(err.toString().contains("listening on"), err.toString());
    }
}
