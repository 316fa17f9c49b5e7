package dev.mm4j.cli;

import dev.mm4j.bench.ServeBench;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j bench-serve}: the HTTP service under load, batching off vs on, image cache miss vs hit. */
@Command(name = "bench-serve", mixinStandardHelpOptions = true,
        description = {"Serves a model with random weights (FLAVA full size unless --config) on 127.0.0.1 and drives "
                + "POST /v1/answer with concurrent clients: throughput and p50/p95/p99 latency with batching off vs on, "
                + "one client's latency for a new image (cache miss) vs an image already seen (cache hit), and one client's "
                + "while 100 others have sent half a request and wait. Each row quiet and contended (one spinning thread "
                + "per core beside the server), side by side. --precision fp32,bf16: every row once per precision, on the "
                + "same bundle, and bf16's req/s and p50 against fp32's."})
public final class BenchServeCommand implements Callable<Integer> {
    @Option(names = "--clients", split = ",", description = "concurrent clients per row (default: ${DEFAULT-VALUE})")
    List<Integer> clients = List.of(1, 4, 16);

    @Option(names = "--requests", description = "requests per row (default: ${DEFAULT-VALUE})")
    int requests = 32;

    @Option(names = "--cache-requests", description = "requests per image-cache row (default: ${DEFAULT-VALUE})")
    int cacheRequests = 8;

    @Option(names = "--max-batch", description = "batch size limit when batching is on (default: ${DEFAULT-VALUE})")
    int maxBatch = 8;

    @Option(names = "--max-wait-ms", description = "batch gathering wait when batching is on (default: ${DEFAULT-VALUE})")
    long maxWaitMs = 10;

    @Option(names = "--quiet-only", description = "run each row quiet only, not again beside a competing load")
    boolean quietOnly;

    @Mixin ModelOptions model = new ModelOptions();
    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        int threads = engine.configureServingThreads();
        new ServeBench(new ServeBench.Options(model.load(), clients, requests, maxBatch, maxWaitMs, cacheRequests, !quietOnly,
                engine.precisions(engine.device())), System.out).run(engine.device(), threads);
        return 0;
    }
}
