package dev.mm4j.util;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
    @TempDir Path dir;

    private static String perms(Path p) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }

    @Test
    void outputsGetThePermissionsOfAnyNewFileUnderTheUmask() throws Exception {
        // what the umask gives a plain new file and folder here (typically rw-r--r-- / rwxr-xr-x)
        Path plainFile = Files.createFile(dir.resolve("plain.txt"));
        Path plainDir = Files.createDirectory(dir.resolve("plain"));
        Path written = dir.resolve("out/report.txt");
        AtomicFiles.writeString(written, "hello\n");
        assertEquals("hello\n", Files.readString(written));
        // before: rw------- whatever the umask (Files.createTempFile), and rwx------ for checkpoint folders
        assertEquals(perms(plainFile), perms(written));
        assertEquals(perms(plainDir), perms(AtomicFiles.createTempDirectory(dir, ".x.tmp-")));
        try (Stream<Path> s = Files.list(written.getParent())) {
            assertEquals(List.of(written), s.toList(), "no temp file left");
        }
    }

    @Test
    void removesOnlyItsOwnStaleTempFiles() throws Exception {
        Path stale = AtomicFiles.createTempFile(dir, ".metrics.jsonl.", ".tmp");
        Path user = Files.writeString(dir.resolve("notes.tmp"), "mine");
        Path other = Files.writeString(dir.resolve(".hidden.tmp"), "mine too");
        assertEquals(1, AtomicFiles.removeStaleTemps(dir));
        assertFalse(Files.exists(stale));
        assertTrue(Files.exists(user) && Files.exists(other));
    }
}
