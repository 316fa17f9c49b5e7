package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.data.SyntheticPretraining;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.train.dist.ProcessGroupTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Data-parallel pretraining: 2 ranks (two JVMs on 127.0.0.1) with batch 4 each, run for 2 steps and resumed to 4,
 * give the losses and the weights (within 1e-6 relative) of 1 process with gradient accumulation 2 and batch 4 over the
 * same global batches (the same source per step on every rank, each rank its half), rank 0 alone writing OUT.
 */
class DataParallelPretrainingTest {
    @TempDir Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"fp32", "bf16"})
    void twoRanksResumedEqualOneProcessWithAccumulationTwo(String precision) throws Exception {
        Path synth = tmp.resolve("synth");
        SyntheticPretraining.generate(new SyntheticTextVqa.Options(synth, 24, 4, 2, 5, 96, 64, 1));

        Path one = tmp.resolve("one");
        Pretrainer.Result ref = PretrainingRank.builder(synth, one, precision, 4, false).set("grad_accum", 2).build().run();
        assertEquals(4, ref.losses().size(), ref.status() + " " + ref.losses());

        Path two = tmp.resolve("two");
        List<String> first = ranks(synth, two, precision, 2, false);
        assertEquals(2, CheckpointStore.state(new CheckpointStore(two, 3).latest()).step);
        deleteTree(two.resolve("model")); // the 2-step run's export: continue the run to 4 steps
        List<String> rest = ranks(synth, two, precision, 4, true);
        List<String> losses = new ArrayList<>(first);
        losses.addAll(rest);
        assertEquals(4, losses.size(), losses.toString());
        for (int i = 0; i < 4; i++) {
            double want = ref.losses().get(i);
            double have = Double.parseDouble(losses.get(i));
            assertEquals(want, have, 1e-6 * Math.abs(want), precision + ": step " + i + " loss");
        }
        // rank 0 alone wrote OUT: one metrics line per step
        long lines = Files.readAllLines(two.resolve("metrics.jsonl")).stream().filter(l -> l.contains("\"loss\"")).count();
        assertEquals(4, lines, "metrics.jsonl");
        ModelWeights.assertClose(two.resolve("model"), one.resolve("model"), 1e-6, 50, precision);
    }

    /** Runs 2 ranks to {@code steps}; returns rank 0's losses after checking rank 1 reported the same. */
    private static List<String> ranks(Path synth, Path out, String precision, long steps, boolean resume)
            throws Exception {
        String port = String.valueOf(ProcessGroupTest.freePort());
        List<ProcessGroupTest.Rank> ranks = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
            ranks.add(new ProcessGroupTest.Rank(PretrainingRank.class.getName(), port, String.valueOf(r), "2",
                    synth.toString(), out.toString(), precision, String.valueOf(steps), String.valueOf(resume)));
        }
        for (ProcessGroupTest.Rank r : ranks) {
            assertEquals(0, r.await(180), r::output);
            assertEquals("COMPLETED", r.value("status"), r::output);
        }
        List<List<String>> losses = new ArrayList<>();
        for (ProcessGroupTest.Rank r : ranks) {
            losses.add(r.lines.stream().filter(l -> l.startsWith("loss=")).map(l -> l.substring(5)).toList());
        }
        assertEquals(losses.get(0), losses.get(1), "every rank reports the mean loss over the ranks");
        return losses.get(0);
    }

    private static void deleteTree(Path dir) throws Exception {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
