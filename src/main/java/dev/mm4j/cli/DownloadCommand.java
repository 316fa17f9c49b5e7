package dev.mm4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.download.Archives;
import dev.mm4j.download.CacheLayout;
import dev.mm4j.download.Downloader;
import dev.mm4j.download.HubRepository;
import dev.mm4j.report.ProgressReporter;
import dev.mm4j.train.FinetuneSettings;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code mm4j download}: fetches the FLAVA pretraining checkpoint, the answer vocabulary (and extracts
 * {@code answers_textvqa_more_than_1.txt}), TextVQA parquet shards, or a Hugging Face hub model repository
 * ({@code --hf}) into the cache, where {@link CacheLayout} puts every URL. Files already in the cache are not
 * fetched again; interrupted downloads resume.
 */
@Command(
        name = "download",
        mixinStandardHelpOptions = true,
        description = {"Download the FLAVA checkpoint, the TextVQA answer vocabulary and TextVQA parquet shards, or a "
                + "Hugging Face hub model (--hf), into the cache (resumable, verified, cached).",
                "The cache mirrors each URL (<host>/<path>; hub files under hf/ORG/NAME/REVISION/), so finetune "
                        + "--checkpoint URL or hf:ORG/NAME finds what was downloaded here, offline too."})
public final class DownloadCommand implements Callable<Integer> {

    public static final String CHECKPOINT_URL = FinetuneSettings.DEFAULT_CHECKPOINT;
    public static final String VOCAB_URL = "http://dl.fbaipublicfiles.com/pythia/data/vocab.tar.gz";
    public static final String HF_URL = "https://huggingface.co";
    public static final String ANSWERS_FILE = "answers_textvqa_more_than_1.txt";

    /** What to download. */
    public enum What { CHECKPOINT, VOCAB, TEXTVQA, ALL }

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--what",
            description = "checkpoint|vocab|textvqa|all (default: all, or nothing else when --hf is given)")
    String what;

    @Option(names = "--hf", paramLabel = "ORG/NAME[@REV]",
            description = "a hub model repository, e.g. facebook/flava-full: its file list from the hub API, then the "
                    + "weights (one format), config.json and tokenizer files; use it with finetune --checkpoint hf:ORG/NAME")
    String hfModel;

    @Option(names = "--cache", description = "cache folder (default: $MM4J_CACHE or ~/.cache/mm4j)")
    Path cache;

    @Option(names = "--base-url",
            description = "replace scheme://host[:port] of every source URL (mirrors, tests), keeping the paths")
    String baseUrl;

    @Option(names = "--checkpoint-url", defaultValue = CHECKPOINT_URL, description = "default: ${DEFAULT-VALUE}")
    String checkpointUrl;

    @Option(names = "--checkpoint-sha256", description = "expected SHA-256 of the checkpoint (hex)")
    String checkpointSha256;

    @Option(names = "--vocab-url", defaultValue = VOCAB_URL, description = "default: ${DEFAULT-VALUE}")
    String vocabUrl;

    @Option(names = "--vocab-sha256", description = "expected SHA-256 of vocab.tar.gz (hex)")
    String vocabSha256;

    @Option(names = "--hf-repo", defaultValue = "facebook/textvqa", description = "dataset repo (default: ${DEFAULT-VALUE})")
    String hfRepo;

    @Option(names = "--hf-revision", defaultValue = "main", description = "revision for --shard (default: ${DEFAULT-VALUE})")
    String hfRevision;

    @Option(names = "--shard", split = ",",
            description = "parquet file(s) in the dataset repo, e.g. data/train-00000-of-00020.parquet, fetched from "
                    + "<hf>/datasets/<repo>/resolve/<revision>/<shard>. Without any, the hub's parquet listing "
                    + "(/api/datasets/<repo>/parquet[/<config>/<split>]) names them.")
    List<String> shards = new ArrayList<>();

    @Option(names = "--config", description = "dataset config for the hub listing (default: the only/'default' one)")
    String config;

    @Option(names = "--split", split = ",", defaultValue = "train,validation,test",
            description = "splits for the hub listing (default: ${DEFAULT-VALUE})")
    List<String> splits;

    @Option(names = "--attempts", defaultValue = "5", description = "attempts per file (default: ${DEFAULT-VALUE})")
    int attempts;

    @Option(names = "--read-timeout", defaultValue = "60",
            description = "seconds without data before an attempt is aborted (default: ${DEFAULT-VALUE})")
    int readTimeoutSeconds;

    @Option(names = "--progress", defaultValue = "auto", description = "auto|bar|plain|off (default: ${DEFAULT-VALUE})")
    String progress;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        What w;
        ProgressReporter.Mode mode;
        try {
            w = what == null ? (hfModel != null ? null : What.ALL) : What.valueOf(what.trim().toUpperCase(Locale.ROOT));
            mode = ProgressReporter.Mode.valueOf(progress.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            err.println("error: --what must be checkpoint|vocab|textvqa|all and --progress auto|bar|plain|off");
            return 2;
        }
        HubRepository.Id hubModel;
        try {
            hubModel = hfModel == null ? null : HubRepository.Id.parse(hfModel);
        } catch (IllegalArgumentException e) {
            err.println("error: --hf: " + e.getMessage());
            return 2;
        }
        Path cacheDir = cache != null ? cache : Downloader.defaultCacheDir();
        Downloader d = new Downloader(cacheDir, Downloader.Options.defaults()
                .withMaxAttempts(Math.max(1, attempts))
                .withReadTimeout(Duration.ofSeconds(Math.max(1, readTimeoutSeconds)))
                .withProgress(mode));
        try {
            if (hubModel != null) {
                out.println("hf model: " + new HubRepository(d, baseUrl).download(hubModel));
            }
            if (w == What.CHECKPOINT || w == What.ALL) {
                Path p = d.fetch(request(checkpointUrl, checkpointSha256));
                out.println("checkpoint: " + p);
            }
            if (w == What.VOCAB || w == What.ALL) {
                out.println("answers vocab: " + fetchVocab(d));
            }
            if (w == What.TEXTVQA || w == What.ALL) {
                for (Path p : fetchTextVqa(d)) out.println("textvqa: " + p);
            }
            out.flush();
            return 0;
        } catch (IOException | RuntimeException e) {
            out.flush();
            err.println("error: " + e.getMessage());
            err.flush();
            return 1;
        }
    }

    /** Fetches vocab.tar.gz and extracts it (once); returns the answers file. */
    Path fetchVocab(Downloader d) throws IOException {
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

    /** Fetches the named shards, or those the hub listing names. */
    List<Path> fetchTextVqa(Downloader d) throws IOException {
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
    String rebase(String url) {
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
