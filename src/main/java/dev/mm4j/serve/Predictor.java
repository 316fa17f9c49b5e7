package dev.mm4j.serve;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
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
        long[] ids = bundle.info().dynamicPadding ? bundle.tokenizer().encode(question)
                : bundle.tokenizer().encodePadded(question, bundle.info().maxLength);
        try (NDManager m = manager.newSubManager(); NDScope scope = new NDScope()) {
            NDArray img = m.create(pixels, new Shape(1, 3, bundle.transform().height(), bundle.transform().width()));
            NDArray text = m.create(ids, new Shape(1, ids.length));
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
