package dev.mm4j.cli;

import dev.mm4j.download.CacheLayout;
import dev.mm4j.download.Downloader;
import dev.mm4j.download.HubRepository;
import dev.mm4j.download.Sources;
import dev.mm4j.report.ProgressReporter;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
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

    @Option(names = "--checkpoint-url", defaultValue = Sources.CHECKPOINT_URL, description = "default: ${DEFAULT-VALUE}")
    String checkpointUrl;

    @Option(names = "--checkpoint-sha256", description = "expected SHA-256 of the checkpoint (hex)")
    String checkpointSha256;

    @Option(names = "--vocab-url", defaultValue = Sources.VOCAB_URL, description = "default: ${DEFAULT-VALUE}")
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
            Sources sources = new Sources(d, baseUrl);
            if (w == What.CHECKPOINT || w == What.ALL) {
                out.println("checkpoint: " + sources.checkpoint(checkpointUrl, checkpointSha256));
            }
            if (w == What.VOCAB || w == What.ALL) {
                out.println("answers vocab: " + sources.answerVocabulary(vocabUrl, vocabSha256));
            }
            if (w == What.TEXTVQA || w == What.ALL) {
                for (Path p : sources.textVqa(hfRepo, hfRevision, shards, config, splits)) out.println("textvqa: " + p);
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
}
