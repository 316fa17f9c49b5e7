package dev.mm4j.train;

import ai.djl.ndarray.NDManager;
import dev.mm4j.train.TrainingLoopTest.Rows;
import dev.mm4j.train.dist.ProcessGroup;
import dev.mm4j.train.dist.Rendezvous;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * One rank of {@link DataParallelTrainingTest}'s loop runs, in its own JVM:
 * {@code DataParallelLoopRank port rank world totalSteps outDir resume stepMillis timeoutSeconds}. The tiny net of
 * {@link TrainingLoopTest} on the shared {@link TrainingLoop}, sharded by rank, checkpoints every 2 steps (rank 0
 * writes them); rank 0 waits stepMillis after each step (its listener) so that a test can kill a rank mid-run.
 * Prints {@code loss=} per step, {@code weights=} at the end (exact float text).
 */
public final class DataParallelLoopRank {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        int rank = Integer.parseInt(args[1]);
        int world = Integer.parseInt(args[2]);
        long total = Long.parseLong(args[3]);
        Path out = Path.of(args[4]);
        boolean resume = Boolean.parseBoolean(args[5]);
        long stepMillis = Long.parseLong(args[6]);
        Duration timeout = Duration.ofSeconds(Long.parseLong(args[7]));
        FinetuneSettings s = TrainingLoopTest.settings();
        s.checkpointEvery = 2;
        try (NDManager m = NDManager.newBaseManager();
                ProcessGroup pg = ProcessGroup.open(Rendezvous.local(port, rank, world, timeout));
                TrainingLoopTest.Run run = TrainingLoopTest.Run.open(m, s, total, new CheckpointStore(out, 3), resume)) {
            TrainingLoop<Rows> loop = run.loop().dataParallel(rank, world, new DataParallelSync(pg, 64));
            loop.listeners(List.of(new TrainingListener() {
                @Override
                public void onStep(Step st) {
                    try {
                        Thread.sleep(stepMillis);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }));
            TrainingLoop.Outcome o;
            try {
                o = loop.run();
            } catch (IllegalStateException e) {
                System.out.println("error=" + e.getMessage().replace('\n', ' '));
                System.out.flush();
                System.exit(3);
                return;
            }
            o.losses().forEach(l -> System.out.println("loss=" + l));
            StringBuilder w = new StringBuilder();
            for (Map.Entry<String, dev.mm4j.nn.Parameter> e : run.model().namedParameters().entrySet()) {
                for (float v : e.getValue().array().toFloatArray()) {
                    w.append(v).append(',');
                }
            }
            System.out.println("weights=" + w);
        }
        System.out.println("done");
    }
}
