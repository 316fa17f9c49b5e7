package dev.mm4j.data;

import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Synthetic pretraining data for the demo, from {@link SyntheticTextVqa}'s rendered signs: the three sources
 * FLAVA pretrains on, written next to the synthetic TextVQA set:
 * <pre>
 * out/captions_train.jsonl     image-text pairs: the training signs and their captions ("a red sign with blue
 *                              letters that says STOP"; what retrieval reads)
 * out/pretrain_texts.txt       the same captions alone, one per line (text source: MLM)
 * out/pretrain_images/         the same training images alone (image source: MIM), hard links where the file
 *                              system allows, else copies
 * </pre>
 * Deterministic for a seed, as the generator is. The text file is written through a temp file and the image
 * folder is filled under a temporary name and then renamed, so neither is ever half written.
 */
public final class SyntheticPretraining {
    public static final String TEXTS_FILE = "pretrain_texts.txt";
    public static final String IMAGES_DIR = "pretrain_images";

    /** Where the three sources are, and what the generator wrote. */
    public record Written(Path pairs, Path texts, Path images, SyntheticTextVqa.Summary synth) {
        /** The three sources, read back. */
        public List<PretrainingSource> sources() throws IOException {
            return List.of(PretrainingSource.pairs(pairs, "train"), PretrainingSource.texts(texts),
                    PretrainingSource.images(images));
        }
    }

    private SyntheticPretraining() {}

    /** Generates the synthetic TextVQA set of {@code opts}, then the text file and image folder from its train split. */
    public static Written generate(SyntheticTextVqa.Options opts) throws IOException {
        SyntheticTextVqa.Summary summary = SyntheticTextVqa.generate(opts);
        Path out = opts.out();
        Path pairsFile = out.resolve(CaptionPairs.manifestName(TextVqaSplit.TRAIN.officialName()));
        List<CaptionPairs.Pair> pairs = CaptionPairs.manifest(pairsFile);
        StringBuilder texts = new StringBuilder();
        for (CaptionPairs.Pair p : pairs) {
            texts.append(p.text().replace('\n', ' ')).append('\n');
        }
        Path textsFile = out.resolve(TEXTS_FILE);
        AtomicFiles.writeString(textsFile, texts.toString());
        Path images = out.resolve(IMAGES_DIR);
        Path tmp = AtomicFiles.createTempDirectory(out, "." + IMAGES_DIR);
        try {
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (CaptionPairs.Pair p : pairs) {
                Path src = ((VqaSample.FileImage) p.image()).path();
                String name = src.getFileName().toString();
                if (!seen.add(name)) {
                    continue;
                }
                Path dst = tmp.resolve(name);
                try {
                    Files.createLink(dst, src);
                } catch (IOException | UnsupportedOperationException e) {
                    Files.copy(src, dst);
                }
            }
            deleteTree(images);
            Files.move(tmp, images);
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
        return new Written(pairsFile, textsFile, images, summary);
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
