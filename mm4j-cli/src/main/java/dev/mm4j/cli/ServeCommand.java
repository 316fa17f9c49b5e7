package dev.mm4j.cli;

import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.eval.LabelledBundleEvaluation;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.inference.VqaModel;
import dev.mm4j.nn.Precision;
import dev.mm4j.serve.ImageSearch;
import dev.mm4j.serve.LabelledModel;
import dev.mm4j.serve.ModelServer;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j serve}: a fine-tuned model and/or an image index behind HTTP (API, web page, health and metrics). */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serves a fine-tuned model over HTTP until SIGTERM/Ctrl-C: POST /v1/answer (multipart or JSON),",
                "or POST /v1/classify for a text / image classification model (finetune on labelled data),",
                "the web page at /, /healthz, /readyz (ready once each model is loaded and warmed up by one forward pass),",
                "/metrics (Prometheus).",
                "With --index: POST /v1/search (text or image -> the nearest indexed images),",
                "GET /v1/images/{sha256} (those images and thumbnails) and POST /v1/embed;",
                "with --embed-model alone: POST /v1/embed.",
                "Give --model, --index or --embed-model (or several).",
                "--threads 0 (the default) serves with half the cores (at least 1); ./mm4j serve runs libtorch with OMP_WAIT_POLICY=PASSIVE unless set."})
public final class ServeCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "model folder (OUT/model of finetune): a VQA model "
            + "(POST /v1/answer) or a text / image classification model (POST /v1/classify)")
    Path model;

    @Option(names = "--index", paramLabel = "INDEX", description = "image index built by 'mm4j index': POST /v1/search, "
            + "GET /v1/images/{sha256}, POST /v1/embed (queries embedded with the index's model unless --embed-model)")
    Path index;

    @Option(names = "--embed-model", paramLabel = "DIR|FILE", description = "embedding model for POST /v1/embed (and "
            + "search queries): a bundle (classification or retrieval) or a checkpoint; default with --index: the index's model")
    Path embedModel;

    @Option(names = "--embed-config", paramLabel = "FILE", description = "for an --embed-model checkpoint: its FLAVA config "
            + "(as --config of mm4j index)")
    Path embedConfig;

    @Option(names = "--host", description = "interface to listen on (default: ${DEFAULT-VALUE})")
    String host = "127.0.0.1";

    @Option(names = "--port", description = "port; 0 picks a free one (default: ${DEFAULT-VALUE})")
    int port = 8080;

    @Option(names = "--max-batch", paramLabel = "N", description = "most requests per forward pass; 1 = no batching (default: ${DEFAULT-VALUE})")
    int maxBatch = ModelServer.Settings.defaults().maxBatch();

    @Option(names = "--max-wait-ms", paramLabel = "MS", description = "how long a batch waits for more requests (default: ${DEFAULT-VALUE})")
    long maxWaitMs = ModelServer.Settings.defaults().maxWaitMs();

    @Option(names = "--max-queue", paramLabel = "N", description = "waiting requests beyond this get 503 (default: ${DEFAULT-VALUE})")
    int maxQueue = ModelServer.Settings.defaults().maxQueue();

    @Option(names = "--timeout-ms", paramLabel = "MS", description = "request timeout, then 504 (default: ${DEFAULT-VALUE})")
    long timeoutMs = ModelServer.Settings.defaults().requestTimeoutMs();

    @Option(names = "--max-body-mb", paramLabel = "MB", description = "larger request bodies get 413 (default: ${DEFAULT-VALUE})")
    long maxBodyMb = ModelServer.Settings.defaults().maxBodyBytes() >> 20;

    @Option(names = "--max-connections", paramLabel = "N", description = "connections held open at once; more wait to be "
            + "accepted, so slow clients cannot take every server thread (default: ${DEFAULT-VALUE})")
    int maxConnections = ModelServer.Settings.MAX_CONNECTIONS;

    @Option(names = "--idle-timeout-ms", paramLabel = "MS", description = "a connection that sends nothing for this long "
            + "(half a header or body, an idle keep-alive) is closed; a stalled body gets 408 (default: ${DEFAULT-VALUE})")
    long idleTimeoutMs = ModelServer.Settings.IDLE_TIMEOUT_MS;

    @Option(names = "--cache-mb", paramLabel = "MB", description = "image-encoder cache; 0 = off (default: ${DEFAULT-VALUE})")
    long cacheMb = VqaModel.Options.defaults().imageCacheBytes() >> 20;

    @Option(names = "--max-pixels", paramLabel = "N", description = "images declaring more pixels get 400 before decoding (default: ${DEFAULT-VALUE})")
    long maxPixels = VqaModel.Options.defaults().maxPixels();

    @Mixin
    EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        if (model == null && index == null && embedModel == null) {
            throw new IllegalArgumentException("nothing to serve: give --model DIR (questions), --index INDEX (search) "
                    + "or --embed-model DIR (embeddings)");
        }
        if (model != null && ModelBundle.isRetrieval(model)) {
            throw new IllegalArgumentException("--model " + model + " is a retrieval model (embeddings, no answers): pass it "
                    + "as --embed-model " + model + " (POST /v1/embed; with --index INDEX, search with it)");
        }
        if (embedConfig != null && embedModel == null) {
            throw new IllegalArgumentException("--embed-config is for --embed-model");
        }
        engine.configureServingThreads();
        ModelServer.Settings settings = new ModelServer.Settings(host, port, maxBatch, maxWaitMs, maxQueue, timeoutMs,
                maxBodyMb << 20, 100).withConnections(maxConnections, idleTimeoutMs);
        VqaModel.Options options = new VqaModel.Options(cacheMb << 20, maxPixels);
        String precision = engine.modelPrecision();
        boolean labelled = model != null && LabelledBundleEvaluation.isLabelledBundle(model);
        Callable<VqaModel> vqa = model == null || labelled ? null
                : () -> VqaModel.load(model, engine.device(), options, precision);
        Callable<LabelledModel> classifier = !labelled ? null
                : () -> LabelledModel.load(model, engine.device(), precision, maxPixels);
        Callable<ImageSearch> search = index == null && embedModel == null ? null
                : () -> {
                    ImageSearch s = ImageSearch.open(index, embedModel, embedConfig == null ? null
                            : FlavaConfig.load(embedConfig), engine.device(), maxPixels);
                    // --precision, when given, is the embedding model's too (else fp32, as it was loaded)
                    return precision == null ? s : s.withPrecision(Precision.resolve(precision, engine.device()));
                };
        try (ModelServer server = ModelServer.start(vqa, search, classifier, settings)) {
            System.err.println("listening on " + server.uri() + " (loading " + Stream.of(model, index, embedModel)
                    .filter(Objects::nonNull).map(Path::toString).collect(Collectors.joining(", ")) + ")");
            server.awaitLoaded();
            System.err.println("ready: " + server.uri());
            server.runUntilSignalled();
            System.err.println("stopped");
        }
        return 0;
    }
}
