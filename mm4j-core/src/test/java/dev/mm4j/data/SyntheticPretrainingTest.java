package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The demo's three pretraining sources from the rendered signs. */
class SyntheticPretrainingTest {
    @TempDir Path tmp;

    @Test
    void writesPairsTheirTextsAndTheirImagesAndTheyLoad() throws Exception {
        SyntheticTextVqa.Options opts = new SyntheticTextVqa.Options(tmp.resolve("a"), 24, 6, 3, 9, 96, 64, 1);
        SyntheticPretraining.Written w = SyntheticPretraining.generate(opts);
        List<PretrainingSource> sources = w.sources();
        PretrainingSource.Pairs pairs = (PretrainingSource.Pairs) sources.get(0);
        PretrainingSource.Texts texts = (PretrainingSource.Texts) sources.get(1);
        PretrainingSource.Images images = (PretrainingSource.Images) sources.get(2);
        assertEquals(pairs.captions(), texts.texts(), "the text source is the captions alone");
        Set<String> pairImages = new HashSet<>();
        for (CaptionPairs.Pair p : pairs.pairs()) {
            pairImages.add(((VqaSample.FileImage) p.image()).path().getFileName().toString());
        }
        Set<String> folder = new HashSet<>();
        for (Path p : images.images()) {
            folder.add(p.getFileName().toString());
            assertEquals(-1L, Files.mismatch(p, tmp.resolve("a/train_images").resolve(p.getFileName())));
        }
        assertEquals(pairImages, folder, "the image source is the pairs' images alone");
        assertTrue(texts.texts().get(0).matches("a [a-z]+ sign with .* that says [A-Z]+"), texts.texts().get(0));
        try (Stream<Path> s = Files.list(tmp.resolve("a"))) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "no temp left");
        }
        // the same seed again (over the old files): the same sources
        SyntheticPretraining.Written again = SyntheticPretraining.generate(opts);
        assertEquals(Files.readString(w.texts()), Files.readString(again.texts()));
        assertEquals(images.images().size(), ((PretrainingSource.Images) again.sources().get(2)).images().size());
        try (QuestionTokenizer tok = QuestionTokenizer.bertBaseUncased(512);
                PretrainingLoader l = PretrainingLoader.builder().tokenizer(tok).batchSize(2).seed(1)
                        .imageTransform(new PretrainingImageTransform(true, 32, 16, 0.9, 1.0,
                                ImageTransform.Normalize.CLIP))
                        .blockMasking(new BlockMasking(4, 4, 6, 2, null, 0.3, null))
                        .source(sources.get(0)).source(sources.get(1)).source(sources.get(2)).build()) {
            Set<PretrainingSource.Kind> kinds = new HashSet<>();
            var it = l.from(0);
            for (int k = 0; k < 20; k++) {
                PretrainingBatch b = it.next();
                kinds.add(b.kind());
                assertEquals(2, b.size());
            }
            assertEquals(Set.of(PretrainingSource.Kind.values()), kinds);
        }
    }
}
