package dev.mm4j.checkpoint;

import dev.mm4j.flava.FlavaForPreTraining;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Loads {@link FlavaForPreTraining} strictly (every parameter, nothing left over) from TorchMultimodal's
 * {@code FLAVAForPreTraining} state dict (the tutorial's {@code flava_for_pretraining_unified_text_encoder.pt}) or
 * Hugging Face's {@code FlavaForPreTraining} checkpoint, with the image codebook from the checkpoint itself or from a
 * separate file.
 *
 * <p>A codebook file holds one of: TorchMultimodal's names ({@code image_codebook.encoder.blocks.*}, or a
 * {@code DalleVAEEncoder}'s {@code encoder.blocks.*}, or a {@code DalleEncoder}'s {@code blocks.*} with {@code w}/{@code b}),
 * or Hugging Face's {@code FlavaImageCodebook} ({@code facebook/flava-image-codebook}: {@code blocks.*} with
 * {@code weight}/{@code bias}, {@code group_N.group.}, {@code res_path.path.}). OpenAI's {@code encoder.pkl} is a
 * pickled Python object (its classes would have to be run to read it); it is refused with a message saying which
 * forms to use.
 */
public final class PretrainingCheckpoint {
    private PretrainingCheckpoint() {}

    static final String CODEBOOK = "image_codebook.";
    static final String CODEBOOK_ENCODER = "image_codebook.encoder.";

    /** Which forms a codebook file may take, for error messages. */
    static final String CODEBOOK_FORMS = "a state dict (torch.save zip or safetensors) of TorchMultimodal's "
            + "image_codebook.* / DalleVAEEncoder / DalleEncoder, or Hugging Face's facebook/flava-image-codebook";

    /**
     * Loads {@code checkpoint} (and the codebook from {@code codebook} when not null, replacing any
     * {@code image_codebook.*} of the checkpoint) into {@code model}, strictly.
     *
     * @return the load report (0 missing, 0 unexpected, or an exception naming them)
     */
    public static StateDictLoader.Report load(FlavaForPreTraining model, Path checkpoint, Path codebook) throws IOException {
        try (StateDict main = Checkpoints.read(checkpoint)) {
            Map<String, HostTensor> tensors = inTorchMultimodalNames(main.asMap(), checkpoint);
            String source = checkpoint.toString();
            StateDict cb = codebook == null ? null : readCodebook(codebook);
            try {
                if (cb != null) {
                    tensors.keySet().removeIf(n -> n.startsWith(CODEBOOK));
                    tensors.putAll(codebookInTorchMultimodalNames(cb.asMap(), codebook));
                    source = checkpoint + " with the codebook of " + codebook;
                }
                StateDict sd = new StateDict(new LinkedHashMap<>(tensors), Map.of(), null);
                return StateDictLoader.load(model, sd, true, source);
            } finally {
                if (cb != null) {
                    cb.close();
                }
            }
        }
    }

    /** A checkpoint's tensors in TorchMultimodal's names: as they are, or renamed from Hugging Face's layout. */
    static Map<String, HostTensor> inTorchMultimodalNames(Map<String, HostTensor> in, Path file) throws CheckpointException {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        if (!HfFlavaLayout.matches(in.keySet())) {
            out.putAll(in);
            return withTiedBiases(out);
        }
        Map<String, HostTensor> codebook = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : in.entrySet()) {
            String n = e.getKey();
            if (n.startsWith(CODEBOOK)) {
                codebook.put(n.substring(CODEBOOK.length()), e.getValue());
                continue;
            }
            String to = HfFlavaLayout.toTorchMultimodalPretraining(n);
            if (to != null) {
                out.put(to, e.getValue());
            } else if (HfFlavaLayout.ignoredReason(n) == null) {
                out.put(n, e.getValue()); // not understood: the strict load names it as unexpected
            } // else a buffer that is no weight (position_ids, token_type_ids)
        }
        if (!codebook.isEmpty()) {
            out.putAll(codebookInTorchMultimodalNames(codebook, file));
        }
        return withTiedBiases(out);
    }

    /**
     * The heads' decoder bias is tied to their bias ({@code cls.bias} = {@code cls.decoder.bias}); a file that stores
     * one of the two (Hugging Face's safetensors drop shared tensors) gets the other as the same tensor.
     */
    static Map<String, HostTensor> withTiedBiases(Map<String, HostTensor> sd) {
        Map<String, HostTensor> add = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : sd.entrySet()) {
            String n = e.getKey();
            if (!n.startsWith("loss.")) {
                continue;
            }
            if (n.endsWith(".cls.bias") && !sd.containsKey(n.replace(".cls.bias", ".cls.decoder.bias"))) {
                add.put(n.replace(".cls.bias", ".cls.decoder.bias"), e.getValue());
            } else if (n.endsWith(".cls.decoder.bias") && !sd.containsKey(n.replace(".cls.decoder.bias", ".cls.bias"))) {
                add.put(n.replace(".cls.decoder.bias", ".cls.bias"), e.getValue());
            }
        }
        sd.putAll(add);
        return sd;
    }

    /** Reads a codebook file; OpenAI's pickled encoder (or any pickled object) is refused with the forms to use. */
    static StateDict readCodebook(Path file) throws IOException {
        try {
            return Checkpoints.read(file);
        } catch (CheckpointException e) {
            String m = String.valueOf(e.getMessage());
            if (m.contains("legacy") || m.contains("forbidden global") || m.contains("pickled Python object")
                    || file.getFileName().toString().endsWith(".pkl")) {
                throw new CheckpointException(file + ": a pickled Python object (like OpenAI's DALL-E encoder.pkl), which "
                        + "mm4j does not unpickle (reading it would run its classes); use " + CODEBOOK_FORMS
                        + " [" + m + "]", e);
            }
            throw e;
        }
    }

    /** A codebook file's tensors as {@code image_codebook.encoder.blocks.*}, whichever of the accepted forms it is. */
    static Map<String, HostTensor> codebookInTorchMultimodalNames(Map<String, HostTensor> in, Path file)
            throws CheckpointException {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : in.entrySet()) {
            String to = codebookName(e.getKey());
            if (to == null) {
                throw new CheckpointException(file + ": tensor '" + e.getKey() + "' is not part of an image codebook; "
                        + "expected " + CODEBOOK_FORMS);
            }
            out.put(to, e.getValue());
        }
        if (out.isEmpty()) {
            throw new CheckpointException(file + ": no tensors; expected " + CODEBOOK_FORMS);
        }
        return out;
    }

    /** TorchMultimodal's name of a codebook tensor in any accepted form, or null. */
    static String codebookName(String name) {
        String n = name;
        for (String prefix : List.of(CODEBOOK_ENCODER, CODEBOOK, "encoder.")) {
            if (n.startsWith(prefix)) {
                n = n.substring(prefix.length());
                break;
            }
        }
        if (!n.startsWith("blocks.")) {
            return null;
        }
        // Hugging Face's FlavaImageCodebook: group_N.group.block_M, res_path.path.conv_K, nn.Conv2d weight/bias
        n = n.replaceAll("\\.(group_\\d+)\\.group\\.", ".$1.").replace(".res_path.path.", ".res_path.");
        if (n.endsWith(".weight")) {
            n = n.substring(0, n.length() - ".weight".length()) + ".w";
        } else if (n.endsWith(".bias")) {
            n = n.substring(0, n.length() - ".bias".length()) + ".b";
        }
        if (!n.endsWith(".w") && !n.endsWith(".b")) {
            return null;
        }
        return CODEBOOK_ENCODER + n;
    }
}
