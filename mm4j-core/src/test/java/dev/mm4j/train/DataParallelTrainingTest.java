package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import dev.mm4j.nn.Precision;
import dev.mm4j.train.TrainingLoopTest.Rows;
import dev.mm4j.train.dist.ProcessGroupTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The equivalence target: 2 ranks (two JVMs on 127.0.0.1) with per-rank batch b give the same losses, gradient
 * norms and, after 5 steps, the same weights (within 1e-6 relative) as 1 process with gradient accumulation 2 and
 * batch b over the same global batches; fp32 and bf16, with the updates during the backward pass (no clipping) and
 * with clipping on the global norm.
 */
class DataParallelTrainingTest {
    @TempDir Path tmp;

    @ParameterizedTest
    @CsvSource({"FP32, 0", "FP32, 1.0", "BF16, 0", "BF16, 0.05"})
    void twoRanksEqualOneProcessWithAccumulationTwo(Precision precision, double clip) throws Exception {
        int steps = 5;
        int world = 2;
        String port = String.valueOf(ProcessGroupTest.freePort());
        List<ProcessGroupTest.Rank> ranks = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            ranks.add(new ProcessGroupTest.Rank(DataParallelRank.class.getName(), port, String.valueOf(r),
                    String.valueOf(world), String.valueOf(steps), precision.name(), String.valueOf(clip)));
        }
        for (ProcessGroupTest.Rank r : ranks) {
            assertEquals(0, r.await(180), r::output);
        }
        List<Rows> all = DataParallelRank.batches(steps * world);
        List<String> ref;
        try (NDManager m = NDManager.newBaseManager()) {
            ref = DataParallelRank.train(m, steps, precision, clip, 1,
                    k -> all.subList(k * world, k * world + world), GradientSync.NONE);
        }
        List<List<String>> got = new ArrayList<>();
        for (ProcessGroupTest.Rank r : ranks) {
            got.add(r.lines.stream().filter(l -> l.startsWith("loss=") || l.startsWith("norm=")
                    || l.startsWith("weights=")).toList());
        }
        assertEquals(got.get(0).get(got.get(0).size() - 1), got.get(1).get(got.get(1).size() - 1),
                "both ranks end with the same weights");
        String where = precision + ", clip " + clip;
        for (int i = 0; i < ref.size(); i++) {
            String line = ref.get(i);
            String key = line.substring(0, line.indexOf('='));
            double[] want = values(line);
            if (key.equals("loss")) {
                // the reference's loss is the mean over its micro-batches; each rank reports its own
                double mean = (values(got.get(0).get(i))[0] + values(got.get(1).get(i))[0]) / world;
                assertEquals(want[0], mean, 1e-6 * Math.abs(want[0]), where + ", step " + i / 2 + " loss");
                continue;
            }
            for (List<String> rankLines : got) {
                double[] have = values(rankLines.get(i));
                assertEquals(want.length, have.length, where + " " + key);
                double maxRel = 0;
                for (int j = 0; j < want.length; j++) {
                    maxRel = Math.max(maxRel, Math.abs(have[j] - want[j]) / Math.max(Math.abs(want[j]), 1e-3));
                }
                assertTrue(maxRel <= 1e-6, where + ", " + key + " (line " + i + "): max relative difference " + maxRel);
            }
        }
    }

    /**
     * The loop, data-parallel: rank 0 alone writes checkpoints; one rank killed with SIGKILL mid-run makes the other
     * fail within the timeout (printed); the rerun resumes every rank from rank 0's last checkpoint and ends with the
     * weights and losses of an uninterrupted run, bit for bit.
     */
    @Test
    void aKilledRankStopsTheRunAndTheRerunEndsBitIdenticalToAnUninterruptedOne() throws Exception {
        String total = "30";
        int timeout = 20;
        List<String> whole = loopRun(tmp.resolve("whole"), total, false, "0", timeout);
        assertEquals(31, whole.size(), "30 losses and the weights: " + whole);
        assertTrue(Files.isDirectory(tmp.resolve("whole/checkpoints/step-00000030")));

        Path out = tmp.resolve("killed");
        String port = String.valueOf(ProcessGroupTest.freePort());
        ProcessGroupTest.Rank r0 = rank(port, 0, total, out, false, "150", timeout);
        ProcessGroupTest.Rank r1 = rank(port, 1, total, out, false, "150", timeout);
        CheckpointStore store = new CheckpointStore(out, 3);
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (store.latest() == null || CheckpointStore.state(store.latest()).step < 8) {
            assertTrue(System.nanoTime() < deadline, "no checkpoint at step 8: " + r0.output());
            assertTrue(r0.process.isAlive(), r0::output);
            Thread.sleep(50);
        }
        long t0 = System.nanoTime();
        r1.process.destroyForcibly(); // SIGKILL
        assertEquals(3, r0.await(timeout + 30), r0::output);
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(seconds < timeout + 10, "rank 0 stopped " + seconds + " s after the kill");
        assertTrue(r0.value("error").contains("within " + timeout + ".0 s"), r0.value("error"));
        long resumedAt = CheckpointStore.state(store.latest()).step;
        assertTrue(resumedAt >= 8 && resumedAt < 30, "killed mid-run, at step " + resumedAt);
        r1.await(30);

        List<String> rest = loopRun(out, total, true, "0", timeout);
        assertEquals(whole.get(whole.size() - 1), rest.get(rest.size() - 1), "the same weights, bit for bit");
        assertEquals(whole.subList((int) resumedAt, 30), rest.subList(0, rest.size() - 1),
                "the resumed steps' losses are the uninterrupted run's");
    }

    private static ProcessGroupTest.Rank rank(String port, int r, String total, Path out, boolean resume,
            String stepMillis, int timeout) throws Exception {
        return new ProcessGroupTest.Rank(DataParallelLoopRank.class.getName(), port, String.valueOf(r), "2", total,
                out.toString(), String.valueOf(resume), stepMillis, String.valueOf(timeout));
    }

    /** Runs 2 ranks to the end; rank 0's losses and final weights (after checking rank 1 has the same). */
    private static List<String> loopRun(Path out, String total, boolean resume, String stepMillis, int timeout)
            throws Exception {
        String port = String.valueOf(ProcessGroupTest.freePort());
        ProcessGroupTest.Rank r0 = rank(port, 0, total, out, resume, stepMillis, timeout);
        ProcessGroupTest.Rank r1 = rank(port, 1, total, out, resume, stepMillis, timeout);
        assertEquals(0, r0.await(180), r0::output);
        assertEquals(0, r1.await(180), r1::output);
        List<String> a = r0.lines.stream().filter(l -> l.startsWith("loss=") || l.startsWith("weights=")).toList();
        List<String> b = r1.lines.stream().filter(l -> l.startsWith("loss=") || l.startsWith("weights=")).toList();
        assertEquals(a, b, "every rank has the same losses and weights");
        return a;
    }

    private static double[] values(String line) {
        String[] parts = line.substring(line.indexOf('=') + 1).split(",");
        double[] out = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            out[i] = Double.parseDouble(parts[i]);
        }
        return out;
    }
}
