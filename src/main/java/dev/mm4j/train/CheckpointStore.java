package dev.mm4j.train;

import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.StateDictLoader;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.FileTrees;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Training checkpoints under {@code <out>/checkpoints/}: each {@code step-NNNNNNNN/} holds the model
 * ({@code model.safetensors}), the optimizer's moments ({@code optimizer.safetensors}) and the
 * {@link TrainState} ({@code state.json}). A checkpoint is written into a temp folder and renamed into
 * place only when complete; {@code latest} then names it. The last {@code keep} are kept, plus
 * {@code best/} (highest validation accuracy).
 */
public final class CheckpointStore {
    private static final String PREFIX = "step-";
    private static final String MODEL = "model.safetensors";
    private static final String OPTIMIZER = "optimizer.safetensors";
    private static final String STATE = "state.json";
    private final Path dir;
    private final int keep;

    public CheckpointStore(Path outDir, int keep) {
        this.dir = outDir.resolve("checkpoints");
        this.keep = Math.max(1, keep);
    }

    public Path dir() {
        return dir;
    }

    /** Writes a complete checkpoint and makes it the latest; returns its folder. */
    public Path save(FlavaForClassification model, AdamW optimizer, TrainState state) throws IOException {
        Path target = dir.resolve(String.format("%s%08d", PREFIX, state.step));
        Path tmp = writeFolder(model, optimizer, state, "." + target.getFileName());
        replaceDir(tmp, target);
        AtomicFiles.writeString(dir.resolve("latest"), target.getFileName() + "\n");
        prune();
        return target;
    }

    /** Writes the current model as {@code best/} (atomically replacing the previous best). */
    public void saveBest(FlavaForClassification model, AdamW optimizer, TrainState state) throws IOException {
        replaceDir(writeFolder(model, optimizer, state, ".best"), dir.resolve("best"));
    }

    private Path writeFolder(FlavaForClassification model, AdamW optimizer, TrainState state, String tmpPrefix)
            throws IOException {
        Files.createDirectories(dir);
        Path tmp = Files.createTempDirectory(dir, tmpPrefix + ".tmp-");
        try {
            ModelBundle.writeWeights(tmp.resolve(MODEL), model);
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
    public static TrainState restore(Path checkpoint, FlavaForClassification model, AdamW optimizer) throws IOException {
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
            FileTrees.delete(steps.get(i));
        }
    }

    /** Renames {@code tmp} to {@code target}; an existing target is moved aside first and deleted after. */
    private static void replaceDir(Path tmp, Path target) throws IOException {
        Path old = null;
        if (Files.exists(target)) {
            old = target.resolveSibling("." + target.getFileName() + ".old-" + System.nanoTime());
            Files.move(target, old);
        }
        AtomicFiles.moveIntoPlace(tmp, target);
        if (old != null) {
            FileTrees.delete(old);
        }
    }
}
