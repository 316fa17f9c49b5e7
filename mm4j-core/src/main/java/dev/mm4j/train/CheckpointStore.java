package dev.mm4j.train;

import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.StateDictLoader;
import ai.djl.ndarray.NDArray;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Module;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.DirectoryLock;
import dev.mm4j.util.FileTrees;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Training checkpoints under {@code <out>/checkpoints/}: each {@code step-NNNNNNNN/} holds the model
 * ({@code model.safetensors}), the optimizer's moments ({@code optimizer.safetensors}) and the
 * {@link TrainState} ({@code state.json}). A checkpoint is written into a temp folder and renamed into
 * place only when complete; {@code latest} then names it. The last {@code keep} are kept, plus
 * {@code best/} (highest validation accuracy).
 */
public final class CheckpointStore {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointStore.class);
    private static final String PREFIX = "step-";
    private static final String MODEL = "model.safetensors";
    private static final String OPTIMIZER = "optimizer.safetensors";
    private static final String STATE = "state.json";
    private static final String TMP = ".tmp-";
    private static final String OLD = ".old-";
    private static final String PRUNED = ".pruned-";
    private final Path dir;
    private final int keep;

    public CheckpointStore(Path outDir, int keep) {
        this.dir = outDir.resolve("checkpoints");
        this.keep = Math.max(1, keep);
    }

    public Path dir() {
        return dir;
    }

    /**
     * Takes the run folder for this process ({@link DirectoryLock} on {@code <out>/.lock}: a second run on the same
     * folder fails with a clear message) and then removes what killed runs left there: unfinished checkpoint
     * folders ({@link #removeStaleTemporaries}) and temp files of {@code <out>} and {@code <out>/model}.
     */
    public DirectoryLock lockOutput() throws IOException {
        Path out = dir.getParent();
        DirectoryLock lock = DirectoryLock.acquire(out, "a fine-tuning run");
        try {
            int n = removeStaleTemporaries() + AtomicFiles.removeStaleTemps(out) + AtomicFiles.removeStaleTemps(out.resolve("model"));
            if (n > 0) {
                LOG.info("{}: removed {} leftovers of an interrupted run (temp files and unfinished checkpoints)", out, n);
            }
            return lock;
        } catch (IOException | RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    /** Writes a complete checkpoint and makes it the latest; returns its folder. */
    public Path save(FlavaForClassification model, AdamW optimizer, TrainState state) throws IOException {
        return save(model, model.config(), optimizer, state);
    }

    /**
     * Writes a complete checkpoint of any model and makes it the latest; returns its folder.
     *
     * @param config written into the weights' metadata (as a model bundle's), or null for a model without one
     */
    public Path save(Module model, FlavaConfig config, AdamW optimizer, TrainState state) throws IOException {
        Path target = dir.resolve(String.format("%s%08d", PREFIX, state.step));
        Path tmp = writeFolder(model, config, optimizer, state, "." + target.getFileName());
        replaceDir(tmp, target);
        AtomicFiles.writeString(dir.resolve("latest"), target.getFileName() + "\n");
        prune();
        return target;
    }

    /** Writes the current model as {@code best/} (atomically replacing the previous best); returns that folder. */
    public Path saveBest(FlavaForClassification model, AdamW optimizer, TrainState state) throws IOException {
        return saveBest(model, model.config(), optimizer, state);
    }

    /** {@link #saveBest(FlavaForClassification, AdamW, TrainState)} for any model; {@code config} as in {@link #save}. */
    public Path saveBest(Module model, FlavaConfig config, AdamW optimizer, TrainState state) throws IOException {
        Path best = dir.resolve("best");
        replaceDir(writeFolder(model, config, optimizer, state, ".best"), best);
        return best;
    }

    private Path writeFolder(Module model, FlavaConfig config, AdamW optimizer, TrainState state, String tmpPrefix)
            throws IOException {
        Files.createDirectories(dir);
        Path tmp = AtomicFiles.createTempDirectory(dir, tmpPrefix + TMP);
        try {
            if (config != null) {
                ModelBundle.writeWeights(tmp.resolve(MODEL), model, config);
            } else {
                Map<String, NDArray> arrays = new LinkedHashMap<>();
                model.namedParameters().forEach((n, p) -> arrays.put(n, p.array()));
                SafeTensors.writeNDArrays(tmp.resolve(MODEL), arrays, Map.of("format", "pt"));
            }
            SafeTensors.writeNDArrays(tmp.resolve(OPTIMIZER), optimizer.state(),
                    Map.of("step", Long.toString(optimizer.stepCount())));
            AtomicFiles.writeString(tmp.resolve(STATE), state.toJson());
            return tmp;
        } catch (IOException | RuntimeException e) {
            FileTrees.delete(tmp);
            throw e;
        }
    }

    /** The folder named by {@code latest}, or null when there is none. */
    public Path latest() throws IOException {
        Path pointer = dir.resolve("latest");
        if (!Files.exists(pointer)) {
            return null;
        }
        Path p = dir.resolve(Files.readString(pointer).trim());
        if (!Files.isDirectory(p)) {
            throw new IOException(pointer + " names " + p + ", which does not exist");
        }
        return p;
    }

    /** Restores model weights and optimizer moments from a checkpoint folder; returns its state. */
    public static TrainState restore(Path checkpoint, Module model, AdamW optimizer) throws IOException {
        TrainState state = state(checkpoint);
        StateDictLoader.load(model, checkpoint.resolve(MODEL), true);
        try (StateDict sd = SafeTensors.read(checkpoint.resolve(OPTIMIZER))) {
            optimizer.loadState(sd, Long.parseLong(sd.metadata().getOrDefault("step", Long.toString(state.step))));
        }
        return state;
    }

    /** The training state saved in a checkpoint folder. */
    public static TrainState state(Path checkpoint) throws IOException {
        return TrainState.fromJson(Files.readString(checkpoint.resolve(STATE)));
    }

    private void prune() throws IOException {
        List<Path> steps = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(p -> p.getFileName().toString().startsWith(PREFIX) && Files.isDirectory(p)).forEach(steps::add);
        }
        steps.sort(Comparator.comparing(p -> p.getFileName().toString()));
        for (int i = 0; i < steps.size() - keep; i++) {
            // renamed first, so that a kill during the delete leaves a hidden leftover, never a half checkpoint
            Path doomed = steps.get(i).resolveSibling("." + steps.get(i).getFileName() + PRUNED + System.nanoTime());
            Files.move(steps.get(i), doomed);
            FileTrees.delete(doomed);
        }
    }

    /**
     * Cleans up after a killed run: deletes the temp folders of unfinished checkpoints ({@code .step-N.tmp-*},
     * {@code .best.tmp-*}), half-pruned ones and AtomicFiles temp files; a checkpoint that was moved aside to be
     * replaced ({@code .best.old-*}) is put back if its replacement never arrived, else deleted. Returns how many
     * leftovers were removed or restored. Only call it while holding the run folder's
     * {@link dev.mm4j.util.DirectoryLock}: a live writer's temp folders look the same.
     */
    public int removeStaleTemporaries() throws IOException {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        int n = AtomicFiles.removeStaleTemps(dir);
        List<Path> hidden = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(p -> p.getFileName().toString().startsWith(".") && Files.isDirectory(p)).forEach(hidden::add);
        }
        hidden.sort(Comparator.comparing(p -> p.getFileName().toString()));
        for (Path p : hidden) {
            String name = p.getFileName().toString();
            int old = name.lastIndexOf(OLD);
            if (old > 1 && !Files.exists(dir.resolve(name.substring(1, old)))) {
                Files.move(p, dir.resolve(name.substring(1, old))); // the replacement never arrived
                n++;
            } else if (old > 1 || name.contains(TMP) || name.contains(PRUNED)) {
                FileTrees.delete(p);
                n++;
            }
        }
        return n;
    }

    /** Renames {@code tmp} to {@code target}; an existing target is moved aside first and deleted after. */
    private static void replaceDir(Path tmp, Path target) throws IOException {
        Path old = null;
        if (Files.exists(target)) {
            old = target.resolveSibling("." + target.getFileName() + OLD + System.nanoTime());
            Files.move(target, old);
        }
        AtomicFiles.moveIntoPlace(tmp, target);
        if (old != null) {
            FileTrees.delete(old);
        }
    }
}
