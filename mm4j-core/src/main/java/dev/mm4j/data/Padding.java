package dev.mm4j.data;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Locale;

/**
 * How questions are padded, the one padding concept of the project: the settings key {@code padding},
 * the loader's batches, the model's multimodal mask and the bundle all use this.
 */
public enum Padding {
    /** To the tokenizer's max length (the tutorial: 512); the multimodal encoder attends to the padding, as in the reference. */
    FIXED,
    /** To the longest question in the batch; the padding is masked in the multimodal encoder, so results do not depend on it. */
    DYNAMIC;

    /** Whether a model trained with this padding masks text padding in its multimodal encoder. */
    public boolean masksTextInMultimodal() {
        return this == DYNAMIC;
    }

    /** {@code fixed} or {@code dynamic} (any case). */
    @JsonCreator
    public static Padding parse(String s) {
        try {
            return valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("padding must be fixed or dynamic, got '" + s + "'");
        }
    }

    /** The settings-file spelling: {@code fixed} / {@code dynamic}. */
    @Override
    @JsonValue
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
