package dev.mm4j.download;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;

/** Builds small .tar.gz archives in memory for tests. */
public final class TarFixtures {
    private TarFixtures() {}

    /** name → content; a name ending in "/" is a directory; a value starting "->" makes a symlink. */
    public static byte[] tarGz(Map<String, String> entries) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (GzipCompressorOutputStream gz = new GzipCompressorOutputStream(bytes);
                TarArchiveOutputStream tar = new TarArchiveOutputStream(gz)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            for (var e : entries.entrySet()) {
                if (e.getValue().startsWith("->")) {
                    TarArchiveEntry t = new TarArchiveEntry(e.getKey(), TarArchiveEntry.LF_SYMLINK);
                    t.setLinkName(e.getValue().substring(2));
                    tar.putArchiveEntry(t);
                    tar.closeArchiveEntry();
                    continue;
                }
                // a raw entry name, so "../x" stays as given
                TarArchiveEntry t = new TarArchiveEntry(e.getKey(), true);
                if (!e.getKey().endsWith("/")) {
                    byte[] b = e.getValue().getBytes(StandardCharsets.UTF_8);
                    t.setSize(b.length);
                    tar.putArchiveEntry(t);
                    tar.write(b);
                } else {
                    tar.putArchiveEntry(t);
                }
                tar.closeArchiveEntry();
            }
        }
        return bytes.toByteArray();
    }
}
