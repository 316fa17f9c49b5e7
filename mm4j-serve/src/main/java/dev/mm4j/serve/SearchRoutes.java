package dev.mm4j.serve;

import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code POST /v1/embed} and {@code POST /v1/search} over an {@link ImageSearch}: inputs decoded and tokenized on the
 * request's thread, the forward passes batched ({@link EmbedBatcher}); hits link to {@link ImageRoutes}.
 */
final class SearchRoutes implements Resource {
    private static final Logger log = LoggerFactory.getLogger(ModelServer.class);
    /** Thumbnail size (longer side) in search hits' {@code thumbnail_url}. */
    static final int THUMBNAIL = 160;

    private final ServePolicy policy;
    private final boolean served;
    private final Timer embedLatency;
    private final Timer searchLatency;
    private final DistributionSummary embedBatchSizes;
    private volatile ImageSearch search;
    private volatile EmbedBatcher embedBatcher;

    SearchRoutes(ServePolicy policy, boolean served) {
        this.policy = policy;
        this.served = served;
        this.embedLatency = policy.timer("mm4j.embed.latency", "POST /v1/embed latency");
        this.searchLatency = policy.timer("mm4j.search.latency", "POST /v1/search latency (embedding the query included)");
        this.embedBatchSizes = policy.batchSizes("mm4j.embed.batch.size",
                "texts and images per embedding batch (/v1/embed, /v1/search)");
        Gauge.builder("mm4j.embed.queue.depth", () -> embedBatcher == null ? 0 : embedBatcher.depth())
                .description("texts and images waiting to be embedded").register(policy.registry);
    }

    void ready(ImageSearch se) {
        ModelServer.Settings s = policy.settings;
        this.embedBatcher = new EmbedBatcher(se, s.maxBatch(), s.maxWaitMs(), s.maxQueue(), embedBatchSizes::record);
        this.search = se;
    }

    /** The search served, or null. */
    ImageSearch search() {
        return search;
    }

    /** Whether an index is served (/v1/search, /v1/images). */
    boolean indexed() {
        ImageSearch se = search;
        return se != null && se.indexed();
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(HandlerType.POST, "/v1/embed", ctx -> policy.handle(ctx, embedLatency, this::embed)),
                new Route(HandlerType.POST, "/v1/search", ctx -> policy.handle(ctx, searchLatency, this::search)));
    }

    /** The model and index size; an index folder that is gone throws {@link ImageIndex.UnavailableException}. */
    @Override
    public void describe(Map<String, Object> ready) throws IOException {
        ImageSearch se = search;
        if (!served || se == null) {
            return;
        }
        if (!se.available()) {
            se.size(); // throws the reason
        }
        ready.put("search", info(se));
    }

    @Override
    public void stop() {
        if (embedBatcher != null) {
            embedBatcher.close();
        }
    }

    @Override
    public void release() {
        if (search != null) {
            try {
                search.close();
            } catch (IOException e) {
                log.warn("closing the search index: {}", e.getMessage());
            }
        }
    }

    private Map<String, Object> embed(Context ctx, long t0) {
        policy.checkServing(served, "--index DIR or --embed-model DIR");
        ImageSearch se = search;
        ServePolicy.Fields f = policy.fields(ctx, "{\"image\": base64, \"text\": ...} (either or both)", "text");
        String text = f.values().get("text");
        if (f.image() == null && text == null) {
            throw new ServePolicy.HttpError(400, "body: give 'image' (" + f.imageField() + ") and/or 'text'");
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", se.name());
        out.put("dimension", se.dimension());
        // decoded and tokenized here, on the request's thread; only the forward passes are queued (batched)
        float[] pixels = f.image() == null ? null : se.pixels(f.image());
        long[] ids = text == null ? null : se.textIds(text);
        EmbedBatcher b = embedBatcher;
        CompletableFuture<float[]> imageF = pixels == null ? null : policy.queued(() -> b.image(pixels));
        CompletableFuture<float[]> textF = ids == null ? null : policy.queued(() -> b.text(ids));
        float[] image = imageF == null ? null : policy.await(imageF, t0);
        float[] txt = textF == null ? null : policy.await(textF, t0);
        if (image != null) {
            out.put("image", image);
        }
        if (txt != null) {
            out.put("text", txt);
        }
        if (image != null && txt != null) {
            out.put("similarity", Embedder.cosine(image, txt));
        }
        out.put("timing_ms", Map.of("total", ServePolicy.ms(System.nanoTime() - t0)));
        return out;
    }

    private Map<String, Object> search(Context ctx, long t0) throws IOException {
        policy.checkServing(indexed(), "--index DIR");
        ImageSearch se = search;
        ServePolicy.Fields f = policy.fields(ctx, "{\"text\": ..., \"k\": ..., \"candidates\": ..., \"exact\": ...} or "
                + "{\"image\": base64, \"k\": ...}", "text", "k", "candidates", "exact");
        String text = f.values().get("text");
        if ((f.image() == null) == (text == null)) {
            throw new ServePolicy.HttpError(400, "body: give 'text' or 'image' (" + f.imageField() + "), one of them");
        }
        int k = policy.parseK(f.values().get("k"));
        int candidates = ServePolicy.parseCandidates(f.values().get("candidates"));
        boolean exact = ServePolicy.parseBoolean("exact", f.values().get("exact"));
        float[] query;
        EmbedBatcher b = embedBatcher;
        if (text != null) {
            long[] ids = se.textIds(text);
            query = policy.await(policy.queued(() -> b.text(ids)), t0);
        } else {
            float[] pixels = se.pixels(f.image());
            query = policy.await(policy.queued(() -> b.image(pixels)), t0);
        }
        long tEmbedded = System.nanoTime();
        List<Map<String, Object>> hits = new ArrayList<>();
        for (ImageIndex.Hit h : se.search(query, k, candidates, exact)) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("score", h.score());
            e.put("path", h.path());
            e.put("text", h.text());
            e.put("sha256", h.sha256());
            e.put("image_url", "/v1/images/" + h.sha256());
            e.put("thumbnail_url", "/v1/images/" + h.sha256() + "?size=" + THUMBNAIL);
            hits.add(e);
        }
        long tDone = System.nanoTime();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("hits", hits);
        out.put("query", text != null ? "text" : "image");
        out.put("search", info(se));
        Map<String, Object> timing = new LinkedHashMap<>();
        timing.put("embed", ServePolicy.ms(tEmbedded - t0));
        timing.put("search", ServePolicy.ms(tDone - tEmbedded));
        timing.put("total", ServePolicy.ms(tDone - t0));
        out.put("timing_ms", timing);
        return out;
    }

    private static Map<String, Object> info(ImageSearch se) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", se.name());
        m.put("dimension", se.dimension());
        if (se.indexed()) {
            m.put("images", se.size());
        }
        return m;
    }
}
