package dev.mm4j.download;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.mm4j.checkpoint.Checkpoints;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A Hugging Face hub model repository (e.g. {@code facebook/flava-full}) in the cache, as a model folder: the
 * file list comes from the hub API ({@code /api/models/REPO/tree/REV?recursive=true}: path, size and, for LFS
 * files, SHA-256), then each file the model needs is fetched by the {@link Downloader} (resumable, verified by
 * size and SHA-256) from {@code /REPO/resolve/REV/FILE}: the weights in one format (the first of
 * {@link Checkpoints#HF_WEIGHTS} the repository has, with the shards its index names), {@code config.json} and
 * the tokenizer files. The chosen list is kept in the folder ({@value #MANIFEST}), so that later runs find the
 * model offline, without a single request.
 */
public final class HubRepository {
    public static final String HUB = "https://" + CacheLayout.HUB_HOST;
    /** Environment variable naming a hub mirror, as huggingface_hub reads it. */
    public static final String ENV_ENDPOINT = "HF_ENDPOINT";
    public static final String MANIFEST = ".mm4j-hub-files.json";
    /** Besides the weights: the files a model folder needs for fine-tuning (those the repository has). */
    public static final List<String> SMALL_FILES = List.of("config.json", "tokenizer.json", "vocab.txt",
            "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json");

    private static final Pattern REPO = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A repository at a revision: {@code ORG/NAME} or {@code ORG/NAME@REVISION} (default {@code main}). */
    public record Id(String repo, String revision) {
        public static Id parse(String s) {
            String t = s == null ? "" : s.strip();
            int at = t.indexOf('@');
            String repo = at < 0 ? t : t.substring(0, at);
            String rev = at < 0 ? "main" : t.substring(at + 1);
            if (!REPO.matcher(repo).matches() || repo.contains("..") || rev.isBlank()) {
                throw new IllegalArgumentException("not a hub model repository: '" + s + "' (expected ORG/NAME or ORG/NAME@REVISION)");
            }
            return new Id(repo, rev);
        }

        @Override
        public String toString() {
            return repo + (revision.equals("main") ? "" : "@" + revision);
        }
    }

    /** A file as the hub lists it; {@code sha256} null for files not in LFS. */
    public record HubFile(String path, long size, String sha256) {}

    private final Downloader downloader;
    private final String source;

    /** Files are fetched from {@code source} (the hub, or a mirror with the hub's paths); null: {@link #endpoint()}. */
    public HubRepository(Downloader downloader, String source) {
        this.downloader = downloader;
        this.source = stripSlash(source == null ? endpoint() : source);
    }

    /** {@code $HF_ENDPOINT}, else {@value #HUB}. */
    public static String endpoint() {
        String e = System.getenv(ENV_ENDPOINT);
        return e == null || e.isBlank() ? HUB : e;
    }

    /** {@code BASE/REPO/resolve/REVISION/PATH}. */
    public static URI fileUrl(String base, String repo, String revision, String path) {
        StringBuilder sb = new StringBuilder(stripSlash(base)).append('/').append(repo).append("/resolve/")
                .append(encode(revision));
        for (String seg : path.split("/")) sb.append('/').append(encode(seg));
        return URI.create(sb.toString());
    }

    private static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static String stripSlash(String s) {
        String t = s.strip();
        while (t.endsWith("/")) t = t.substring(0, t.length() - 1);
        return t;
    }

    /** The cache folder of {@code id} (whether or not it is there yet). */
    public Path folder(Id id) {
        return downloader.cacheDir().resolve(CacheLayout.hubModelFolder(id.repo(), id.revision()));
    }

    /**
     * The model folder of {@code id}: when the cache holds it (its file list and every file, of the recorded
     * size and checksum) without any request; otherwise as {@link #download}.
     */
    public Path resolve(Id id) throws IOException {
        Path manifest = folder(id).resolve(MANIFEST);
        if (Files.isRegularFile(manifest)) {
            for (HubFile f : readManifest(manifest)) fetch(id, f);
            return folder(id);
        }
        return download(id);
    }

    /** Lists {@code id} on the hub (one request), fetches the files the model needs and returns the folder. */
    public Path download(Id id) throws IOException {
        URI tree = URI.create(source + "/api/models/" + id.repo() + "/tree/" + encode(id.revision()) + "?recursive=true");
        String text;
        try {
            text = downloader.getText(tree);
        } catch (Downloader.HttpStatusException e) {
            if (e.status() == 404 || e.status() == 401) {
                throw new IOException("hub model " + id + " not found (HTTP " + e.status() + " for " + tree
                        + "; is the name and revision right, and is the repository public?)", e);
            }
            throw e;
        }
        Map<String, HubFile> listing = parseListing(text, tree);
        List<HubFile> chosen = new ArrayList<>();
        for (String name : SMALL_FILES) {
            if (listing.containsKey(name)) chosen.add(listing.get(name));
        }
        String weights = Checkpoints.HF_WEIGHTS.stream().filter(listing::containsKey).findFirst().orElseThrow(() ->
                new IOException("hub model " + id + " has none of " + Checkpoints.HF_WEIGHTS + "; its files: " + listing.keySet()));
        HubFile w = listing.get(weights);
        chosen.add(w);
        for (HubFile f : chosen) fetch(id, f);
        if (weights.endsWith(".index.json")) {
            for (String shard : shardsOf(folder(id).resolve(weights))) {
                HubFile f = listing.get(shard);
                if (f == null) throw new IOException("hub model " + id + ": " + weights + " names " + shard + ", which the repository does not have");
                chosen.add(f);
                fetch(id, f);
            }
        }
        ArrayNode m = JSON.createArrayNode();
        for (HubFile f : chosen) {
            var o = m.addObject().put("path", f.path()).put("size", f.size());
            if (f.sha256() != null) o.putObject("lfs").put("oid", f.sha256());
        }
        AtomicFiles.writeString(folder(id).resolve(MANIFEST), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(m));
        return folder(id);
    }

    private Path fetch(Id id, HubFile f) throws IOException {
        Downloader.Request r = Downloader.Request.of(fileUrl(HUB, id.repo(), id.revision(), f.path()))
                .from(fileUrl(source, id.repo(), id.revision(), f.path()))
                .withExpectedSize(f.size());
        return downloader.fetch(f.sha256() == null ? r : r.withSha256(f.sha256()));
    }

    private static Set<String> shardsOf(Path index) throws IOException {
        JsonNode map = readJson(index).get("weight_map");
        if (map == null || !map.isObject()) throw new IOException(index + ": no \"weight_map\" object");
        Set<String> shards = new LinkedHashSet<>();
        map.elements().forEachRemaining(v -> shards.add(v.asText()));
        return shards;
    }

    /** The files of a tree listing by path (directories skipped); each must have a path and a size. */
    static Map<String, HubFile> parseListing(String text, Object where) throws IOException {
        JsonNode arr;
        try {
            arr = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new IOException(where + ": not a JSON file list: " + e.getOriginalMessage(), e);
        }
        if (arr == null || !arr.isArray()) throw new IOException(where + ": expected a JSON array of files");
        Map<String, HubFile> files = new LinkedHashMap<>();
        for (JsonNode n : arr) {
            if (!"file".equals(n.path("type").asText("file"))) continue;
            String path = n.path("path").asText(null);
            if (path == null || path.isBlank() || !n.path("size").canConvertToLong()) {
                throw new IOException(where + ": a file entry without path or size: " + n);
            }
            String sha = n.path("lfs").path("oid").asText(null);
            if (sha == null) sha = n.path("lfs").path("sha256").asText(null);
            if (sha != null && sha.startsWith("sha256:")) sha = sha.substring("sha256:".length());
            files.put(path, new HubFile(path, n.path("size").asLong(), sha));
        }
        return files;
    }

    private static List<HubFile> readManifest(Path manifest) throws IOException {
        return new ArrayList<>(parseListing(Files.readString(manifest), manifest).values());
    }

    private static JsonNode readJson(Path f) throws IOException {
        try {
            return JSON.readTree(Files.readString(f));
        } catch (JsonProcessingException e) {
            throw new IOException(f + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }
}
