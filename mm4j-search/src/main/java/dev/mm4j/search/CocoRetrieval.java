package dev.mm4j.search;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.inference.Embedder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Zero-shot retrieval on a COCO-style captions file ({@code annotations/captions_*.json}: {@code images} with
 * {@code id} and {@code file_name}, {@code annotations} with {@code image_id} and {@code caption}; the image files in a
 * folder), as TorchMultimodal's {@code coco_zero_shot.py} measures it: every image and every caption embedded with the
 * projections ({@code encode_image} / {@code encode_text} with {@code projection=True}), L2-normalised, scored by their
 * dot product; image -> text and text -> image recall@1/@5/@10. Every caption of an image counts for it: an image is a
 * hit at k when any of its captions is among the first k of all captions, a caption when its image is among the first k
 * images (coco_zero_shot.py keeps the first caption of each image only, so that its similarity matrix is square).
 */
public final class CocoRetrieval {

    /** The captions file read: image files, captions, and each caption's image (an index into images). */
    public record Captions(List<Path> images, List<String> captions, int[] captionImage) {}

    /** Recall (fractions) both ways at 1, 5 and 10. */
    public record Result(double imageToText1, double imageToText5, double imageToText10, double textToImage1,
            double textToImage5, double textToImage10, int images, int captions) {
        /** The recall table as text. */
        public String table(String indent) {
            return dev.mm4j.report.TextTable.format(indent, List.of("direction", "R@1", "R@5", "R@10", "queries"), List.of(
                    List.of("image -> text", pct(imageToText1), pct(imageToText5), pct(imageToText10), String.valueOf(images)),
                    List.of("text -> image", pct(textToImage1), pct(textToImage5), pct(textToImage10), String.valueOf(captions))));
        }

        public String toJson() {
            return String.format(Locale.ROOT, "{\"image_to_text_recall@1\": %.6f, \"image_to_text_recall@5\": %.6f, "
                    + "\"image_to_text_recall@10\": %.6f, \"text_to_image_recall@1\": %.6f, \"text_to_image_recall@5\": %.6f, "
                    + "\"text_to_image_recall@10\": %.6f, \"images\": %d, \"captions\": %d}%n", imageToText1, imageToText5,
                    imageToText10, textToImage1, textToImage5, textToImage10, images, captions);
        }

        private static String pct(double v) {
            return String.format(Locale.ROOT, "%.1f%%", 100 * v);
        }
    }

    private CocoRetrieval() {}

    /**
     * Reads a COCO captions file; {@code imageDir} holds the images (null: the folder named after the file's split next
     * to its {@code annotations/} folder, e.g. {@code val2017/} for {@code annotations/captions_val2017.json}).
     *
     * @param limit at most this many images (0 = all), with all their captions
     */
    public static Captions read(Path captionsFile, Path imageDir, int limit) throws IOException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(captionsFile.toFile());
        } catch (IOException e) {
            throw new IOException(captionsFile + ": not a COCO captions JSON file (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        if (root == null || !root.path("images").isArray() || !root.path("annotations").isArray()) {
            throw new IOException(captionsFile + ": a COCO captions file needs 'images' and 'annotations' arrays");
        }
        if (imageDir == null) {
            String name = captionsFile.getFileName().toString().replaceFirst("^captions_", "").replaceFirst("\\.json$", "");
            Path parent = captionsFile.toAbsolutePath().getParent();
            imageDir = (parent.getFileName() != null && parent.getFileName().toString().equals("annotations")
                    ? parent.getParent() : parent).resolve(name);
        }
        Map<Long, Integer> index = new LinkedHashMap<>();
        List<Path> images = new ArrayList<>();
        for (JsonNode im : root.get("images")) {
            if (limit > 0 && images.size() >= limit) {
                break;
            }
            if (!im.has("id") || !im.has("file_name")) {
                throw new IOException(captionsFile + ": images[" + images.size() + "] needs 'id' and 'file_name'");
            }
            index.put(im.get("id").asLong(), images.size());
            images.add(imageDir.resolve(im.get("file_name").asText()));
        }
        List<String> captions = new ArrayList<>();
        List<Integer> owner = new ArrayList<>();
        int a = 0;
        for (JsonNode an : root.get("annotations")) {
            if (!an.has("image_id") || !an.has("caption")) {
                throw new IOException(captionsFile + ": annotations[" + a + "] needs 'image_id' and 'caption'");
            }
            a++;
            Integer i = index.get(an.get("image_id").asLong());
            if (i != null) {
                captions.add(an.get("caption").asText().strip());
                owner.add(i);
            }
        }
        if (images.isEmpty() || captions.isEmpty()) {
            throw new IOException(captionsFile + ": no images with captions");
        }
        return new Captions(images, captions, owner.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Embeds the images and captions with {@code embedder} and measures recall both ways. */
    public static Result evaluate(Embedder embedder, Captions c) throws IOException {
        List<byte[]> bytes = new ArrayList<>();
        List<String> names = new ArrayList<>();
        float[][] imageVectors = new float[c.images().size()][];
        for (int start = 0; start < c.images().size(); start += Embedder.BATCH) {
            bytes.clear();
            names.clear();
            for (int i = start; i < Math.min(c.images().size(), start + Embedder.BATCH); i++) {
                bytes.add(Files.readAllBytes(c.images().get(i)));
                names.add(c.images().get(i).toString());
            }
            float[][] part = embedder.images(bytes, names);
            System.arraycopy(part, 0, imageVectors, start, part.length);
        }
        return recall(imageVectors, embedder.texts(c.captions()), c.captionImage());
    }

    /** Recall both ways from L2-normalised vectors; {@code captionImage[t]} is caption t's image. */
    public static Result recall(float[][] images, float[][] texts, int[] captionImage) {
        int[] i2t = new int[3];
        int[] t2i = new int[3];
        int[] ks = {1, 5, 10};
        Map<Integer, List<Integer>> captionsOf = new HashMap<>();
        for (int t = 0; t < texts.length; t++) {
            captionsOf.computeIfAbsent(captionImage[t], k -> new ArrayList<>()).add(t);
        }
        for (int i = 0; i < images.length; i++) {
            double[] scores = new double[texts.length];
            for (int t = 0; t < texts.length; t++) {
                scores[t] = Embedder.cosine(images[i], texts[t]);
            }
            int rank = RetrievalRecall.bestRelevantRank(scores, new java.util.HashSet<>(captionsOf.getOrDefault(i, List.of())));
            for (int k = 0; k < 3; k++) {
                i2t[k] += rank < ks[k] ? 1 : 0;
            }
        }
        for (int t = 0; t < texts.length; t++) {
            double[] scores = new double[images.length];
            for (int i = 0; i < images.length; i++) {
                scores[i] = Embedder.cosine(texts[t], images[i]);
            }
            int rank = RetrievalRecall.bestRelevantRank(scores, java.util.Set.of(captionImage[t]));
            for (int k = 0; k < 3; k++) {
                t2i[k] += rank < ks[k] ? 1 : 0;
            }
        }
        double n = images.length;
        double m = texts.length;
        return new Result(i2t[0] / n, i2t[1] / n, i2t[2] / n, t2i[0] / m, t2i[1] / m, t2i[2] / m, images.length, texts.length);
    }

    /** Writes a COCO-style captions file for {@code images} (file names relative to the image folder) and their captions. */
    public static String cocoJson(List<String> fileNames, List<List<String>> captions) throws IOException {
        ObjectMapper om = new ObjectMapper();
        var root = om.createObjectNode();
        var ims = root.putArray("images");
        var anns = root.putArray("annotations");
        long ann = 1;
        for (int i = 0; i < fileNames.size(); i++) {
            ims.addObject().put("id", i + 1).put("file_name", fileNames.get(i));
            for (String cap : captions.get(i)) {
                anns.addObject().put("id", ann++).put("image_id", i + 1).put("caption", cap);
            }
        }
        return om.writeValueAsString(root);
    }

    /**
     * Writes {@code dataDir/annotations/captions_SPLIT.json}, a COCO-style captions file, from the captions manifest that
     * {@code synth} writes ({@code captions_SPLIT.jsonl}: {@code image} relative to {@code dataDir}, {@code text});
     * captions of the same image are grouped under it. Evaluate it with the images folder {@code dataDir}.
     */
    public static Path writeFromManifest(Path dataDir, String split) throws IOException {
        Path manifest = dataDir.resolve(dev.mm4j.data.CaptionPairs.manifestName(split));
        ObjectMapper om = new ObjectMapper();
        Map<String, List<String>> byImage = new LinkedHashMap<>();
        List<String> lines = Files.readAllLines(manifest);
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            JsonNode n = om.readTree(lines.get(i));
            if (!n.hasNonNull("image") || !n.hasNonNull("text")) {
                throw new IOException(manifest + ":" + (i + 1) + ": needs 'image' and 'text'");
            }
            byImage.computeIfAbsent(n.get("image").asText(), k -> new ArrayList<>()).add(n.get("text").asText());
        }
        Path out = dataDir.resolve("annotations").resolve("captions_" + split + ".json");
        Files.createDirectories(out.getParent());
        String json = cocoJson(new ArrayList<>(byImage.keySet()), new ArrayList<>(byImage.values()));
        dev.mm4j.util.AtomicFiles.writeString(out, json);
        return out;
    }
}
