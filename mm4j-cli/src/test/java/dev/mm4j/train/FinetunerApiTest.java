package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.data.TextVqaDatasets;
import dev.mm4j.data.VqaDataset;
import dev.mm4j.data.VqaManifestReaderTest;
import dev.mm4j.data.VqaSample;
import dev.mm4j.report.MetricsLog;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The training API: the builder's settings, caller listeners, cancel from another thread and resume, the result. */
class FinetunerApiTest {
    @TempDir
    static Path tmp;
    static Path data;

    @BeforeAll
    static void generate() throws Exception {
        data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 48, 12, 4, 3, 64, 48, 1));
    }

    /** A tiny FLAVA from scratch on the generated data, shuffled, with classifier dropout (seeded per step). */
    static Finetuner.Builder tiny(Path out) {
        return Finetuner.builder()
                .data(data)
                .noCheckpoint()
                .model(tinyModel())
                .set("max_length", 32)
                .set("shuffle", true)
                .threads(1)
                .outputDir(out);
    }

    static java.util.Map<String, Object> tinyModel() {
        java.util.Map<String, Object> model = new java.util.LinkedHashMap<>(FinetunerTest.TINY);
        model.put("classifier_dropout", 0.3);
        return model;
    }

    /** Records every event, in order. */
    static final class Recorder implements TrainingListener {
        final List<Object> events = new ArrayList<>();

        @Override
        public void onStep(Step s) {
            events.add(s);
        }

        @Override
        public void onValidation(Validation v) {
            events.add(v);
        }

        @Override
        public void onCheckpoint(Checkpoint c) {
            events.add(c);
        }

        List<Double> losses() {
            return events.stream().filter(e -> e instanceof Step).map(e -> ((Step) e).loss()).toList();
        }
    }

    @Test
    void cancelledFromAnotherThreadStopsAtAStepBoundaryAndResumesBitIdentically() throws Exception {
        Finetuner.Result full = tiny(tmp.resolve("full")).maxSteps(8).noValidation().build().run();
        assertEquals(Finetuner.Status.COMPLETED, full.status());
        assertEquals(8, full.steps());
        assertEquals(8, full.losses().size());

        // the run's listener parks at step 2 until another thread has called cancel(): the run then stops after it
        CountDownLatch atStep2 = new CountDownLatch(1);
        CountDownLatch cancelled = new CountDownLatch(1);
        Recorder events = new Recorder();
        Finetuner first = tiny(tmp.resolve("split")).maxSteps(8).noValidation().listener(events)
                .listener(new TrainingListener() {
                    @Override
                    public void onStep(Step s) throws java.io.IOException {
                        if (s.index() == 2) {
                            atStep2.countDown();
                            try {
                                assertTrue(cancelled.await(60, TimeUnit.SECONDS));
                            } catch (InterruptedException e) {
                                throw new java.io.InterruptedIOException();
                            }
                        }
                    }
                }).build();
        Thread canceller = new Thread(() -> {
            try {
                atStep2.await();
                first.cancel();
                cancelled.countDown();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        canceller.start();
        Finetuner.Result r = first.run();
        canceller.join();
        assertEquals(Finetuner.Status.CANCELLED, r.status());
        assertTrue(r.cancelled());
        assertEquals(3, r.steps(), "steps 0, 1, 2 ran; step 3 was not started");
        assertEquals(full.losses().subList(0, 3), r.losses());
        assertEquals(tmp.resolve("split/checkpoints/step-00000003"), r.lastCheckpoint());
        assertNull(r.modelDir());
        assertFalse(Files.exists(tmp.resolve("split/model")), "a cancelled run exports nothing");
        assertEquals(new TrainingListener.Checkpoint(3, r.lastCheckpoint(), false), events.events.get(events.events.size() - 1),
                "the checkpoint written at cancel is reported");

        Finetuner.Result resumed = tiny(tmp.resolve("split")).maxSteps(8).noValidation().resume(true).build().run();
        assertEquals(Finetuner.Status.COMPLETED, resumed.status());
        assertEquals(8, resumed.steps());
        assertEquals(full.losses().subList(3, 8), resumed.losses(), "steps 3..7 after resume");
        assertArrayEquals(Files.readAllBytes(full.modelDir().resolve("model.safetensors")),
                Files.readAllBytes(resumed.modelDir().resolve("model.safetensors")), "the same weights, bit for bit");
        List<Double> logged = MetricsLog.read(tmp.resolve("split/metrics.jsonl")).stream()
                .filter(e -> e.loss() != null).map(MetricsLog.Entry::loss).toList();
        assertEquals(full.losses(), logged);
    }

    @Test
    void aRunCancelledBeforeItStartsLeavesAStepZeroCheckpoint() throws Exception {
        Finetuner f = tiny(tmp.resolve("early")).maxSteps(4).noValidation().build();
        f.cancel();
        Finetuner.Result r = f.run();
        assertEquals(Finetuner.Status.CANCELLED, r.status());
        assertEquals(0, r.steps());
        assertEquals(List.of(), r.losses());
        assertEquals(tmp.resolve("early/checkpoints/step-00000000"), r.lastCheckpoint());
        Finetuner.Result resumed = tiny(tmp.resolve("early")).maxSteps(4).noValidation().resume(true).build().run();
        assertEquals(4, resumed.losses().size());
    }

    @Test
    void listenersSeeStepsValidationsAndCheckpointsInOrder() throws Exception {
        Recorder rec = new Recorder();
        Finetuner.Result r = tiny(tmp.resolve("events")).maxSteps(4).batchSize(4).set("eval_every", 2)
                .set("checkpoint_every", 2).listener(rec).build().run();
        List<String> kinds = rec.events.stream().map(e -> e instanceof TrainingListener.Step s ? "step" + s.index()
                : e instanceof TrainingListener.Validation v ? "val" + v.stepsDone()
                : ((TrainingListener.Checkpoint) e).best() ? "best" + ((TrainingListener.Checkpoint) e).stepsDone()
                : "ckpt" + ((TrainingListener.Checkpoint) e).stepsDone()).toList();
        // validation after step 2 (a first best), checkpoint 2; then 4 steps done: checkpoint 4, final validation
        List<String> expected = new ArrayList<>(List.of("step0", "step1", "val2", "best2", "ckpt2", "step2", "step3", "ckpt4", "val4"));
        if (kinds.size() == expected.size() + 1) {
            expected.add("best4"); // the final validation improved on step 2's
        }
        assertEquals(expected, kinds);
        TrainingListener.Validation last = (TrainingListener.Validation) rec.events.stream()
                .filter(e -> e instanceof TrainingListener.Validation).reduce((a, b) -> b).orElseThrow();
        assertEquals(r.valAccuracy(), last.accuracy());
        assertEquals(12, last.result().count());
        assertEquals(r.losses(), rec.losses());
        TrainingListener.Step s0 = (TrainingListener.Step) rec.events.get(0);
        assertEquals(4, s0.total());
        assertEquals(4, s0.samples());
        assertEquals(tmp.resolve("events/checkpoints/best"), ((TrainingListener.Checkpoint) rec.events.get(3)).folder());
        assertTrue(Files.isRegularFile(tmp.resolve("events/checkpoints/step-00000004/model.safetensors")));
        assertEquals(tmp.resolve("events/model"), r.modelDir());
        assertEquals(tmp.resolve("events/checkpoints/step-00000004"), r.lastCheckpoint());
    }

    @Test
    void settingsComeFromPresetThenFileThenSettersInOrder() throws Exception {
        Path yaml = tmp.resolve("run.yaml");
        Files.writeString(yaml, "batch_size: 5\nlr: 0.5\n");
        FinetuneSettings s = Finetuner.builder().preset(Preset.TORCHMULTIMODAL).settingsFile(yaml).learningRate(0.25)
                .checkpointFromHub("facebook/flava-full").set("warmup_steps", 7).build().settings();
        assertEquals(5, s.batchSize);
        assertEquals(0.25, s.lr);
        assertEquals(7, s.warmupSteps);
        assertEquals("hf:facebook/flava-full", s.checkpoint);
        assertEquals(List.of(0.9, 0.98), s.betas, "the rest is the preset's");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Finetuner.builder().set("bach_size", 8).build());
        assertEquals("Finetuner.Builder: unknown key 'bach_size' (the keys are those of OUT/settings.yaml)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Finetuner.builder().set("batch_size", "eight").build());
        assertEquals("Finetuner.Builder: key 'batch_size': 'eight' is not an integer", e.getMessage());
    }

    /** A split of the generated data as a caller's in-memory store: images as bytes, no file paths. */
    static List<VqaSample> inMemory(String split) throws Exception {
        List<VqaSample> out = new ArrayList<>();
        try (VqaDataset ds = TextVqaDatasets.open(data, split)) {
            for (VqaSample s : ds) {
                out.add(VqaSample.of(s.questionId(), s.question(), s.answers(),
                        new VqaSample.BytesImage(s.image().readBytes(), s.imageId() + ".jpg")));
            }
        }
        return out;
    }

    @Test
    void aManifestAndACallersDatasetTrainLikeTheTextVqaFilesWithABuiltVocabulary() throws Exception {
        Path manifests = VqaManifestReaderTest.writeManifests(data, tmp.resolve("manifests"));
        Finetuner.Result fromManifest = tiny(tmp.resolve("m")).data(manifests).buildVocabulary(2).maxSteps(3).batchSize(4)
                .build().run();
        List<VqaSample> train = inMemory("train");
        List<VqaSample> val = inMemory("val");
        try (VqaDataset trainDs = VqaDataset.of("train store", train::stream);
                VqaDataset valDs = VqaDataset.of("val store", val::stream)) {
            Finetuner.Result mine = Finetuner.builder().trainingData(trainDs).validationData(valDs).noCheckpoint()
                    .model(tinyModel()).set("max_length", 32).set("shuffle", true).threads(1)
                    .buildVocabulary(2).maxSteps(3).batchSize(4).outputDir(tmp.resolve("c")).build().run();
            assertEquals(Finetuner.Status.COMPLETED, mine.status());
            assertEquals(fromManifest.losses(), mine.losses(), "the same samples in the same order: the same run");
            assertEquals(fromManifest.valAccuracy(), mine.valAccuracy());
            assertNotNull(mine.valAccuracy());
            assertEquals(12, mine.byType().overall().questions());
            trainDs.iterator().close(); // the run did not close the caller's datasets
        }
        String built = AnswerVocab.build(train, 2, "train").toText();
        assertTrue(built.startsWith("<unk>\n"), built);
        assertEquals(built, Files.readString(tmp.resolve("m/answers.txt")));
        assertEquals(built, Files.readString(tmp.resolve("c/answers.txt")));
        assertEquals(built, Files.readString(tmp.resolve("c/model/answers.txt")), "the model's classes are the built vocabulary");
        String settings = Files.readString(tmp.resolve("c/settings.yaml"));
        assertTrue(settings.contains("vocab: \"build\"") && settings.contains("vocab_min_count: 2"), settings);
    }

    @Test
    void aManifestWithoutAVocabularyBuildsOneAsVocabBuildWouldAndSaysSo() throws Exception {
        Path manifests = VqaManifestReaderTest.writeManifests(data, tmp.resolve("manifests-novocab"));
        java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
        Finetuner.Result byDefault = tiny(tmp.resolve("d")).data(manifests).maxSteps(2).batchSize(4)
                .log(new java.io.PrintStream(log, true, java.nio.charset.StandardCharsets.UTF_8)).build().run();
        Finetuner.Result asked = tiny(tmp.resolve("e")).data(manifests).buildVocabulary(1).maxSteps(2).batchSize(4)
                .build().run();
        assertEquals(Finetuner.Status.COMPLETED, byDefault.status());
        assertEquals(asked.losses(), byDefault.losses(), "the same vocabulary, the same run");
        assertEquals(AnswerVocab.build(inMemory("train"), 1, "train").toText(), Files.readString(tmp.resolve("d/answers.txt")));
        String printed = log.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(printed.contains("no answer vocabulary given") && printed.contains("Finetuner.Builder.vocabulary(Path)"),
                printed);
    }
}
