package dev.mm4j.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads a state dict from wherever the weights are: a {@code torch.save} file (zip or legacy) or a safetensors file
 * (told apart by their first bytes), a sharded checkpoint's {@code *.index.json} (Hugging Face's
 * {@code {"metadata": ..., "weight_map": {name: shard file}}}, shards of either format), or a folder holding one
 * of these (a Hugging Face model folder: {@link #HF_WEIGHTS} in that order of preference).
 */
public final class Checkpoints {
    /** The weight files of a Hugging Face model folder, in the order {@code from_pretrained} prefers them. */
    public static final List<String> HF_WEIGHTS = List.of("model.safetensors", "model.safetensors.index.json",
            "pytorch_model.bin", "pytorch_model.bin.index.json");

    private static final List<String> CHECKPOINT_SUFFIXES = List.of(".safetensors", ".bin", ".pt", ".pth", ".ckpt");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Logger log = LoggerFactory.getLogger(Checkpoints.class);

    private Checkpoints() {}

    /**
     * Prefixes that a wrapper adds to every name of the model it wraps, removed on reading: PyTorch's
     * DistributedDataParallel and DataParallel ({@code module.}) and {@code torch.compile} ({@code _orig_mod.}), also
     * nested ({@code module._orig_mod.}).
     */
    static final List<String> WRAPPER_PREFIXES = List.of("module.", "_orig_mod.");

    /**
     * The tensors of {@code path}: a checkpoint file, a shard index, or a folder holding one. Names that all carry a
     * wrapper's prefix ({@link #WRAPPER_PREFIXES}: a model saved while wrapped for DDP or compiled) are read without
     * it, with one line in the log.
     */
    public static StateDict read(Path path) throws IOException {
        return withoutWrapperPrefixes(readAsSaved(path), path);
    }

    /** {@link #read} under the names in the file(s). */
    private static StateDict readAsSaved(Path path) throws IOException {
        Path file = weightsFile(path);
        if (isIndex(file)) {
            return readSharded(file);
        }
        return switch (CheckpointFormat.detect(file)) {
            case TORCH_ZIP, TORCH_LEGACY -> TorchCheckpoints.read(file);
            case SAFETENSORS -> SafeTensors.read(file);
        };
    }

    /** {@code sd} without the wrapper prefix that every one of its names carries, if they do ({@link #WRAPPER_PREFIXES}). */
    static StateDict withoutWrapperPrefixes(StateDict sd, Path path) {
        String removed = "";
        for (boolean found = true; found; ) {
            found = false;
            for (String p : WRAPPER_PREFIXES) {
                String longer = removed + p;
                if (sd.size() > 0 && sd.names().stream().allMatch(n -> n.length() > longer.length() && n.startsWith(longer))) {
                    removed = longer;
                    found = true;
                }
            }
        }
        if (removed.isEmpty()) {
            return sd;
        }
        LinkedHashMap<String, HostTensor> renamed = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : sd.asMap().entrySet()) {
            renamed.put(e.getKey().substring(removed.length()), e.getValue());
        }
        log.info("{}: every tensor name starts with '{}' (a model saved while wrapped by {}): read without it", path, removed,
                removed.contains("module.") && removed.contains("_orig_mod.") ? "DistributedDataParallel and torch.compile"
                        : removed.contains("module.") ? "DistributedDataParallel or DataParallel" : "torch.compile");
        return new StateDict(renamed, sd.metadata(), sd::close);
    }

    /** The file {@link #read} reads for {@code path}: the path itself, or the weights file in a folder. */
    public static Path weightsFile(Path path) throws IOException {
        if (!Files.isDirectory(path)) {
            if (!Files.exists(path)) {
                throw new CheckpointException(path + ": no such file or folder");
            }
            return path;
        }
        if (Files.isRegularFile(path.resolve(".metadata"))) {
            try (Stream<Path> s = Files.list(path)) {
                if (s.anyMatch(p -> p.getFileName().toString().endsWith(".distcp"))) {
                    throw new CheckpointException(path + ": a torch.distributed.checkpoint folder (.metadata and *.distcp, as"
                            + " FSDP saves it), which mm4j does not read; convert it into one file with: python -m"
                            + " torch.distributed.checkpoint.format_utils dcp_to_torch " + path + " model.pt");
                }
            }
        }
        for (String name : HF_WEIGHTS) {
            if (Files.isRegularFile(path.resolve(name))) {
                return path.resolve(name);
            }
        }
        List<Path> candidates;
        try (Stream<Path> s = Files.list(path)) {
            candidates = s.filter(Files::isRegularFile).filter(p -> isIndex(p) || CHECKPOINT_SUFFIXES.stream()
                    .anyMatch(suffix -> p.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(suffix))).sorted().toList();
        }
        if (candidates.size() == 1) {
            return candidates.get(0);
        }
        throw new CheckpointException(path + ": a folder without " + String.join(", ", HF_WEIGHTS)
                + (candidates.isEmpty() ? " or any other checkpoint file" : " and with several checkpoint files " + names(candidates)
                + "; name the one to read"));
    }

    /** A short description of what {@code path} holds, e.g. {@code TORCH_ZIP} or {@code 2 SAFETENSORS shards}. */
    public static String describe(Path path) throws IOException {
        Path file = weightsFile(path);
        if (!isIndex(file)) {
            return CheckpointFormat.detect(file).toString();
        }
        List<Path> shards = shardFiles(file, readIndex(file));
        return shards.size() + " " + CheckpointFormat.detect(shards.get(0)) + " shard" + (shards.size() == 1 ? "" : "s");
    }

    static boolean isIndex(Path file) {
        return file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".index.json");
    }

    private static String names(List<Path> files) {
        return files.stream().map(p -> p.getFileName().toString()).toList().toString();
    }

    // ------------------------------------------------------------------ sharded checkpoints

    private static Map<String, String> readIndex(Path index) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(index));
        } catch (JsonProcessingException e) {
            throw new CheckpointException(index + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new CheckpointException(index + ": no \"weight_map\" object (tensor name -> shard file)");
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual() || e.getValue().textValue().isBlank()) {
                throw new CheckpointException(index + ": weight_map entry '" + e.getKey() + "' is not a file name");
            }
            weightMap.put(e.getKey(), e.getValue().textValue());
        }
        return weightMap;
    }

    /** The distinct shard files of an index, in order of first mention, each inside the index's folder. */
    private static List<Path> shardFiles(Path index, Map<String, String> weightMap) throws CheckpointException {
        Path dir = index.toAbsolutePath().getParent();
        List<Path> shards = new ArrayList<>();
        for (String name : new java.util.LinkedHashSet<>(weightMap.values())) {
            Path p = dir.resolve(name).normalize();
            if (!p.startsWith(dir) || p.equals(dir) || name.contains("\\")) {
                throw new CheckpointException(index + ": shard '" + name + "' is outside the index's folder");
            }
            if (isIndex(p)) {
                throw new CheckpointException(index + ": shard '" + name + "' is itself an index");
            }
            shards.add(p);
        }
        return shards;
    }

    /**
     * All tensors of all shards of {@code index} as one state dict (shards in order of first mention). Every name
     * the weight map lists must be in the shard it names, and no tensor may be in two shards.
     */
    static StateDict readSharded(Path index) throws IOException {
        Map<String, String> weightMap = readIndex(index);
        List<Path> shards = shardFiles(index, weightMap);
        List<StateDict> open = new ArrayList<>();
        Closeable closeAll = () -> {
            IOException first = null;
            for (StateDict sd : open) {
                try {
                    sd.close();
                } catch (IOException e) {
                    if (first == null) first = e;
                }
            }
            if (first != null) throw first;
        };
        try {
            LinkedHashMap<String, HostTensor> all = new LinkedHashMap<>();
            Map<String, String> where = new LinkedHashMap<>();
            for (Path shard : shards) {
                if (!Files.isRegularFile(shard)) {
                    throw new CheckpointException(index + ": shard " + shard.getFileName() + " is missing");
                }
                StateDict sd = readAsSaved(shard);
                open.add(sd);
                String shardName = index.toAbsolutePath().getParent().relativize(shard).toString();
                for (Map.Entry<String, HostTensor> e : sd.asMap().entrySet()) {
                    String before = where.putIfAbsent(e.getKey(), shardName);
                    if (before != null) {
                        throw new CheckpointException(index + ": tensor '" + e.getKey() + "' is in both " + before + " and " + shardName);
                    }
                    all.put(e.getKey(), e.getValue());
                }
            }
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                String in = where.get(e.getKey());
                if (in == null || !Path.of(in).equals(Path.of(e.getValue()).normalize())) {
                    throw new CheckpointException(index + ": weight_map puts '" + e.getKey() + "' in " + e.getValue()
                            + (in == null ? ", but no shard holds it" : ", but it is in " + in));
                }
            }
            return new StateDict(all, Map.of(), closeAll);
        } catch (IOException | RuntimeException e) {
            try {
                closeAll.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /**
     * Checks the whole file, also the parts a load does not read, and says what was checked in one line; any
     * corruption is a {@link CheckpointException}. A torch.save archive: every zip entry's size and CRC-32 and each
     * local header against the central directory (a load checks only the entries it reads). A safetensors file
     * (which has no checksum): the header, and that the tensors tile the data section exactly.
     */
    public static String verify(Path path) throws IOException {
        Path file = weightsFile(path);
        if (isIndex(file)) {
            List<String> lines = new java.util.ArrayList<>();
            for (Path shard : shardFiles(file, readIndex(file))) {
                lines.add(shard.getFileName() + ": " + verifyFile(shard));
            }
            return String.join("\n", lines);
        }
        return verifyFile(file);
    }

    private static String verifyFile(Path file) throws IOException {
        return switch (CheckpointFormat.detect(file)) {
            case TORCH_ZIP -> "integrity: " + TorchCheckpoints.verifyArchive(file);
            case TORCH_LEGACY -> "integrity: " + TorchLegacyFormat.verify(file) + " storages fill the file exactly after its"
                    + " pickles (the legacy format has no checksum)";
            case SAFETENSORS -> {
                try (StateDict sd = SafeTensors.read(file)) {
                    yield "integrity: header valid, " + sd.size() + " tensors cover the data section exactly"
                            + " (the format has no checksum for the values)";
                }
            }
        };
    }
}
