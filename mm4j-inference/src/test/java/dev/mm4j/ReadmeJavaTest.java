package dev.mm4j;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaSample;
import dev.mm4j.inference.Answer;
import dev.mm4j.inference.VqaModel;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.Preset;
import dev.mm4j.train.TrainingListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "From Java" snippets, run as they are written there: every ```java block of that section must appear
 * in this file line for line, so the snippets compile and run or this test fails.
 */
class ReadmeJavaTest {
    @TempDir Path tmp;

    /** A caller's store, as the custom-data snippet uses it. */
    record Row(long id, String question, List<String> answers, byte[] jpeg, String key) {}

    record Store(List<Row> all) {
        Stream<Row> rows() {
            return all.stream();
        }
    }

    @Test
    void theSnippetsRun() throws Exception {
        Path data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 48, 12, 4, 3, 64, 48, 1));
        Path out = tmp.resolve("mine");
        Path image = data.resolve("train_images").resolve(Files.list(data.resolve("train_images")).sorted().findFirst()
                .orElseThrow().getFileName());

        // --- README: training
        Finetuner.Result r = Finetuner.builder()
                .preset(Preset.DEMO)                         // or TUTORIAL, TORCHMULTIMODAL; .settingsFile(yaml)
                .data(data)                                  // TextVQA JSON / parquet, or a .jsonl / .csv manifest
                .outputDir(out)
                .maxSteps(10).batchSize(8)
                .listener(new TrainingListener() {
                    @Override public void onStep(Step s) { System.out.printf("step %d loss %.3f%n", s.index(), s.loss()); }
                })
                .build()
                .run();                                      // finetuner.cancel() from another thread: stops, resumable
        System.out.println(r.status() + " after " + r.steps() + " steps; model in " + r.modelDir());
        // --- end

        assertEquals(Finetuner.Status.COMPLETED, r.status());
        assertEquals(10, r.steps());
        assertEquals(out.resolve("model"), r.modelDir());

        // --- README: prediction
        try (VqaModel model = VqaModel.load(r.modelDir())) {
            List<Answer> top = model.answer(Files.readAllBytes(image), "what does the sign say?", 3);
            System.out.println(top.get(0).answer() + " " + top.get(0).probability());
        }
        // --- end

        List<Row> rows = new ArrayList<>();
        try (VqaDataset ds = dev.mm4j.data.TextVqaDatasets.open(data, "train")) {
            for (VqaSample s : ds) {
                rows.add(new Row(s.questionId(), s.question(), s.answers(), s.image().readBytes(), s.imageId()));
            }
        }
        Store store = new Store(rows);
        Path out2 = tmp.resolve("mine2");

        // --- README: custom data
        VqaDataset mine = VqaDataset.of("my-store", () -> store.rows().map(row ->
                VqaSample.of(row.id(), row.question(), row.answers(), new VqaSample.BytesImage(row.jpeg(), row.key()))));
        Finetuner.Result r2 = Finetuner.builder().preset(Preset.DEMO).trainingData(mine).noValidation()
                .buildVocabulary(2).maxSteps(5).outputDir(out2).build().run();
        // --- end

        assertEquals(5, r2.steps());
        assertTrue(Files.readString(out2.resolve("answers.txt")).startsWith("<unk>\n"));
        assertTrue(Files.isRegularFile(r2.modelDir().resolve("model.safetensors")));

        // the README's blocks are these lines
        String readme = Files.readString(Path.of("../README.md")); // the project README, one level above this module
        String section = readme.substring(readme.indexOf("## From Java"), readme.indexOf("\n## ", readme.indexOf("## From Java") + 1));
        List<String> mineLines = Files.readAllLines(Path.of("src/test/java/dev/mm4j/ReadmeJavaTest.java")).stream()
                .map(String::strip).toList();
        Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(section);
        int blocks = 0;
        while (m.find()) {
            blocks++;
            List<String> block = m.group(1).lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("import ")).toList();
            assertTrue(java.util.Collections.indexOfSubList(mineLines, block) >= 0, "README block not in this test:\n" + m.group(1));
        }
        assertEquals(3, blocks);
    }
}
