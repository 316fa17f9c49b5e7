package dev.mm4j.download;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Where the tutorial's files come from: TorchMultimodal's FLAVA checkpoint, the answer vocabulary archive
 * (and its {@code answers_textvqa_more_than_1.txt}), and TextVQA's parquet shards on the Hugging Face hub
 * (named, or from the hub's parquet listing). Everything is kept where {@link CacheLayout} puts its URL;
 * with a base URL (mirrors, tests) the files are fetched from there under the same paths.
 */
public final class Sources {
    /** TorchMultimodal's published FLAVA pretraining checkpoint, what the tutorial loads. */
    public static final String CHECKPOINT_URL =
            "https://download.pytorch.org/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt";
    public static final String VOCAB_URL = "http://dl.fbaipublicfiles.com/pythia/data/vocab.tar.gz";
    public static final String HF_URL = "https://huggingface.co";
    public static final String ANSWERS_FILE = "answers_textvqa_more_than_1.txt";

    private final Downloader d;
    private final String baseUrl;

    /** @param baseUrl replaces scheme://host[:port] of every source URL, or null */
    public Sources(Downloader downloader, String baseUrl) {
        this.d = downloader;
        this.baseUrl = baseUrl;
    }

    /** The checkpoint at {@code url} (verified against {@code sha256} when given). */
    public Path checkpoint(String url, String sha256) throws IOException {
        return d.fetch(request(url, sha256));
    }

    /** Fetches vocab.tar.gz and extracts it (once); returns the answers file. */
    public Path answerVocabulary(String vocabUrl, String vocabSha256) throws IOException {
        Path archive = d.fetch(request(vocabUrl, vocabSha256));
        Path dir = archive.getParent();
        Path found = findAnswers(dir);
        if (found != null && Files.getLastModifiedTime(found).compareTo(Files.getLastModifiedTime(archive)) >= 0) {
            return found;
        }
        Archives.extractTarGz(archive, dir);
        found = findAnswers(dir);
        if (found == null) {
            throw new IOException(archive + " has no " + ANSWERS_FILE + " (expected data/vocabs/" + ANSWERS_FILE + ")");
        }
        return found;
    }

    private static Path findAnswers(Path dir) throws IOException {
        Path expected = dir.resolve("data/vocabs/" + ANSWERS_FILE);
        if (Files.isRegularFile(expected)) return expected;
        try (var s = Files.walk(dir, 6)) {
            return s.filter(p -> p.getFileName().toString().equals(ANSWERS_FILE) && Files.isRegularFile(p))
                    .findFirst().orElse(null);
        }
    }

    /**
     * TextVQA parquet shards of the hub dataset {@code hfRepo}: the named {@code shards} (at {@code hfRevision}),
     * or, without any, those the hub's parquet listing names for {@code splits} of {@code config} (null: the
     * only or the 'default' config).
     */
    public List<Path> textVqa(String hfRepo, String hfRevision, List<String> shards, String config, List<String> splits)
            throws IOException {
        List<Path> got = new ArrayList<>();
        String hf = HF_URL;
        if (!shards.isEmpty()) {
            for (String shard : shards) {
                String s = shard.strip();
                while (s.startsWith("/")) s = s.substring(1);
                String url = hf + "/datasets/" + hfRepo + "/resolve/" + hfRevision + "/" + s;
                got.add(d.fetch(request(url, null)));
            }
            return got;
        }
        ObjectMapper json = new ObjectMapper();
        String api = hf + "/api/datasets/" + hfRepo + "/parquet";
        String cfg = config;
        Map<String, List<String>> urlsBySplit = new java.util.LinkedHashMap<>();
        if (cfg != null) {
            for (String split : splits) {
                JsonNode arr = json.readTree(d.getText(URI.create(rebase(api + "/" + cfg + "/" + split))));
                urlsBySplit.put(split, textList(arr, api));
            }
        } else {
            JsonNode all = json.readTree(d.getText(URI.create(rebase(api))));
            if (!all.isObject() || all.isEmpty()) throw new IOException(api + ": expected {config: {split: [urls]}}");
            List<String> configs = new ArrayList<>();
            all.fieldNames().forEachRemaining(configs::add);
            if (configs.size() == 1) cfg = configs.get(0);
            else if (configs.contains("default")) cfg = "default";
            else throw new IOException(api + " lists several configs " + configs + "; pick one with --config");
            JsonNode byConfig = all.get(cfg);
            for (String split : splits) {
                JsonNode arr = byConfig.get(split);
                if (arr == null) throw new IOException(api + ": config '" + cfg + "' has no split '" + split + "'");
                urlsBySplit.put(split, textList(arr, api));
            }
        }
        for (var e : urlsBySplit.entrySet()) {
            for (String url : e.getValue()) {
                got.add(d.fetch(request(url, null)));
            }
        }
        return got;
    }

    private static List<String> textList(JsonNode arr, String what) throws IOException {
        if (arr == null || !arr.isArray()) throw new IOException(what + ": expected a JSON array of URLs");
        List<String> out = new ArrayList<>();
        for (Iterator<JsonNode> it = arr.elements(); it.hasNext(); ) out.add(it.next().asText());
        return out;
    }

    /** {@code url}, kept where {@link CacheLayout} puts it, fetched from {@code --base-url} when given. */
    private Downloader.Request request(String url, String sha256) {
        Downloader.Request r = Downloader.Request.of(url).from(URI.create(rebase(url)));
        return sha256 == null ? r : r.withSha256(sha256);
    }

    /** {@code url} with its scheme://host[:port] replaced by {@code --base-url} (when given). */
    private String rebase(String url) {
        if (baseUrl == null) return url;
        URI u = URI.create(url);
        String rest = u.getRawPath() == null ? "" : u.getRawPath();
        if (u.getRawQuery() != null) rest += "?" + u.getRawQuery();
        return stripSlash(baseUrl) + rest;
    }

    private static String stripSlash(String s) {
        String t = s.strip();
        while (t.endsWith("/")) t = t.substring(0, t.length() - 1);
        return t;
    }
}
