package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Mistakes in settings: one line naming the file, line and key, and the usage exit code 2 for file and --set alike. */
class FinetuneCommandTest {
    @TempDir Path tmp;

    /** Runs {@code mm4j args} as the launcher does; returns the exit code and stderr. */
    private static Object[] run(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setErr(new PrintWriter(err, true));
        int rc = cl.execute(args);
        return new Object[] {rc, err.toString()};
    }

    private Object[] withFile(String yaml) throws Exception {
        Path f = tmp.resolve("run.yaml");
        Files.writeString(f, yaml);
        return run("finetune", "--settings", f.toString(), "--data", tmp.toString(), "--out", tmp.resolve("out").toString());
    }

    private String firstLine(Object[] r) {
        return ((String) r[1]).lines().findFirst().orElse("");
    }

    @Test
    void aBadSettingsFileIsOneLineNamingFileLineAndKeyAndExits2() throws Exception {
        Path f = tmp.resolve("run.yaml");
        Object[] r = withFile("lr: 0.001\nbach_size: 8\n");
        assertEquals(2, r[0], (String) r[1]); // before: exit 1 and several lines of parser internals
        assertEquals("error: " + f + " line 2: unknown key 'bach_size' (the keys are those of OUT/settings.yaml)", firstLine(r));

        r = withFile("lr: 0.001\nbatch_size: eight\n");
        assertEquals(2, r[0]);
        assertEquals("error: " + f + " line 2: key 'batch_size': 'eight' is not an integer", firstLine(r));

        r = withFile("betas: 0.9\n");
        assertEquals(2, r[0]);
        assertTrue(firstLine(r).startsWith("error: " + f + " line 1: key 'betas': "), firstLine(r));

        r = withFile("lr: [1\n");
        assertEquals(2, r[0]);
        assertTrue(firstLine(r).startsWith("error: " + f + " line "), firstLine(r));

        r = run("finetune", "--settings", tmp.resolve("absent.yaml").toString(), "--data", tmp.toString());
        assertEquals(2, r[0]);
        assertEquals("error: settings file " + tmp.resolve("absent.yaml") + " does not exist", firstLine(r));
    }

    @Test
    void theSameMistakeViaSetIsTheSameKindOfLine() {
        Object[] r = run("finetune", "--data", tmp.toString(), "--set", "batch_size=eight");
        assertEquals(2, r[0]);
        assertEquals("error: --set: key 'batch_size': 'eight' is not an integer", firstLine(r));
        r = run("finetune", "--data", tmp.toString(), "--set", "bach_size=8");
        assertEquals(2, r[0]);
        assertEquals("error: --set: unknown key 'bach_size' (the keys are those of OUT/settings.yaml)", firstLine(r));
        r = run("finetune", "--data", tmp.toString(), "--set", "betas=[0.9");
        assertEquals(2, r[0]);
        assertTrue(firstLine(r).startsWith("error: --set betas=[0.9: "), firstLine(r));
    }

    @Test
    void vocabBuildAndItsMinimumCountAreSettings() throws Exception {
        FinetuneCommand cmd = new FinetuneCommand();
        new CommandLine(cmd).parseArgs("--data", "x.jsonl", "--vocab", "build", "--vocab-min-count", "3");
        dev.mm4j.train.FinetuneSettings s = FinetuneCommand.settings("default", null, cmd.overrides());
        assertEquals("build", s.vocab);
        assertEquals(3, s.vocabMinCount);
        assertTrue(s.buildsVocab());
        assertEquals(1, FinetuneCommand.settings("default", null, java.util.Map.of()).vocabMinCount);
    }
}
