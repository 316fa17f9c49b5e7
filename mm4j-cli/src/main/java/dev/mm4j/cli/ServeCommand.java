package dev.mm4j.cli;

import dev.mm4j.serve.VqaModel;
import dev.mm4j.serve.VqaServer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j serve}: a fine-tuned model behind HTTP (API, web page, health and metrics). */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serves a fine-tuned model over HTTP until SIGTERM/Ctrl-C: POST /v1/answer (multipart or JSON),",
                "the web page at /, /healthz, /readyz, /metrics (Prometheus).",
                "--threads 0 (the default) serves with half the cores (at least 1); ./mm4j serve runs libtorch with OMP_WAIT_POLICY=PASSIVE unless set."})
public final class ServeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model folder (OUT/model of finetune)")
    Path model;

    @Option(names = "--host", description = "interface to listen on (default: ${DEFAULT-VALUE})")
    String host = "127.0.0.1";

    @Option(names = "--port", description = "port; 0 picks a free one (default: ${DEFAULT-VALUE})")
    int port = 8080;

    @Option(names = "--max-batch", paramLabel = "N", description = "most requests per forward pass; 1 = no batching (default: ${DEFAULT-VALUE})")
    int maxBatch = VqaServer.Settings.defaults().maxBatch();

    @Option(names = "--max-wait-ms", paramLabel = "MS", description = "how long a batch waits for more requests (default: ${DEFAULT-VALUE})")
    long maxWaitMs = VqaServer.Settings.defaults().maxWaitMs();

    @Option(names = "--max-queue", paramLabel = "N", description = "waiting requests beyond this get 503 (default: ${DEFAULT-VALUE})")
    int maxQueue = VqaServer.Settings.defaults().maxQueue();

    @Option(names = "--timeout-ms", paramLabel = "MS", description = "request timeout, then 504 (default: ${DEFAULT-VALUE})")
    long timeoutMs = VqaServer.Settings.defaults().requestTimeoutMs();

    @Option(names = "--max-body-mb", paramLabel = "MB", description = "larger request bodies get 413 (default: ${DEFAULT-VALUE})")
    long maxBodyMb = VqaServer.Settings.defaults().maxBodyBytes() >> 20;

    @Option(names = "--max-connections", paramLabel = "N", description = "connections held open at once; more wait to be "
            + "accepted, so slow clients cannot take every server thread (default: ${DEFAULT-VALUE})")
    int maxConnections = VqaServer.Settings.MAX_CONNECTIONS;

    @Option(names = "--idle-timeout-ms", paramLabel = "MS", description = "a connection that sends nothing for this long "
            + "(half a header or body, an idle keep-alive) is closed; a stalled body gets 408 (default: ${DEFAULT-VALUE})")
    long idleTimeoutMs = VqaServer.Settings.IDLE_TIMEOUT_MS;

    @Option(names = "--cache-mb", paramLabel = "MB", description = "image-encoder cache; 0 = off (default: ${DEFAULT-VALUE})")
    long cacheMb = VqaModel.Options.defaults().imageCacheBytes() >> 20;

    @Option(names = "--max-pixels", paramLabel = "N", description = "images declaring more pixels get 400 before decoding (default: ${DEFAULT-VALUE})")
    long maxPixels = VqaModel.Options.defaults().maxPixels();

    @Mixin
    EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        engine.configureServingThreads();
        VqaServer.Settings settings = new VqaServer.Settings(host, port, maxBatch, maxWaitMs, maxQueue, timeoutMs,
                maxBodyMb << 20, 100).withConnections(maxConnections, idleTimeoutMs);
        VqaModel.Options options = new VqaModel.Options(cacheMb << 20, maxPixels);
        try (VqaServer server = VqaServer.start(
                () -> VqaModel.load(model, engine.device(), options).withPrecision(engine.precision(engine.device())), settings)) {
            System.err.println("listening on " + server.uri() + " (loading " + model + ")");
            server.awaitLoaded();
            System.err.println("ready: " + server.uri());
            server.runUntilSignalled();
            System.err.println("stopped");
        }
        return 0;
    }
}
