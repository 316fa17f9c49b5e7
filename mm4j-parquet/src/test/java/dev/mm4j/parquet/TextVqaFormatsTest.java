package dev.mm4j.parquet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.TextVqaJsonReader;
import dev.mm4j.data.TextVqaSplit;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The official json layout and the hub's parquet schema give the same samples. */
class TextVqaFormatsTest {
    @TempDir static Path tmp;
    static Path synth;

    @BeforeAll
    static void generate() throws Exception {
        synth = tmp.resolve("synth");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(synth, 30, 12, 9, 7L, 96, 64, 2));
    }

    static List<VqaSample> readAll(VqaDataset ds) {
        List<VqaSample> out = new ArrayList<>();
        for (VqaSample s : ds) {
            out.add(s);
        }
        return out;
    }

    @Test
    void jsonAndParquetGiveEqualSamples() throws Exception {
        ObjectMapper mapper = new ObjectMapper();
        for (TextVqaSplit split : TextVqaSplit.values()) {
            List<VqaSample> fromJson;
            try (VqaDataset json = TextVqaDatasets.open(synth, split.officialName())) {
                assertInstanceOf(TextVqaJsonReader.class, json);
                fromJson = readAll(json);
                assertEquals(0, json.skippedCount());
            }
            // independent look at the raw json: same count, ids and answers
            JsonNode raw = mapper.readTree(synth.resolve(split.officialJsonName()).toFile()).get("data");
            assertEquals(raw.size(), fromJson.size());
            int expected = switch (split) { case TRAIN -> 30; case VAL -> 12; case TEST -> 9; };
            assertEquals(expected, fromJson.size());
            for (int i = 0; i < raw.size(); i++) {
                VqaSample s = fromJson.get(i);
                assertEquals(raw.get(i).get("question_id").asLong(), s.questionId());
                assertEquals(raw.get(i).get("question").asText(), s.question());
                assertEquals(split == TextVqaSplit.TEST ? 0 : 10, s.answers().size());
                assertEquals(List.of("image_classes", "flickr_original_url", "flickr_300k_url", "image_width", "image_height",
                        "question_tokens", "set_name"), new ArrayList<>(s.extras().keySet()));
                assertEquals(96, s.extras().get("image_width"));
                assertEquals(split.officialName(), s.extras().get("set_name"));
                assertEquals(synth.resolve(split.imagesDir()).resolve(s.imageId() + ".jpg").toAbsolutePath(),
                        ((VqaSample.FileImage) s.image()).path().toAbsolutePath());
            }

            // hub layout: data/<hubname>-0000k-of-00002.parquet, small row groups so several are read
            Path data = tmp.resolve("hub").resolve("data");
            int half = fromJson.size() / 2;
            String prefix = split.hubName();
            TextVqaParquetWriter.write(data.resolve(prefix + "-00000-of-00002.parquet"), fromJson.subList(0, half), 4);
            TextVqaParquetWriter.write(data.resolve(prefix + "-00001-of-00002.parquet"), fromJson.subList(half, fromJson.size()), 4);

            List<VqaSample> fromParquet;
            try (VqaDataset pq = TextVqaDatasets.open(tmp.resolve("hub"), split.hubName())) {
                assertInstanceOf(TextVqaParquetReader.class, pq);
                assertEquals(OptionalLong.of(fromJson.size()), pq.sizeIfCheap());
                fromParquet = readAll(pq);
                assertEquals(0, pq.skippedCount());
            }
            assertEquals(fromJson.size(), fromParquet.size());
            for (int i = 0; i < fromJson.size(); i++) {
                VqaSample a = fromJson.get(i);
                VqaSample b = fromParquet.get(i);
                assertEquals(a.questionId(), b.questionId());
                assertEquals(a.question(), b.question());
                assertEquals(a.imageId(), b.imageId());
                assertEquals(a.answers(), b.answers());
                assertEquals(a.extras(), b.extras(), "extras of " + a.describe());
                assertEquals(new ArrayList<>(a.extras().keySet()), new ArrayList<>(b.extras().keySet()));
                VqaSample.BytesImage img = assertInstanceOf(VqaSample.BytesImage.class, b.image());
                assertEquals(a.imageId() + ".jpg", img.path());
                byte[] onDisk = Files.readAllBytes(synth.resolve(split.imagesDir()).resolve(a.imageId() + ".jpg"));
                assertArrayEquals(onDisk, img.bytes());
                assertArrayEquals(a.image().readBytes(), b.image().readBytes());
                assertTrue(b.origin().matches(prefix + "-0000[01]-of-00002\\.parquet row \\d+"), b.origin());
            }
        }
    }

    @Test
    void parquetFileDirectlyAndStopEarly() throws Exception {
        List<VqaSample> train;
        try (VqaDataset json = TextVqaDatasets.open(synth.resolve("TextVQA_0.5.1_train.json"), null)) {
            train = readAll(json);
        }
        Path file = tmp.resolve("one.parquet");
        assertEquals(train.size(), TextVqaParquetWriter.write(file, train, 1000));
        try (VqaDataset pq = TextVqaDatasets.open(file, "train")) {
            assertEquals(train.size(), pq.size());
            try (VqaDataset.SampleIterator it = pq.iterator()) { // abandoned after 3 rows
                for (int i = 0; i < 3; i++) {
                    assertEquals(train.get(i).questionId(), it.next().questionId());
                }
            }
            assertEquals(train.get(5).question(), pq.stream().skip(5).findFirst().orElseThrow().question());
        }
    }
}
