package dev.mm4j.train;

import dev.mm4j.train.dist.Rendezvous;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What the builders of a training run share ({@link Finetuner.Builder}, {@link Pretrainer.Builder}): the settings of
 * a run as Java types - a preset (or given settings), a YAML file, then every setter in the order called; keys without
 * a setter of their own go through {@link #set(String, Object)} - and the run's listeners, log, progress bar and
 * resume.
 *
 * @param <B> the builder itself, so that every setter returns it
 */
public abstract class RunBuilder<B extends RunBuilder<B>> {
    Preset preset = Preset.DEFAULT;
    FinetuneSettings base;
    Path settingsFile;
    final Map<String, Object> values = new LinkedHashMap<>();
    final List<TrainingListener> listeners = new ArrayList<>();
    PrintStream log;
    boolean resume;
    boolean progressBar;
    Rendezvous rendezvous;

    /** @param log where the run's console lines go unless {@link #log(PrintStream)} says otherwise */
    RunBuilder(PrintStream log) {
        this.log = log;
    }

    @SuppressWarnings("unchecked")
    final B self() {
        return (B) this;
    }

    /** Start from a named preset (default {@link Preset#DEFAULT}); replaces {@link #settings}. */
    public B preset(Preset preset) {
        this.preset = Objects.requireNonNull(preset, "preset");
        this.base = null;
        return self();
    }

    /** Start from these settings (copied) instead of a preset, e.g. what the command line assembled. */
    public B settings(FinetuneSettings settings) {
        this.base = settings.copy();
        return self();
    }

    /** Overlay a YAML settings file (keys as in {@code OUT/settings.yaml}) on the preset. */
    public B settingsFile(Path yaml) {
        this.settingsFile = yaml;
        return self();
    }

    /** Any settings key, e.g. {@code set("warmup_steps", 100)}, {@code set("precision", "bf16")}. */
    public B set(String key, Object value) {
        values.put(Objects.requireNonNull(key, "key"), value);
        return self();
    }

    /**
     * Starting weights from a file or folder (.pt, .bin, .safetensors, *.index.json, Hugging Face folder, a bundle of
     * this library); null: none, as {@link #noCheckpoint()}.
     */
    public B checkpoint(Path weights) {
        return set("checkpoint", weights == null ? "none" : weights.toString());
    }

    /** Pretrained weights from an http(s) URL (downloaded once into the cache). */
    public B checkpoint(URI url) {
        return set("checkpoint", url.toString());
    }

    /** Pretrained weights of a Hugging Face model, {@code ORG/NAME[@REVISION]}, as {@code download --hf} cached it. */
    public B checkpointFromHub(String repo) {
        return set("checkpoint", "hf:" + repo);
    }

    /** No pretrained weights: the model starts from random initialization. */
    public B noCheckpoint() {
        return set("checkpoint", "none");
    }

    /** FLAVA's kwargs (TorchMultimodal names, e.g. {@code image_num_hidden_layers}); replaces the preset's. */
    public B model(Map<String, ?> kwargs) {
        return set("model", new LinkedHashMap<>(kwargs));
    }

    /** Stop after this many optimizer steps (0: run the epochs). */
    public B maxSteps(long steps) {
        return set("max_steps", steps);
    }

    /** Epochs to run when max steps is 0. */
    public B epochs(int epochs) {
        return set("epochs", epochs);
    }

    /** Samples per batch. */
    public B batchSize(int batchSize) {
        return set("batch_size", batchSize);
    }

    /** The peak learning rate. */
    public B learningRate(double lr) {
        return set("lr", lr);
    }

    /** The seed of initialization, shuffling, masking and dropout. */
    public B seed(long seed) {
        return set("seed", seed);
    }

    /** The output folder (settings, metrics, checkpoints, model, report). */
    public B outputDir(Path dir) {
        return set("out", dir.toString());
    }

    /** cpu, gpu or gpu:N (default: the best available). */
    public B device(String device) {
        return set("device", device);
    }

    /**
     * The matrix products' arithmetic: {@code "fp32"}, {@code "bf16"} (bfloat16 products, float32 master weights)
     * or {@code "auto"} (bf16 where the hardware has it natively, else fp32); see {@link dev.mm4j.nn.Precision}.
     */
    public B precision(String precision) {
        return set("precision", precision);
    }

    /** libtorch's intra-op threads (0: all cores). */
    public B threads(int threads) {
        return set("threads", threads);
    }

    /** Receive step, validation and checkpoint events (see {@link TrainingListener}). */
    public B listener(TrainingListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
        return self();
    }

    /** Where the run's console lines go (settings, load report, losses, summary). */
    public B log(PrintStream out) {
        this.log = Objects.requireNonNull(out, "out");
        return self();
    }

    /** Show a progress bar on the terminal (what the command line does); default off. */
    public B progressBar(boolean show) {
        this.progressBar = show;
        return self();
    }

    /** Continue the run in the output folder from its latest checkpoint (default: a new run, which refuses a used folder). */
    public B resume(boolean resume) {
        this.resume = resume;
        return self();
    }

    /**
     * Data-parallel training as one rank of several processes (PyTorch DDP's semantics: each rank trains on its
     * shard of every global batch of {@code batch_size} x processes, the gradients averaged with libtorch's Gloo;
     * rank 0 alone writes the output folder, which every rank reads when resuming). Every rank calls this with
     * the same settings and its own rank; {@link dev.mm4j.train.dist.Launcher} starts them on one machine. Null, or a
     * world of 1: one process.
     */
    public B distributed(Rendezvous rendezvous) {
        this.rendezvous = rendezvous;
        return self();
    }

    /**
     * The settings: the preset (or given settings), the settings file, then the setters.
     *
     * @param who the builder's name in error messages
     * @throws IllegalArgumentException for an unknown key or a value of the wrong type (one line naming the key)
     * @throws IOException when the settings file cannot be read
     */
    final FinetuneSettings resolve(String who) throws IOException {
        FinetuneSettings s = base != null ? base.copy() : preset.settings();
        if (settingsFile != null) {
            s.merge(settingsFile);
        }
        s.apply(values, who);
        return s;
    }
}
