package dev.mm4j.util;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;

/**
 * Exclusive use of a folder by one process: an OS lock ({@link FileChannel#tryLock}) on {@code <dir>/.lock},
 * held until {@link #close()} or until the process ends, however it ends (the OS drops the lock of a killed
 * process, so a stale lock file never blocks anyone). While it is held, whatever temporary files the folder
 * holds cannot belong to a live writer. The lock file names the holder's process id for the message another process
 * gets; {@link #close()} deletes it (while still holding the lock), so only a killed run leaves one behind, and the
 * next taker takes that over. A taker that locked a file just deleted by the holder before it (its lock is then on
 * a file no longer in the folder) notices and tries again on the new one.
 */
public final class DirectoryLock implements AutoCloseable {
    public static final String FILE = ".lock";

    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private DirectoryLock(Path file, FileChannel channel, FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Creates {@code dir} if needed and locks it, or throws an {@link IOException} saying who holds it;
     * {@code what} names the user in that message (e.g. "a fine-tuning run").
     */
    public static DirectoryLock acquire(Path dir, String what) throws IOException {
        Files.createDirectories(dir);
        for (int attempt = 0; ; attempt++) {
            DirectoryLock l = tryAcquire(dir, what);
            if (l != null) {
                return l;
            }
            if (attempt == 100) {
                throw new IOException("cannot lock " + dir.resolve(FILE) + ": it keeps being replaced");
            }
        }
    }

    /** The lock, or null when the file locked was deleted by its previous holder meanwhile (try again). */
    private static DirectoryLock tryAcquire(Path dir, String what) throws IOException {
        Path file = dir.resolve(FILE);
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        Object before = fileKey(file);
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null; // held by this very process
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        if (lock == null) {
            String holder = holder(ch);
            ch.close();
            throw new IOException(dir + " is in use by " + what + " in another process" + holder
                    + " (it holds " + file + "); wait for it to finish, or choose another output folder");
        }
        try {
            // the file we locked must still be the folder's lock file (its previous holder deletes it on close). The
            // check compares file keys (device, inode) by stat: opening the file again and closing it would drop
            // this process's lock (POSIX record-lock semantics)
            boolean keys = before != null || !Files.exists(file); // no file keys on this platform: no check
            if (keys && (before == null || !before.equals(fileKey(file)))) {
                lock.release();
                ch.close();
                return null;
            }
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(("pid " + ProcessHandle.current().pid() + ", since " + Instant.now() + "\n")
                    .getBytes(StandardCharsets.UTF_8)), 0);
        } catch (IOException e) {
            lock.release();
            ch.close();
            throw e;
        }
        return new DirectoryLock(file, ch, lock);
    }

    private static String holder(FileChannel ch) {
        try {
            ByteBuffer b = ByteBuffer.allocate(200);
            ch.read(b, 0);
            String s = new String(b.array(), 0, b.position(), StandardCharsets.UTF_8).strip();
            return s.isEmpty() ? "" : " (" + s + ")";
        } catch (IOException e) {
            return "";
        }
    }

    /** The file's identity (device and inode on Linux), or null when it is gone. */
    private static Object fileKey(Path file) throws IOException {
        try {
            return Files.readAttributes(file, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
        } catch (java.nio.file.NoSuchFileException e) {
            return null;
        }
    }

    public Path file() {
        return file;
    }

    @Override
    public void close() throws IOException {
        try {
            Files.deleteIfExists(file); // while still locked: a waiting taker then finds its file gone and retries
        } finally {
            try {
                lock.release();
            } finally {
                channel.close();
            }
        }
    }
}
