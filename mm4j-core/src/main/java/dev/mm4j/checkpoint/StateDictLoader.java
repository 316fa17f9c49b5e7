package dev.mm4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Copies a state dict into a module's parameters by name (the module's parameter paths are the
 * state-dict keys). Strict, or non-strict like {@code load_state_dict(strict=False)}: what matches
 * is loaded and missing/unexpected names are reported; a shape mismatch is an error either way.
 */
public final class StateDictLoader {
    private StateDictLoader() {}

    /** What a load did: names sorted, as PyTorch reports them. */
    public record Report(int loaded, List<String> missing, List<String> unexpected, List<String> mismatched) {
        public boolean isExact() {
            return missing.isEmpty() && unexpected.isEmpty() && mismatched.isEmpty();
        }

        @Override
        public String toString() {
            return "loaded " + loaded + " tensors; missing " + missing.size() + " " + missing + "; unexpected "
                    + unexpected.size() + " " + unexpected
                    + (mismatched.isEmpty() ? "" : "; wrong shape " + mismatched);
        }
    }

    /** Compares names and shapes without loading anything (what {@code inspect} prints). */
    public static Report check(Module module, StateDict sd) {
        Map<String, Parameter> params = module.stateDictParameters();
        TreeSet<String> missing = new TreeSet<>();
        TreeSet<String> mismatched = new TreeSet<>();
        int matching = 0;
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            HostTensor t = sd.get(e.getKey());
            if (t == null) {
                missing.add(e.getKey());
            } else if (!Arrays.equals(t.shape(), e.getValue().shape().getShape())) {
                mismatched.add(e.getKey() + ": checkpoint " + Arrays.toString(t.shape()) + ", model "
                        + Arrays.toString(e.getValue().shape().getShape()));
            } else {
                matching++;
            }
        }
        TreeSet<String> unexpected = new TreeSet<>(sd.names());
        unexpected.removeAll(params.keySet());
        return new Report(matching, List.copyOf(missing), List.copyOf(unexpected), List.copyOf(mismatched));
    }

    /**
     * Loads {@code sd} into {@code module}'s (allocated) parameters.
     *
     * @throws CheckpointException on a shape mismatch, or in strict mode on any missing/unexpected name
     */
    public static Report load(Module module, StateDict sd, boolean strict, String source) throws CheckpointException {
        Report r = check(module, sd);
        if (!r.mismatched.isEmpty() || (strict && !r.isExact())) {
            List<String> problems = new ArrayList<>();
            if (!r.mismatched.isEmpty()) {
                problems.add("wrong shape: " + String.join("; ", r.mismatched));
            }
            if (strict && !r.missing.isEmpty()) {
                problems.add("missing: " + String.join(", ", r.missing));
            }
            if (strict && !r.unexpected.isEmpty()) {
                problems.add("unexpected: " + String.join(", ", r.unexpected));
            }
            throw new CheckpointException(source + " does not fit the model: " + String.join(" | ", problems));
        }
        for (Map.Entry<String, Parameter> e : module.stateDictParameters().entrySet()) {
            HostTensor t = sd.get(e.getKey());
            if (t == null) {
                continue;
            }
            NDManager owner = e.getValue().array().getManager();
            try (NDManager tmp = owner.newSubManager()) {
                NDArray value = source(t, tmp);
                e.getValue().copyFrom(value);
            }
        }
        return r;
    }

    /**
     * {@code t} as an array to copy from, closed with {@code tmp} before the state dict is. Where the checkpoint
     * holds the tensor as is (contiguous float32/int64 in a memory-mapped file, little-endian host) the array
     * is a read-only view of the file's bytes, so {@link Parameter#copyFrom} copies them straight into the
     * parameter: one copy instead of two, and no direct buffer per tensor left for the GC (those added a whole
     * model's size to the peak RSS of a load). Anything else is converted by {@link DjlTensors#toNDArray}.
     */
    private static NDArray source(HostTensor t, NDManager tmp) {
        if (t.isZeroCopy() && t.numel() > 0 && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
            ByteBuffer data = t.data();
            if (data.isDirect()) {
                return tmp.create(data.order(ByteOrder.nativeOrder()), new Shape(t.shape()),
                        t.isFloating() ? DataType.FLOAT32 : DataType.INT64);
            }
        }
        return DjlTensors.toNDArray(t, tmp);
    }

    /** Reads a checkpoint file (torch zip or safetensors) and loads it. */
    public static Report load(Module module, Path file, boolean strict) throws IOException {
        try (StateDict sd = Checkpoints.read(file)) {
            return load(module, sd, strict, file.toString());
        }
    }
}
