package dev.mm4j.util;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DirectoryLockTest {
    @TempDir Path out;

    @Test
    void theLockFileIsRemovedOnACleanExitAndAStaleOneIsTakenOver() throws IOException {
        Path file = out.resolve(DirectoryLock.FILE);
        try (DirectoryLock lock = DirectoryLock.acquire(out, "a test")) {
            assertTrue(Files.readString(file).startsWith("pid " + ProcessHandle.current().pid() + ", since "));
            IOException e = assertThrows(IOException.class, () -> DirectoryLock.acquire(out, "a second test"));
            assertTrue(e.getMessage().contains("in use by a second test"), e.getMessage());
        }
        assertFalse(Files.exists(file), "a clean exit leaves no " + DirectoryLock.FILE);
        // a killed run's file (its process is gone, so is its OS lock): taken over, then removed on close
        Files.writeString(file, "pid 999999, since 2026-01-01T00:00:00Z\n");
        try (DirectoryLock lock = DirectoryLock.acquire(out, "a test")) {
            assertTrue(Files.readString(file).startsWith("pid " + ProcessHandle.current().pid()), Files.readString(file));
        }
        assertFalse(Files.exists(file));
        DirectoryLock.acquire(out, "a test").close(); // again: nothing left in the way
        assertFalse(Files.exists(file));
    }
}
