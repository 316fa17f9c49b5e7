package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import dev.mm4j.nn.Precision;
import dev.mm4j.train.TrainingLoopTest.Rows;
import dev.mm4j.train.dist.ProcessGroupTest;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The equivalence target: 2 ranks (two JVMs on 127.0.0.1) with per-rank batch b give the same losses, gradient
 * norms and, after 5 steps, the same weights (within 1e-6 relative) as 1 process with gradient accumulation 2 and
 * batch b over the same global batches; fp32 and bf16, with the updates during the backward pass (no clipping) and
 * with clipping on the global norm.
 */
class DataParallelTrainingTest {

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

    private static double[] values(String line) {
        String[] parts = line.substring(line.indexOf('=') + 1).split(",");
        double[] out = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            out[i] = Double.parseDouble(parts[i]);
        }
        return out;
    }
}
