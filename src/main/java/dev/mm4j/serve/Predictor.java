package dev.mm4j.serve;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.flava.ModelStep;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Answers a question about an image with a fine-tuned {@link ModelBundle}: top-k answers with probabilities. */
public final class Predictor {
    private Predictor() {}

    public record Answer(String answer, double probability) {}

    public static List<Answer> topK(ModelBundle.Loaded bundle, NDManager manager, byte[] image, String imageName,
            String question, int k) throws IOException {
        float[] pixels = bundle.transform().apply(image, imageName);
        long[] ids = bundle.encode(question);
        try (ModelStep step = ModelStep.open(manager)) {
            NDArray img = step.images(pixels, 1, bundle.transform().height(), bundle.transform().width());
            NDArray text = step.tokens(ids, 1, ids.length);
            float[] probs = bundle.model().forward(img, text, null).logits().softmax(-1).toFloatArray();
            Integer[] order = new Integer[probs.length];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> Float.compare(probs[b], probs[a]));
            List<Answer> out = new ArrayList<>();
            for (int i = 0; i < Math.min(k, order.length); i++) {
                out.add(new Answer(bundle.vocab().answer(order[i]), probs[order[i]]));
            }
            return out;
        }
    }
}
