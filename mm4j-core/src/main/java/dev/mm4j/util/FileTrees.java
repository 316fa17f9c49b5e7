package dev.mm4j.util;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Folder helpers, and the check that a path a user gave as a file is one. */
public final class FileTrees {
    private FileTrees() {}

    /**
     * {@code file} when it is a readable file; else an {@link IllegalArgumentException} (a usage error) naming it as
     * the {@code what} it should be: "image PATH is a directory, not a file", "cannot read image PATH". Reading a
     * folder as a file would fail with a bare "Is a directory".
     */
    public static Path readableFile(Path file, String what) {
        notADirectory(file, what);
        if (!Files.isReadable(file)) {
            throw new IllegalArgumentException("cannot read " + what + " " + file);
        }
        return file;
    }

    /** {@code file} unless it is a folder: then an {@link IllegalArgumentException} naming it as the {@code what} it should be. */
    public static Path notADirectory(Path file, String what) {
        if (Files.isDirectory(file)) {
            throw new IllegalArgumentException(what + " " + file + " is a directory, not a file");
        }
        return file;
    }

    /** Deletes {@code p} and everything below it; nothing happens when it does not exist. */
    public static void delete(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> {
                try {
                    Files.delete(f);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
