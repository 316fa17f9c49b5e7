package dev.mm4j.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Field names of a TextVQA record and the canonical order of {@link VqaSample#extras()}. */
public final class TextVqaFields {
    private TextVqaFields() {}

    public static final String QUESTION = "question";
    public static final String QUESTION_ID = "question_id";
    public static final String IMAGE_ID = "image_id";
    public static final String ANSWERS = "answers";
    public static final String IMAGE = "image";

    /** The extra fields of the official release, in the order readers put them into {@code extras}. */
    public static final List<String> EXTRAS_ORDER = List.of(
            "image_classes", "flickr_original_url", "flickr_300k_url", "image_width", "image_height",
            "question_tokens", "set_name");

    /**
     * An unmodifiable copy of {@code extras} with the known fields first in {@link #EXTRAS_ORDER}, then
     * any others in their original order, so both readers give the same iteration order.
     */
    public static Map<String, Object> canonicalExtras(Map<String, Object> extras) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (String key : EXTRAS_ORDER) {
            if (extras.containsKey(key)) {
                out.put(key, extras.get(key));
            }
        }
        for (Map.Entry<String, Object> e : extras.entrySet()) {
            if (!out.containsKey(e.getKey())) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /** An unmodifiable list that may hold nulls (List.copyOf rejects them). */
    public static <T> List<T> listOf(List<T> values) {
        return Collections.unmodifiableList(new ArrayList<>(values));
    }
}
