package dev.mm4j.serve;

import dev.mm4j.inference.Answer;
import dev.mm4j.inference.VqaModel;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code POST /v1/answer}: questions about images, batched dynamically ({@link Batcher}) over a {@link VqaModel}. */
final class AnswerRoutes implements Resource {
    private final ServePolicy policy;
    private final boolean served;
    private final Timer latency;
    private final DistributionSummary batchSizes;
    private volatile VqaModel model;
    private volatile Batcher batcher;

    AnswerRoutes(ServePolicy policy, boolean served) {
        this.policy = policy;
        this.served = served;
        this.latency = policy.timer("mm4j.request.latency", "POST /v1/answer latency");
        this.batchSizes = policy.batchSizes("mm4j.batch.size", "requests per forward pass");
        Gauge.builder("mm4j.queue.depth", () -> batcher == null ? 0 : batcher.depth())
                .description("requests waiting for a forward pass").register(policy.registry);
        Gauge.builder("mm4j.image.cache.bytes", () -> model == null ? 0 : model.imageCacheBytes())
                .description("bytes of image-encoder outputs cached").register(policy.registry);
        for (String r : List.of("hit", "miss")) {
            cacheCounter(r);
        }
    }

    void ready(VqaModel m) {
        ModelServer.Settings s = policy.settings;
        this.batcher = new Batcher(m, s.maxBatch(), s.maxWaitMs(), s.maxQueue(), batchSizes::record);
        this.model = m;
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(HandlerType.POST, "/v1/answer", ctx -> policy.handle(ctx, latency, this::answer)));
    }

    @Override
    public void describe(Map<String, Object> ready) {
        if (served) {
            ready.put("model", model.name());
        }
    }

    @Override
    public void stop() {
        if (batcher != null) {
            batcher.close();
        }
    }

    @Override
    public void release() {
        if (model != null) {
            model.close();
        }
    }

    private Map<String, Object> answer(Context ctx, long t0) {
        policy.checkServing(served, "--model DIR");
        VqaModel m = model;
        ServePolicy.Fields f = policy.fields(ctx, "{\"image\": base64, \"question\": ..., \"k\": ...}", "question", "k");
        byte[] image = f.image();
        if (image == null) {
            throw new ServePolicy.HttpError(400, "image: missing (" + f.imageField() + ")");
        }
        String question = f.values().get("question");
        int k = policy.parseK(f.values().get("k"));
        VqaModel.Query q = m.prepare(image, question);
        long tPrepared = System.nanoTime();
        VqaModel.Result r = policy.await(policy.queued(() -> batcher.submit(q, k)), t0);
        long tDone = System.nanoTime();
        cacheCounter(r.imageCached() ? "hit" : "miss").increment();
        Map<String, Object> out = new LinkedHashMap<>();
        List<Map<String, Object>> answers = new ArrayList<>();
        for (Answer a : r.answers()) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("answer", a.answer());
            e.put("probability", a.probability());
            answers.add(e);
        }
        out.put("answers", answers);
        out.put("model", m.name());
        out.put("question_truncated", q.truncated());
        out.put("question_tokens", Map.of("given", q.questionTokens(), "used", q.usedTokens(), "max", m.maxQuestionTokens()));
        out.put("image_cache", r.imageCached() ? "hit" : "miss");
        out.put("batch_size", r.batchSize());
        Map<String, Object> timing = new LinkedHashMap<>();
        timing.put("prepare", ServePolicy.ms(tPrepared - t0));
        timing.put("queue", Math.max(0, ServePolicy.round(ServePolicy.ms(tDone - tPrepared) - r.forwardMs())));
        timing.put("forward", ServePolicy.round(r.forwardMs()));
        timing.put("total", ServePolicy.ms(tDone - t0));
        out.put("timing_ms", timing);
        return out;
    }

    private Counter cacheCounter(String result) {
        return Counter.builder("mm4j.image.cache.requests").description("answered requests by image-cache result")
                .tag("result", result).register(policy.registry);
    }
}
