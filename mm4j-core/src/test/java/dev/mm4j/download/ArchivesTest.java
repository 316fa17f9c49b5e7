package dev.mm4j.download;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ArchivesTest {
    @TempDir Path tmp;

    private Path archive(Map<String, String> entries) throws IOException {
        Path a = tmp.resolve("a" + System.nanoTime() + ".tar.gz");
        Files.write(a, TarFixtures.tarGz(entries));
        return a;
    }

    @Test
    void extractsRegularFiles() throws Exception {
        var m = new LinkedHashMap<String, String>();
        m.put("./", "");
        m.put("data/", "");
        m.put("data/vocabs/", "");
        m.put("data/vocabs/answers_textvqa_more_than_1.txt", "<unk>\nyes\nno\n");
        m.put("./data/vocabs/vocabulary_100k.txt", "a\nb\n");
        m.put("data/link", "->/etc/passwd");
        Path dest = tmp.resolve("out");
        List<Path> files = Archives.extractTarGz(archive(m), dest);
        assertEquals(2, files.size());
        assertEquals("<unk>\nyes\nno\n", Files.readString(dest.resolve("data/vocabs/answers_textvqa_more_than_1.txt")));
        assertEquals("a\nb\n", Files.readString(dest.resolve("data/vocabs/vocabulary_100k.txt")));
        assertFalse(Files.exists(dest.resolve("data/link"), java.nio.file.LinkOption.NOFOLLOW_LINKS));

        Path only = tmp.resolve("only");
        assertEquals(1, Archives.extractTarGz(archive(m), only, n -> n.endsWith("more_than_1.txt")).size());
    }

    @Test
    void refusesPathTraversal() throws Exception {
        Path dest = tmp.resolve("out");
        for (String evil : List.of("../evil.txt", "data/../../evil.txt", "/tmp/evil-abs.txt")) {
            var m = new LinkedHashMap<String, String>();
            m.put("ok.txt", "fine");
            m.put(evil, "pwned");
            var e = assertThrows(IOException.class, () -> Archives.extractTarGz(archive(m), dest), evil);
            assertTrue(e.getMessage().contains("unsafe entry"), e.getMessage());
        }
        assertFalse(Files.exists(tmp.resolve("evil.txt")));
        assertFalse(Files.exists(Path.of("/tmp/evil-abs.txt")));
    }
}
