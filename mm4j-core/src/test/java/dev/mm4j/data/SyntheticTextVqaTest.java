package dev.mm4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SyntheticTextVqaTest {
    @TempDir Path tmp;

    /** Relative path → bytes of every file under {@code dir}. */
    static Map<String, byte[]> files(Path dir) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                out.put(dir.relativize(p).toString(), Files.readAllBytes(p));
            }
        }
        return out;
    }

    @Test
    void sameSeedSameBytesOtherSeedOtherBytes() throws IOException {
        // different thread counts too: the output must not depend on scheduling
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("a"), 25, 8, 6, 123L, 128, 96, 1));
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("b"), 25, 8, 6, 123L, 128, 96, 3));
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("c"), 25, 8, 6, 124L, 128, 96, 2));
        Map<String, byte[]> a = files(tmp.resolve("a"));
        Map<String, byte[]> b = files(tmp.resolve("b"));
        Map<String, byte[]> c = files(tmp.resolve("c"));
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            assertArrayEquals(a.get(k), b.get(k), k);
        }
        assertTrue(a.containsKey("TextVQA_0.5.1_train.json") && a.containsKey("answers.txt"));
        long jpegs = a.keySet().stream().filter(k -> k.endsWith(".jpg")).count();
        assertTrue(jpegs >= 39 / 2 && jpegs <= 39, "images: " + jpegs);
        // another seed: other image ids, other json
        assertFalse(java.util.Arrays.equals(a.get("TextVQA_0.5.1_train.json"), c.get("TextVQA_0.5.1_train.json")));
        Set<String> shared = new HashSet<>(a.keySet());
        shared.retainAll(c.keySet());
        assertEquals(Set.of("TextVQA_0.5.1_train.json", "TextVQA_0.5.1_val.json", "TextVQA_0.5.1_test.json", "answers.txt",
                "captions_train.jsonl", "captions_val.jsonl", "captions_test.jsonl"), shared);
        assertFalse(java.util.Arrays.equals(a.get("captions_train.jsonl"), c.get("captions_train.jsonl")));
        assertArrayEquals(a.get("answers.txt"), c.get("answers.txt"));
    }

    @Test
    void defaultLookIsTheOriginalSceneAndAnotherLookDrawsOtherPictures() throws IOException {
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("a"), 25, 8, 6, 123L, 128, 96, 2));
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("b"), 25, 8, 6, 123L, 128, 96, 2,
                SyntheticTextVqa.Look.DEFAULT));
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("e"), 25, 8, 6, 123L, 128, 96, 2,
                SyntheticTextVqa.Look.DEFAULT.withTextScale(0.30, 0.40).withMaxDistractors(0).withPositionJitter(0.25).withOneTextStyle(true)));
        Map<String, byte[]> a = files(tmp.resolve("a"));
        Map<String, byte[]> b = files(tmp.resolve("b"));
        Map<String, byte[]> e = files(tmp.resolve("e"));
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            assertArrayEquals(a.get(k), b.get(k), k);
        }
        // same images (ids are drawn first), other pictures
        assertEquals(a.keySet(), e.keySet());
        assertArrayEquals(a.get("answers.txt"), e.get("answers.txt"));
        assertTrue(a.keySet().stream().filter(k -> k.endsWith(".jpg")).anyMatch(k -> !java.util.Arrays.equals(a.get(k), e.get(k))));
        assertEquals(SyntheticTextVqa.Look.DEFAULT, new SyntheticTextVqa.Look(0.10, 0.24, -1, 1.0, false, false));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new SyntheticTextVqa.Look(0.3, 0.2, 0, 1.0, false, false));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new SyntheticTextVqa.Look(0.1, 0.2, -2, 1.0, false, false));
    }

    @Test
    void answersImagesAndFields() throws IOException {
        Path out = tmp.resolve("s");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(out, 400, 100, 50, 9L, 160, 120, 2));
        List<String> vocab = Files.readAllLines(out.resolve("answers.txt"));
        assertEquals("<unk>", vocab.get(0));
        assertEquals(SyntheticTextVqa.answerVocabulary(), vocab);
        assertEquals(vocab.size(), new HashSet<>(vocab).size());

        int[] agreeHistogram = new int[11];
        Map<String, Integer> truthCounts = new HashMap<>();
        long nextId = 0;
        Set<String> imageIds = new HashSet<>();
        for (String split : List.of("train", "val")) {
            try (VqaDataset ds = TextVqaDatasets.open(out, split)) {
                for (VqaSample s : ds) {
                    assertEquals(nextId++, s.questionId(), "question ids run on across splits");
                    assertEquals(10, s.answers().size());
                    Map<String, Integer> counts = new HashMap<>();
                    s.answers().forEach(a -> counts.merge(a, 1, Integer::sum));
                    String top = counts.entrySet().stream().max(Map.Entry.comparingByValue()).orElseThrow().getKey();
                    int agree = counts.get(top);
                    agreeHistogram[agree]++;
                    assertTrue(agree >= 7, s.describe() + " " + s.answers());
                    assertTrue(vocab.contains(top), top);
                    truthCounts.merge(top, 1, Integer::sum);
                    if (s.question().contains("colo")) {
                        assertTrue(SyntheticTextVqa.COLOURS.contains(top), s.question() + " → " + top);
                    } else {
                        assertTrue(SyntheticTextVqa.WORDS.contains(top), s.question() + " → " + top);
                    }
                    assertEquals(split, s.extras().get("set_name"));
                    assertEquals(160, s.extras().get("image_width"));
                    assertEquals(SyntheticTextVqa.tokens(s.question()), s.extras().get("question_tokens"));
                    assertTrue(((String) s.extras().get("flickr_original_url")).startsWith("https://farm"));
                    assertFalse(((List<?>) s.extras().get("image_classes")).isEmpty());
                    if (imageIds.add(s.imageId())) {
                        BufferedImage img = ImageIO.read(((VqaSample.FileImage) s.image()).path().toFile());
                        assertNotNull(img, s.image().describe());
                        assertEquals(160, img.getWidth());
                        assertEquals(120, img.getHeight());
                    }
                }
            }
        }
        assertEquals(500, nextId);
        // noise really happens, but rarely overturns the majority: roughly 45% unanimous, 10% at 7/10
        int total = 500;
        assertTrue(agreeHistogram[10] > total * 0.30 && agreeHistogram[10] < total * 0.60, java.util.Arrays.toString(agreeHistogram));
        assertTrue(agreeHistogram[7] > total * 0.03 && agreeHistogram[7] < total * 0.20, java.util.Arrays.toString(agreeHistogram));
        // the answers cover the vocabulary (30 words + 8 colours)
        assertTrue(truthCounts.size() >= 34, truthCounts.toString());
        // some images carry two questions
        assertTrue(imageIds.size() < 500 && imageIds.size() > 300, "images " + imageIds.size());

        try (VqaDataset test = TextVqaDatasets.open(out, "test")) {
            List<VqaSample> all = new ArrayList<>();
            test.forEach(all::add);
            assertEquals(50, all.size());
            all.forEach(s -> assertTrue(s.answers().isEmpty()));
            all.forEach(s -> assertTrue(Files.isRegularFile(out.resolve("test_images").resolve(s.imageId() + ".jpg"))));
        }
    }

    @Test
    void whitePanelWritesEveryWordOnWhiteInAColourThatStandsOutThereAndIsDeterministic() throws IOException {
        SyntheticTextVqa.Look panel = SyntheticTextVqa.Look.DEFAULT.withTextScale(0.35, 0.35).withMaxDistractors(0)
                .withPositionJitter(0).withOneTextStyle(true).withWhitePanel(true);
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("p1"), 300, 0, 0, 11L, 256, 192, 1, panel));
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("p2"), 300, 0, 0, 11L, 256, 192, 3, panel));
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(tmp.resolve("np"), 300, 0, 0, 11L, 256, 192, 2,
                panel.withWhitePanel(false)));
        Map<String, byte[]> a = files(tmp.resolve("p1"));
        Map<String, byte[]> b = files(tmp.resolve("p2"));
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            assertArrayEquals(a.get(k), b.get(k), k);
        }
        Map<String, Integer> textColours = new TreeMap<>();
        Map<String, Integer> signColours = new TreeMap<>();
        int images = 0;
        int whiteCentre = 0;
        int whiteCentreWithout = 0;
        try (VqaDataset ds = TextVqaDatasets.open(tmp.resolve("p1"), "train")) {
            Set<String> seen = new HashSet<>();
            for (VqaSample s : ds) {
                String truth = Labels.majority(s.answers());
                switch (SyntheticTextVqa.QuestionKind.of(s.question()).orElseThrow()) {
                    case TEXT_COLOUR -> textColours.merge(truth, 1, Integer::sum);
                    case SIGN_COLOUR -> signColours.merge(truth, 1, Integer::sum);
                    case READING -> assertTrue(SyntheticTextVqa.WORDS.contains(truth));
                }
                if (seen.add(s.imageId())) {
                    images++;
                    whiteCentre += whiteMiddle(tmp.resolve("p1/train_images/" + s.imageId() + ".jpg")) ? 1 : 0;
                    whiteCentreWithout += whiteMiddle(tmp.resolve("np/train_images/" + s.imageId() + ".jpg")) ? 1 : 0;
                }
            }
        }
        // text colours stand out on white: never white or yellow; the sign (the board) takes any colour
        assertEquals(Set.of("black", "blue", "green", "orange", "purple", "red"), textColours.keySet(), textColours.toString());
        assertTrue(signColours.size() >= 7, signColours.toString());
        // the panel: the middle of the picture, around the word, is mostly white on nearly every image
        assertTrue(whiteCentre > 0.9 * images, whiteCentre + " of " + images);
        assertTrue(whiteCentreWithout < 0.5 * images, whiteCentreWithout + " of " + images);
    }

    /** Whether at least a third of the pixels in the middle of the image (half its width, a fifth of its height) are near white. */
    private static boolean whiteMiddle(Path jpg) throws IOException {
        BufferedImage img = ImageIO.read(jpg.toFile());
        int w = img.getWidth();
        int h = img.getHeight();
        int white = 0;
        int n = 0;
        for (int y = h / 2 - h / 10; y < h / 2 + h / 10; y++) {
            for (int x = w / 4; x < 3 * w / 4; x++) {
                int rgb = img.getRGB(x, y);
                n++;
                white += ((rgb >> 16) & 0xff) > 215 && ((rgb >> 8) & 0xff) > 215 && (rgb & 0xff) > 215 ? 1 : 0;
            }
        }
        return white * 3 >= n;
    }

    @Test
    void tokens() {
        assertEquals(List.of("what", "does", "the", "sign", "say"), SyntheticTextVqa.tokens("What does the sign say?"));
    }
}
