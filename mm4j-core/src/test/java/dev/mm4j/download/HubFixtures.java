package dev.mm4j.download;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/** A Hugging Face hub model repository served by a {@link FixtureServer}: the tree API and resolve URLs. */
public final class HubFixtures {
    private HubFixtures() {}

    /** The files of a local folder, by relative path. */
    public static Map<String, byte[]> filesOf(Path folder) throws IOException {
        Map<String, byte[]> files = new LinkedHashMap<>();
        try (Stream<Path> s = Files.list(folder)) {
            for (Path p : s.sorted().toList()) files.put(p.getFileName().toString(), Files.readAllBytes(p));
        }
        return files;
    }

    /**
     * Serves {@code files} as {@code repo} at revision main: {@code /api/models/REPO/tree/main} lists them (with
     * size, and LFS SHA-256 for the big ones, as the hub does) and {@code /REPO/resolve/main/PATH} serves each.
     * Returns the listing's resource so tests can change it.
     */
    public static FixtureServer.Resource serve(FixtureServer server, String repo, Map<String, byte[]> files) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ArrayNode tree = json.createArrayNode();
        for (Map.Entry<String, byte[]> e : files.entrySet()) {
            ObjectNode f = tree.addObject();
            f.put("type", "file");
            f.put("oid", "0123456789abcdef0123456789abcdef01234567");
            f.put("size", e.getValue().length);
            f.put("path", e.getKey());
            if (e.getValue().length > 1000) {
                f.putObject("lfs").put("oid", sha256(e.getValue())).put("size", e.getValue().length).put("pointerSize", 134);
            }
            server.put("/" + repo + "/resolve/main/" + e.getKey(), e.getValue());
        }
        tree.addObject().put("type", "directory").put("oid", "x").put("size", 0).put("path", "onnx");
        FixtureServer.Resource listing = server.put("/api/models/" + repo + "/tree/main",
                json.writeValueAsString(tree).getBytes(StandardCharsets.UTF_8));
        listing.contentType = "application/json";
        return listing;
    }

    public static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
