package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.util.DirectoryLock;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A child JVM writes checkpoints as fast as it can (as a run does: it holds the run folder's lock, saves step-N,
 * latest and best) and is killed with SIGKILL at seeded random moments. After each kill the store must be
 * consistent ({@code latest} names a complete, restorable checkpoint; every visible checkpoint is complete), and a
 * new run must remove every temp folder the kills left.
 */
class CheckpointKillTest {
    @TempDir Path out;

    private static final int KILLS = Integer.getInteger("mm4j.kills", 3);

    /** The child: {@code java ... CheckpointKillTest$Child OUT}. */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            Path out = Path.of(args[0]);
            CheckpointStore store = new CheckpointStore(out, 2);
            try (DirectoryLock lock = store.lockOutput(); NDManager m = NDManager.newBaseManager()) {
                FlavaForClassification model = FlavaForClassification.create(CheckpointStoreTest.tiny(), m);
                try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                    Path latest = store.latest();
                    long step = latest == null ? 0 : CheckpointStore.restore(latest, model, opt).step;
                    System.out.println("ready at step " + step);
                    System.out.flush();
                    while (true) {
                        TrainState st = new TrainState();
                        st.step = ++step;
                        store.save(model, opt, st);
                        if (step % 2 == 0) store.saveBest(model, opt, st);
                        System.out.println("saved step " + step); // the parent kills only after reading this
                        System.out.flush();
                    }
                }
            }
        }
    }

    private Process start(Path log) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), "-Xmx256m",
                "-Djava.awt.headless=true", "-Dai.djl.offline=true", Child.class.getName(), out.toString());
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        return pb.start();
    }

    /** Waits (however slow the machine) until the child's log holds {@code count} lines starting with {@code prefix}. */
    private static void await(Process p, Path log, String prefix, int count) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
        while (System.nanoTime() < deadline) {
            if (Files.exists(log) && Files.readString(log).lines().filter(l -> l.startsWith(prefix)).count() >= count) return;
            if (!p.isAlive()) fail("the child died: " + Files.readString(log));
            Thread.sleep(10);
        }
        fail("the child did not log " + count + " x '" + prefix + "' in 240 s: " + Files.readString(log));
    }

    /** Hidden leftovers in the checkpoint folder (temp folders, folders moved aside, temp files). */
    private List<String> leftovers(CheckpointStore store) throws IOException {
        List<String> l = new ArrayList<>();
        if (!Files.isDirectory(store.dir())) return l;
        try (Stream<Path> s = Files.list(store.dir())) {
            s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).forEach(l::add);
        }
        try (Stream<Path> s = Files.list(out)) {
            s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".tmp")).forEach(l::add);
        }
        return l;
    }

    /** Every visible checkpoint is complete, and latest names one that restores into a model. */
    private long assertConsistent(CheckpointStore store, NDManager m) throws Exception {
        List<Path> visible = new ArrayList<>();
        try (Stream<Path> s = Files.list(store.dir())) {
            s.filter(p -> Files.isDirectory(p) && !p.getFileName().toString().startsWith(".")).forEach(visible::add);
        }
        for (Path c : visible) {
            for (String f : List.of("model.safetensors", "optimizer.safetensors")) {
                try (StateDict sd = SafeTensors.read(c.resolve(f))) {
                    assertTrue(sd.size() > 0, c + "/" + f);
                }
            }
            TrainState.fromJson(Files.readString(c.resolve("state.json")));
        }
        Path latest = store.latest();
        assertNotNull(latest, "latest names a checkpoint");
        FlavaForClassification model = FlavaForClassification.create(CheckpointStoreTest.tiny(), m);
        try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
            return CheckpointStore.restore(latest, model, opt).step;
        }
    }

    @Test
    @Timeout(900)
    void killedWritersLeaveAConsistentStoreAndTheNextRunCleansUp() throws Exception {
        CheckpointStore store = new CheckpointStore(out, 2);
        Random rnd = new Random(11);
        int killsWithLeftovers = 0;
        long lastStep = 0;
        try (NDManager m = NDManager.newBaseManager()) {
            for (int k = 0; k < KILLS; k++) {
                Path log = out.resolve("child" + k + ".log.txt");
                Process p = start(log);
                try {
                    await(p, log, "ready at step", 1);
                    assertTrue(Files.readString(log).contains("ready at step " + lastStep), "resumed where the last one was killed");
                    if (k == 0) {
                        // a second run on the same folder gets a clear error, and never touches the live temp folders
                        Thread.sleep(100);
                        IOException e = assertThrows(IOException.class, store::lockOutput);
                        assertTrue(e.getMessage().contains(out + " is in use by a fine-tuning run in another process (pid "
                                + p.pid()), e.getMessage());
                    }
                    // the kill comes at a seeded moment after a seeded number of completed checkpoints (at least
                    // one, so there is always one to check): within the save after them, or between saves
                    await(p, log, "saved step", 1 + rnd.nextInt(3));
                    Thread.sleep(rnd.nextInt(300));
                } finally {
                    p.destroyForcibly(); // SIGKILL
                    p.waitFor(30, TimeUnit.SECONDS);
                }
                if (!leftovers(store).isEmpty()) killsWithLeftovers++;
                lastStep = assertConsistent(store, m);
            }
            System.out.printf("kill test: %d SIGKILLs while writing checkpoints, %d left temp folders/files behind, "
                    + "store consistent after each; last step %d%n", KILLS, killsWithLeftovers, lastStep);
            try (DirectoryLock lock = store.lockOutput()) {
                assertEquals(List.of(), leftovers(store), "a new run removes what the killed ones left");
            }
            assertEquals(lastStep, assertConsistent(store, m));
        }
    }
}
