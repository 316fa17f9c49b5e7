package dev.mm4j.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * One TextVQA question as every reader produces it, whatever file format it came from.
 *
 * @param questionId the dataset's question id
 * @param question the question text
 * @param imageId the image id (file name without extension in the official release)
 * @param answers the human answers (10 in train/val; may be empty for test)
 * @param image where the image bytes come from (a file, or bytes embedded in a parquet row)
 * @param extras the other fields when present (image_classes, flickr_original_url, flickr_300k_url,
 *     image_width, image_height, question_tokens, set_name), insertion-ordered
 * @param origin where the record came from, for messages, e.g. {@code TextVQA_0.5.1_train.json record 17}
 */
public record VqaSample(
        long questionId,
        String question,
        String imageId,
        List<String> answers,
        ImageSource image,
        Map<String, Object> extras,
        String origin) {

    /** Where an image's encoded bytes (JPEG/PNG/...) come from. */
    public sealed interface ImageSource permits FileImage, BytesImage {
        byte[] readBytes() throws IOException;

        /** A short description for messages (the path). */
        String describe();
    }

    /** An image file on disk (official release: {@code <images_dir>/<image_id>.jpg}). */
    public record FileImage(Path path) implements ImageSource {
        @Override
        public byte[] readBytes() throws IOException {
            return Files.readAllBytes(path);
        }

        @Override
        public String describe() {
            return path.toString();
        }
    }

    /** Encoded image bytes embedded in the dataset file (Hugging Face parquet: {@code image.bytes}). */
    public record BytesImage(byte[] bytes, String path) implements ImageSource {
        @Override
        public byte[] readBytes() {
            return bytes;
        }

        @Override
        public String describe() {
            return path == null ? "<embedded image>" : path;
        }
    }

    /**
     * A question of the caller's own data: no extras, the image's description as its id, and the dataset's record
     * number as its origin (see {@link VqaDataset#of}).
     *
     * @param answers the human answers (empty when there are none)
     */
    public static VqaSample of(long questionId, String question, List<String> answers, ImageSource image) {
        return new VqaSample(questionId, question, image == null ? null : image.describe(), answers, image, Map.of(), null);
    }

    /** A short name for warnings: origin plus question id. */
    public String describe() {
        return origin + " (question_id " + questionId + ")";
    }
}
