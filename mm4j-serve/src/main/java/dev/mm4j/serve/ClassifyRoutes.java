package dev.mm4j.serve;

import dev.mm4j.data.LabelledExamples;
import dev.mm4j.eval.LabelledClassifier;
import dev.mm4j.inference.InvalidInputException;
import dev.mm4j.inference.VqaModel;
import dev.mm4j.util.Hardware;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Timer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code POST /v1/classify}: a labelled-classification model ({@link LabelledModel}: text, image or image + text, as
 * its head reads) over HTTP. Images are decoded and texts stay on the request's thread; the forward passes are batched
 * ({@link Batcher}), with the server's queue bound, timeout and error policy.
 */
final class ClassifyRoutes implements Resource {
    private final ServePolicy policy;
    private final boolean served;
    private final Timer latency;
    private final DistributionSummary batchSizes;
    private volatile LabelledModel model;
    private volatile Batcher<Input, LabelledClassifier.Prediction> batcher;

    /** One request's example and its decoded image (null when the head reads none). */
    private record Input(LabelledExamples.Example example, float[] pixels) {}

    ClassifyRoutes(ServePolicy policy, boolean served) {
        this.policy = policy;
        this.served = served;
        this.latency = policy.timer("mm4j.classify.latency", "POST /v1/classify latency");
        this.batchSizes = policy.batchSizes("mm4j.classify.batch.size", "examples per classification forward pass");
    }

    void ready(LabelledModel m) {
        ModelServer.Settings s = policy.settings;
        this.batcher = new Batcher<>("mm4j-classify-batcher", inputs -> classify(m, inputs), s.maxBatch(),
                s.maxWaitMs(), s.maxQueue(), batchSizes::record);
        this.model = m;
    }

    private static List<LabelledClassifier.Prediction> classify(LabelledModel m, List<Input> inputs) {
        Hardware.noGradOnThisThread();
        try {
            return m.classifier().predict(inputs.stream().map(Input::example).toList(),
                    inputs.stream().map(Input::pixels).toList(), 0);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(HandlerType.POST, "/v1/classify", ctx -> policy.handle(ctx, latency, this::classify)));
    }

    @Override
    public void describe(Map<String, Object> ready) {
        if (served) {
            ready.put("classifier", Map.of("model", model.name(), "head",
                    model.classifier().head().name().toLowerCase(Locale.ROOT), "classes", model.classifier().classes().size()));
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

    private Map<String, Object> classify(Context ctx, long t0) {
        policy.checkServing(served, "--model DIR (a classification bundle)");
        LabelledModel m = model;
        ServePolicy.Fields f = policy.fields(ctx, "{\"text\": ..., \"text_pair\": ..., \"image\": base64, \"k\": ...}",
                "text", "text_pair", "k");
        String text = f.values().get("text");
        String pair = f.values().get("text_pair");
        int k = policy.parseK(f.values().get("k"));
        String head = m.classifier().head().name().toLowerCase(Locale.ROOT);
        if (m.readsImage() && f.image() == null) {
            throw new ServePolicy.HttpError(400, "image: missing (" + f.imageField() + "): this model's head reads " + head);
        }
        if (m.readsText() && (text == null || text.isBlank())) {
            throw new ServePolicy.HttpError(400, "text: missing or empty: this model's head reads " + head);
        }
        float[] pixels = null;
        if (m.readsImage()) {
            VqaModel.checkImage(f.image(), "image", m.maxPixels());
            try {
                pixels = m.classifier().transform().apply(f.image(), "image");
            } catch (IOException | RuntimeException e) {
                throw new InvalidInputException(InvalidInputException.Kind.UNDECODABLE_IMAGE, e.getMessage());
            }
        }
        LabelledExamples.Example e = new LabelledExamples.Example("request", m.readsText() ? text : null,
                m.readsText() ? pair : null, null, null, "request");
        Input in = new Input(e, pixels);
        LabelledClassifier.Prediction p = policy.await(policy.queued(() -> batcher.submit(in)), t0);
        List<String> classes = m.classifier().classes();
        Integer[] order = new Integer[classes.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Float.compare(p.probabilities()[b], p.probabilities()[a]));
        List<Map<String, Object>> top = new ArrayList<>();
        for (int i = 0; i < Math.min(k, order.length); i++) {
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("label", classes.get(order[i]));
            c.put("probability", p.probabilities()[order[i]]);
            top.add(c);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("classes", top);
        out.put("model", m.name());
        out.put("head", head);
        out.put("timing_ms", Map.of("total", ServePolicy.ms(System.nanoTime() - t0)));
        return out;
    }
}
