package dev.mm4j.download;

import dev.mm4j.checkpoint.PretrainedCheckpoint;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.nn.Module;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The pretrained weights a {@code checkpoint} setting names, found in (or fetched into) the cache:
 * <ul>
 *   <li>{@code none} (or empty): random initialization;
 *   <li>a path: a checkpoint file ({@code .pt}, {@code .bin}, {@code .safetensors}), a sharded checkpoint's
 *       {@code *.index.json}, or a Hugging Face model folder;
 *   <li>an http(s) URL: fetched once into the cache ({@link CacheLayout}) when the weights are first loaded, found
 *       there afterwards without a request;
 *   <li>{@code hf:ORG/NAME[@REVISION]}: a hub model repository ({@link HubRepository}), e.g.
 *       {@code hf:facebook/flava-full}.
 * </ul>
 * An HF model folder also gives the model's sizes ({@code config.json}) and its tokenizer.
 */
public final class PretrainedWeights {
    public static final String HF_PREFIX = "hf:";

    private final String spec;
    private Path path;
    /** A URL not in the cache yet: fetched when the weights are loaded (a resumed run never needs them). */
    private final Downloader.Request pending;
    private final Downloader downloader;

    private PretrainedWeights(String spec, Path path) {
        this(spec, path, null, null);
    }

    private PretrainedWeights(String spec, Path path, Downloader.Request pending, Downloader downloader) {
        this.spec = spec;
        this.path = path;
        this.pending = pending;
        this.downloader = downloader;
    }

    /**
     * Resolves {@code spec} through the default cache ({@link Downloader#defaultCacheDir()}). Only a URL or a hub
     * repository makes a {@link Downloader}: {@code none} and local paths never touch the HTTP client (module
     * {@code java.net.http}), so a consumer on the module path that trains from scratch or from files needs no
     * {@code --add-modules java.net.http}.
     */
    public static PretrainedWeights resolve(String spec) throws IOException {
        return resolve(spec, remote(spec) ? new Downloader(Downloader.defaultCacheDir()) : null);
    }

    private static boolean remote(String spec) {
        String s = spec == null ? "" : spec.strip();
        return s.startsWith(HF_PREFIX) || s.startsWith("http://") || s.startsWith("https://");
    }

    public static PretrainedWeights resolve(String spec, Downloader downloader) throws IOException {
        String s = spec == null ? "" : spec.strip();
        if (s.isEmpty() || s.equals("none")) {
            return new PretrainedWeights(s, null);
        }
        if (s.startsWith(HF_PREFIX)) {
            HubRepository.Id id = HubRepository.Id.parse(s.substring(HF_PREFIX.length()));
            return new PretrainedWeights(s, new HubRepository(downloader, null).resolve(id));
        }
        if (s.startsWith("http://") || s.startsWith("https://")) {
            Downloader.Request r = Downloader.Request.of(URI.create(s));
            return Files.isRegularFile(downloader.targetOf(r))
                    ? new PretrainedWeights(s, downloader.fetch(r)) // a cache hit: no request
                    : new PretrainedWeights(s, null, r, downloader);
        }
        Path p = Path.of(s);
        if (!Files.exists(p)) {
            throw new IOException("checkpoint " + s + ": no such file or folder (a path, an http(s) URL, hf:ORG/NAME, or none)");
        }
        return new PretrainedWeights(s, p);
    }

    /** The local file or folder; null for none, or for a URL not fetched yet. */
    public Path path() {
        return path;
    }

    /**
     * {@code defaults} with the config of a pretraining bundle (its sizes, codebook included) or the sizes of an HF
     * folder's {@code config.json}, else {@code defaults} ({@link PretrainedCheckpoint#config}).
     */
    public FlavaConfig config(FlavaConfig defaults) throws IOException {
        return path == null ? defaults : PretrainedCheckpoint.config(path, defaults);
    }

    /** An HF folder's tokenizer file, or null. */
    public Path tokenizerFile() throws IOException {
        return path == null ? null : PretrainedCheckpoint.tokenizerFile(path);
    }

    /**
     * Loads the weights into {@code model} non-strictly (like the tutorial's {@code strict=False}) and returns
     * what to print: the load report, or that there are none.
     */
    public String loadInto(Module model) throws IOException {
        if (path == null && pending != null) {
            path = downloader.fetch(pending);
        }
        if (path == null) {
            return "weights: random initialization (no checkpoint)";
        }
        try (PretrainedCheckpoint ck = PretrainedCheckpoint.open(path)) {
            return "weights: " + (spec.equals(path.toString()) ? "" : spec + " = ") + ck.load(model, false);
        }
    }
}
