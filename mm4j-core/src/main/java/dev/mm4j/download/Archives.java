package dev.mm4j.download;

import dev.mm4j.util.AtomicFiles;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Archive extraction that never writes outside its destination folder. */
public final class Archives {
    private static final Logger LOG = LoggerFactory.getLogger(Archives.class);

    private Archives() {}

    /** Extracts every regular file of a {@code .tar.gz}; see {@link #extractTarGz(Path, Path, Predicate)}. */
    public static List<Path> extractTarGz(Path archive, Path destDir) throws IOException {
        return extractTarGz(archive, destDir, name -> true);
    }

    /**
     * Extracts the regular files of a {@code .tar.gz} whose entry names pass {@code filter} into
     * {@code destDir}, each written atomically. An entry with an absolute name or a {@code ..} segment (or one
     * that would otherwise resolve outside {@code destDir}) fails the whole extraction with an
     * {@link IOException} before anything is written for it; links and device entries are skipped.
     *
     * @return the files written, in archive order
     */
    public static List<Path> extractTarGz(Path archive, Path destDir, Predicate<String> filter) throws IOException {
        Path dest = destDir.toAbsolutePath().normalize();
        Files.createDirectories(dest);
        List<Path> written = new ArrayList<>();
        try (InputStream fin = new BufferedInputStream(Files.newInputStream(archive), 1 << 16);
                GzipCompressorInputStream gz = new GzipCompressorInputStream(fin, true);
                TarArchiveInputStream tin = new TarArchiveInputStream(gz)) {
            TarArchiveEntry e;
            while ((e = tin.getNextEntry()) != null) {
                String name = e.getName();
                String rel = stripDotSlash(name);
                if (rel.isEmpty() || rel.equals(".")) continue;
                Path out;
                try {
                    out = Downloader.resolveInside(dest, rel);
                } catch (IOException bad) {
                    throw new IOException("unsafe entry '" + name + "' in " + archive + ": " + bad.getMessage());
                }
                if (e.isDirectory()) {
                    Files.createDirectories(out);
                    continue;
                }
                if (!e.isFile() || e.isLink() || e.isSymbolicLink()) {
                    LOG.warn("skipping non-regular entry '{}' in {}", name, archive);
                    continue;
                }
                if (!filter.test(rel)) continue;
                Files.createDirectories(out.getParent());
                AtomicFiles.write(out, os -> tin.transferTo(os));
                written.add(out);
            }
        }
        return written;
    }

    private static String stripDotSlash(String name) {
        String n = name;
        while (n.startsWith("./")) n = n.substring(2);
        return n;
    }
}
