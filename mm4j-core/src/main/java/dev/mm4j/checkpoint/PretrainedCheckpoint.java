package dev.mm4j.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.nn.Module;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Pretrained FLAVA weights as people have them, in our (TorchMultimodal's) names: TorchMultimodal's
 * {@code .pt} (loaded as is), or Hugging Face transformers' FLAVA ({@code pytorch_model.bin},
 * {@code model.safetensors}, sharded {@code *.index.json} variants of both, or the model folder holding them),
 * renamed by {@link HfFlavaLayout}. The layout is detected from the names. An HF model folder's
 * {@code config.json} gives the sizes ({@link #config}) and its {@code tokenizer.json} / {@code vocab.txt} the
 * tokenizer ({@link #tokenizerFile}).
 */
public final class PretrainedCheckpoint implements AutoCloseable {
    /** Whose names a checkpoint uses. */
    public enum Layout {
        TORCHMULTIMODAL("TorchMultimodal"),
        HF_TRANSFORMERS("Hugging Face transformers");

        private final String title;

        Layout(String title) {
            this.title = title;
        }

        @Override
        public String toString() {
            return title;
        }
    }

    public static final String HF_CONFIG = "config.json";
    /** An HF folder's tokenizer files, in order of preference. */
    public static final List<String> HF_TOKENIZER = List.of("tokenizer.json", "vocab.txt");

    private final Path source;
    private final String format;
    private final StateDict raw;
    private final Layout layout;
    private final HfFlavaLayout.Mapping mapping;
    private final StateDict stateDict;

    private PretrainedCheckpoint(Path source, String format, StateDict raw) {
        this.source = source;
        this.format = format;
        this.raw = raw;
        if (HfFlavaLayout.matches(raw.names())) {
            layout = Layout.HF_TRANSFORMERS;
            mapping = HfFlavaLayout.map(raw.names());
            LinkedHashMap<String, HostTensor> renamed = new LinkedHashMap<>();
            mapping.renamed().forEach((from, to) -> renamed.put(to, raw.get(from)));
            for (String n : mapping.unknown()) renamed.put(n, raw.get(n)); // reported as unexpected by the load
            stateDict = new StateDict(renamed, raw.metadata(), null);
        } else {
            layout = Layout.TORCHMULTIMODAL;
            mapping = null;
            stateDict = raw;
        }
    }

    /** Opens a checkpoint file, a shard index or a folder ({@link Checkpoints#read}) and detects its layout. */
    public static PretrainedCheckpoint open(Path path) throws IOException {
        String format = Checkpoints.describe(path);
        return new PretrainedCheckpoint(path, format, Checkpoints.read(path));
    }

    public Path source() {
        return source;
    }

    /** The file format, e.g. {@code TORCH_ZIP} or {@code 2 SAFETENSORS shards}. */
    public String format() {
        return format;
    }

    public Layout layout() {
        return layout;
    }

    /** The tensors under the names in the file(s). */
    public StateDict tensors() {
        return raw;
    }

    /** The tensors under our names (for an HF checkpoint: the renamed ones plus any not understood). */
    public StateDict stateDict() {
        return stateDict;
    }

    /** For an HF checkpoint the renaming, else null. */
    public HfFlavaLayout.Mapping mapping() {
        return mapping;
    }

    /** The folder holding the weights (an HF model folder's config and tokenizer are looked for there). */
    static Path folderOf(Path path) {
        return Files.isDirectory(path) ? path : path.toAbsolutePath().getParent();
    }

    /** The HF {@code config.json} next to the weights of {@code path} (a FLAVA one: model_type flava), or null. */
    public static Path hfConfigFile(Path path) throws IOException {
        Path f = folderOf(path).resolve(HF_CONFIG);
        if (!Files.isRegularFile(f)) return null;
        JsonNode n = readJson(f);
        return n.isObject() && "flava".equals(n.path("model_type").asText()) ? f : null;
    }

    /**
     * The model config: {@code base} with the config a pretraining bundle carries when {@code path} is one
     * ({@link ModelBundle#pretrainingConfig}: every size, the codebook's included), else with the sizes and eps of the
     * HF {@code config.json} next to the weights of {@code path} (when there is one), else {@code base} itself. Reads
     * no tensors.
     */
    public static FlavaConfig config(Path path, FlavaConfig base) throws IOException {
        FlavaConfig pretraining = ModelBundle.pretrainingConfig(path, base);
        if (pretraining != null) {
            return pretraining;
        }
        Path f = hfConfigFile(path);
        return f == null ? base : HfFlavaLayout.config(readJson(f), base, f.toString());
    }

    /** The tokenizer of an HF model folder ({@code tokenizer.json}, else {@code vocab.txt}) at {@code path}, or null. */
    public static Path tokenizerFile(Path path) throws IOException {
        if (hfConfigFile(path) == null) return null;
        for (String name : HF_TOKENIZER) {
            Path t = folderOf(path).resolve(name);
            if (Files.isRegularFile(t)) return t;
        }
        return null;
    }

    private static JsonNode readJson(Path f) throws IOException {
        try {
            return new ObjectMapper().readTree(Files.readString(f));
        } catch (JsonProcessingException e) {
            throw new CheckpointException(f + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** What loading this checkpoint into a model did (or would do): the renaming, then the load report. */
    public record LoadReport(String source, String format, Layout layout, int mapped,
            Map<String, List<String>> ignored, StateDictLoader.Report load) {
        public int ignoredCount() {
            return ignored.values().stream().mapToInt(List::size).sum();
        }

        /** Several lines: layout and renaming, what was left out on purpose, then loaded / missing / unexpected. */
        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder();
            sb.append(source).append(" (").append(format).append(", ").append(layout).append(" layout)");
            if (layout == Layout.HF_TRANSFORMERS) {
                sb.append("\n  mapped ").append(mapped).append(" tensors to TorchMultimodal names");
                sb.append("\n  ignored on purpose: ").append(ignoredCount());
                ignored.forEach((why, names) -> sb.append("\n    ").append(why).append(": ").append(names.size())
                        .append(" (").append(summary(names)).append(")"));
            }
            sb.append("\n  ").append(load);
            return sb.toString();
        }

        private static String summary(List<String> names) {
            List<String> shown = new ArrayList<>(names.subList(0, Math.min(3, names.size())));
            if (names.size() > 3) shown.add("...");
            return String.join(", ", shown);
        }
    }

    private LoadReport report(StateDictLoader.Report r) {
        return new LoadReport(source.toString(), format, layout, mapping == null ? 0 : mapping.renamed().size(),
                mapping == null ? Map.of() : mapping.ignored(), r);
    }

    /** Compares names and shapes with {@code model}'s parameters, loading nothing. */
    public LoadReport check(Module model) {
        return report(StateDictLoader.check(model, stateDict));
    }

    /**
     * Loads into {@code model}: non-strictly like the tutorial's {@code strict=False} (missing names keep their
     * values: the classifier of a pretraining checkpoint), strictly when asked. A wrong shape is an error either way.
     */
    public LoadReport load(Module model, boolean strict) throws IOException {
        return report(StateDictLoader.load(model, stateDict, strict, source.toString()));
    }

    @Override
    public void close() throws IOException {
        raw.close();
    }
}
