package dev.mm4j.search;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.Embedder;
import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.CaptionPairs;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.train.CheckpointStore;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.TrainingListener;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code task: retrieval}: contrastive training on synth captions, the retrieval bundle and held-out recall. */
class RetrievalFinetunerTest {
    @TempDir Path tmp;

    static Map<String, Object> tinyModel() {
        return Map.ofEntries(Map.entry("image_size", 32), Map.entry("patch_size", 8), Map.entry("image_hidden_size", 32),
                Map.entry("image_num_attention_heads", 4), Map.entry("image_num_hidden_layers", 1),
                Map.entry("image_intermediate_size", 64), Map.entry("text_hidden_size", 32),
                Map.entry("text_num_attention_heads", 4), Map.entry("text_num_hidden_layers", 1),
                Map.entry("text_intermediate_size", 64), Map.entry("max_position_embeddings", 24),
                Map.entry("multimodal_hidden_size", 32), Map.entry("multimodal_num_attention_heads", 4),
                Map.entry("multimodal_num_hidden_layers", 1), Map.entry("multimodal_intermediate_size", 64),
                Map.entry("text_and_image_proj_size", 16));
    }

    @Test
    void trainsOnSynthCaptionsAndReportsTheRecallOfItsExportedModel() throws Exception {
        Path data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 24, 12, 0, 3, 64, 48, 1, SyntheticTextVqa.Look.DEMO));
        FinetuneSettings s = FinetuneSettings.preset("default");
        s.task = "retrieval";
        s.data = data.toString();
        s.out = tmp.resolve("run").toString();
        s.model = tinyModel();
        s.maxLength = 24;
        s.batchSize = 4;
        s.maxSteps = 6;
        s.shuffle = true;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        RetrievalFinetuner.Result r = new RetrievalFinetuner(s, new PrintStream(buf, true)).run();
        String log = buf.toString();
        assertEquals(6, r.steps(), log);
        assertTrue(r.losses().stream().allMatch(l -> Double.isFinite(l) && l > 0), r.losses().toString());
        // the first loss of a random model is about ln(batch) for each direction
        assertEquals(Math.log(4), r.losses().get(0), 0.5, log);
        assertTrue(log.contains("held-out text -> image retrieval: R@1"), log);

        JsonNode bundle = new ObjectMapper().readTree(r.modelDir().resolve(ModelBundle.INFO).toFile());
        assertEquals(ModelBundle.RETRIEVAL_FORMAT, bundle.get("format").asText());
        JsonNode recall = new ObjectMapper().readTree(tmp.resolve("run/recall.json").toFile());

        // the exported model gives the same recall through the search package's Embedder
        List<CaptionPairs.Pair> val = CaptionPairs.read(data, "val");
        try (Embedder e = Embedder.open(r.modelDir(), null, Device.cpu())) {
            List<byte[]> images = new ArrayList<>();
            List<String> names = new ArrayList<>();
            List<String> texts = new ArrayList<>();
            for (CaptionPairs.Pair p : val) {
                images.add(p.image().readBytes());
                names.add(p.origin());
                texts.add(p.text());
            }
            List<Set<Integer>> relevant = new ArrayList<>();
            for (String t : texts) {
                Set<Integer> rel = new HashSet<>();
                for (int i = 0; i < texts.size(); i++) {
                    if (texts.get(i).equals(t)) {
                        rel.add(i);
                    }
                }
                relevant.add(rel);
            }
            RetrievalRecall.Result again = RetrievalRecall.exact(e.texts(texts), e.images(images, names), relevant);
            assertEquals(val.size(), recall.get("queries").asInt());
            assertEquals(recall.get("recall_at_1").asDouble(), again.at1(), 1e-4);
            assertEquals(recall.get("recall_at_5").asDouble(), again.at5(), 1e-4);
        }
        // a second run into the same folder is refused, and the model is kept
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> {
            s.task = "ranking";
            s.isRetrieval();
        });
        assertTrue(bad.getMessage().contains("task 'ranking'"), bad.getMessage());
        s.task = "retrieval";
        Exception again = assertThrows(Exception.class, () -> new RetrievalFinetuner(s, new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(again.getMessage().contains("already holds a model"), again.getMessage());
        assertTrue(Files.exists(r.modelDir().resolve(ModelBundle.WEIGHTS)));
    }

    static FinetuneSettings settings(Path data, Path out, long steps) {
        FinetuneSettings s = FinetuneSettings.preset("default");
        s.task = "retrieval";
        s.data = data.toString();
        s.out = out.toString();
        s.model = tinyModel();
        s.maxLength = 24;
        s.batchSize = 4;
        s.maxSteps = steps;
        s.shuffle = true;
        return s;
    }

    @Test
    void aCancelledRunResumedFromItsCheckpointRepeatsTheUninterruptedLosses() throws Exception {
        Path data = tmp.resolve("data");
        SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, 24, 12, 0, 3, 64, 48, 1, SyntheticTextVqa.Look.DEMO));
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true);
        RetrievalFinetuner.Result whole = new RetrievalFinetuner(settings(data, tmp.resolve("whole"), 9), quiet).run();
        assertEquals(Finetuner.Status.COMPLETED, whole.status());
        assertEquals(9, whole.losses().size());

        // the same run, cancelled after 7 steps (in its second epoch: the resumed run draws epoch 0's batches again)
        FinetuneSettings s = settings(data, tmp.resolve("parts"), 9);
        RetrievalFinetuner first = new RetrievalFinetuner(s, quiet);
        first.listener(new TrainingListener() {
            @Override
            public void onStep(Step st) {
                if (st.index() == 6) {
                    first.cancel();
                }
            }
        });
        RetrievalFinetuner.Result a = first.run();
        assertEquals(Finetuner.Status.CANCELLED, a.status());
        assertEquals(7, a.steps());
        assertNull(a.modelDir());
        assertTrue(CheckpointStore.state(a.lastCheckpoint()).epoch >= 1, "the checkpoint is past the first epoch");
        // the folder holds a run: a new one is refused, pointing at --resume
        Exception refused = assertThrows(java.io.IOException.class, () -> new RetrievalFinetuner(s, quiet).run());
        assertTrue(refused.getMessage().contains("--resume"), refused.getMessage());

        List<String> events = new ArrayList<>();
        RetrievalFinetuner.Result b = new RetrievalFinetuner(s, quiet).resume(true).listener(new TrainingListener() {
            @Override
            public void onStep(Step st) {
                events.add("step " + st.index());
            }

            @Override
            public void onCheckpoint(Checkpoint c) {
                events.add("checkpoint " + c.stepsDone());
            }
        }).run();
        assertEquals(Finetuner.Status.COMPLETED, b.status());
        assertEquals(9, b.steps());
        assertEquals(List.of("step 7", "step 8", "checkpoint 9"), events);
        List<Double> resumed = new ArrayList<>(a.losses());
        resumed.addAll(b.losses());
        assertEquals(whole.losses(), resumed, "the resumed run repeats the uninterrupted losses exactly");
        assertEquals(whole.recall(), b.recall());
        // metrics.jsonl: one line per step, the first part's kept, the resumed part's appended
        List<MetricsLog.Entry> metrics = MetricsLog.read(tmp.resolve("parts").resolve("metrics.jsonl"));
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L), metrics.stream().map(MetricsLog.Entry::step).toList());
        assertEquals(whole.losses(), metrics.stream().map(MetricsLog.Entry::loss).toList());
    }

    @Test
    void recallCountsAQueryAsAHitWhenARelevantImageRanksFirst() {
        float[][] images = {{1, 0}, {0, 1}, {0.6f, 0.8f}};
        float[][] queries = {{1, 0}, {0, 1}, {0.99f, 0.14f}};
        // query 2's relevant image (2) is second for it, behind image 0
        RetrievalRecall.Result r = RetrievalRecall.exact(queries, images, List.of(Set.of(0), Set.of(1), Set.of(2)));
        assertEquals(2.0 / 3, r.at1(), 1e-9);
        assertEquals(1.0, r.at5(), 1e-9);
    }

    @Test
    void anEpochsBatchesHoldDistinctCaptionsSoThatNoImageIsItsTwinsNegative() {
        List<RetrievalFinetuner.Image> images = new ArrayList<>();
        String[] captions = {"a", "a", "a", "b", "b", "c", "d", "e"};
        for (int i = 0; i < captions.length; i++) {
            images.add(new RetrievalFinetuner.Image(null, List.of(captions[i])));
        }
        // file order: the second and third "a" wait for later batches instead of sitting next to the first
        List<List<RetrievalFinetuner.TrainPair>> batches = RetrievalFinetuner.epochBatches(images, 3, false, new java.util.Random(1));
        assertEquals(List.of(List.of(0, 3, 5), List.of(1, 4, 6)),
                batches.stream().map(b -> b.stream().map(RetrievalFinetuner.TrainPair::image).toList()).toList());
        // shuffled, many epochs: full batches, distinct captions, no image twice in an epoch
        java.util.Random random = new java.util.Random(2);
        for (int epoch = 0; epoch < 50; epoch++) {
            Set<Integer> seen = new HashSet<>();
            List<List<RetrievalFinetuner.TrainPair>> shuffled = RetrievalFinetuner.epochBatches(images, 4, true, random);
            assertFalse(shuffled.isEmpty());
            for (List<RetrievalFinetuner.TrainPair> b : shuffled) {
                assertEquals(4, b.size());
                assertEquals(4, b.stream().map(RetrievalFinetuner.TrainPair::caption).distinct().count(), b.toString());
                for (RetrievalFinetuner.TrainPair p : b) {
                    assertTrue(seen.add(p.image()), "image " + p.image() + " twice in an epoch");
                    assertEquals(captions[p.image()], p.caption());
                }
            }
        }
    }

    @Test
    void recallOfASearchsRankingsCountsTheFirstRelevantHit() {
        List<Set<Integer>> relevant = RetrievalRecall.relevant(List.of("x", "y", "z"),
                List.of(List.of("x"), List.of("y"), List.of("x", "z"), List.of("w")));
        assertEquals(List.of(Set.of(0, 2), Set.of(1), Set.of(2)), relevant);
        // query 0 finds a relevant image first; query 1 at rank 3; query 2 beyond 5
        RetrievalRecall.Result r = RetrievalRecall.ranked(List.of(new int[] {2, 1, 3}, new int[] {0, 2, 3, 1, 4},
                new int[] {0, 1, 3, 4, 5, 2}), relevant, 7);
        assertEquals(1.0 / 3, r.at1(), 1e-9);
        assertEquals(2.0 / 3, r.at5(), 1e-9);
        assertEquals(3, r.queries());
        assertEquals(7, r.images());
    }
}
