package dev.mm4j.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mm4j.flava.FlavaConfig;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face transformers' FLAVA ({@code models/flava/modeling_flava.py}: {@code FlavaForPreTraining}, whose
 * {@code flava} is a {@code FlavaModel}; or a bare {@code FlavaModel}) in TorchMultimodal's names, which are our
 * parameter paths. Each rule below is checked against the module tree of {@code modeling_flava.py}; it reads
 * like the {@code upgrade_state_dict} of {@code convert_flava_original_pytorch_to_hf.py}, in the other direction.
 * Also the sizes of HF's {@code config.json} as TorchMultimodal kwargs ({@link #config}).
 */
public final class HfFlavaLayout {
    private HfFlavaLayout() {}

    /** A rename: {@code from} at the start of a name (prefix) or anywhere in it (inner), becomes {@code to}. */
    private record Rule(String from, String to) {}

    /** Where each HF sub-model lives in TorchMultimodal's {@code FLAVAForClassification} (prefix renames). */
    private static final List<Rule> MODULES = List.of(
            new Rule("flava.image_model.", "model.image_encoder."),               // FlavaImageModel
            new Rule("flava.text_model.", "model.text_encoder."),                 // FlavaTextModel
            new Rule("flava.multimodal_model.", "model.mm_encoder."),             // FlavaMultimodalModel (cls_token too)
            new Rule("flava.image_to_mm_projection.", "model.image_to_mm_projection."),
            new Rule("flava.text_to_mm_projection.", "model.text_to_mm_projection."),
            new Rule("flava.image_projection.", "model.image_projection."),
            new Rule("flava.text_projection.", "model.text_projection."),
            // FlavaModel.logit_scale, the contrastive temperature: where FLAVAForPreTraining (and our retrieval model)
            // keeps it; a classification model has none and reports it unexpected, as for TorchMultimodal's checkpoint
            new Rule("flava.logit_scale", "loss.contrastive_loss.logit_scale"));

    /** Inside an encoder (inner renames, in this order; names that match none are equal in both). */
    private static final List<Rule> LAYERS = List.of(
            new Rule(".attention.attention.", ".attention."),                 // FlavaAttention.attention = FlavaSelfAttention: query/key/value
            new Rule(".attention.output.dense.", ".attention.output."),       // FlavaAttention.output = FlavaSelfOutput.dense
            new Rule(".intermediate.dense.", ".feedforward.model.0."),        // FlavaIntermediate.dense (then GELU)
            new Rule(".output.dense.", ".feedforward.model.2."),              // FlavaOutput.dense
            new Rule(".layernorm_before.", ".attention_layernorm."),          // FlavaLayer, before self-attention
            new Rule(".layernorm_after.", ".feedforward_layernorm."),         // FlavaLayer, before the MLP
            new Rule(".embeddings.LayerNorm.", ".embeddings.layer_norm."));   // FlavaTextEmbeddings.LayerNorm
    // equal in both: embeddings.{cls_token, mask_token, position_embeddings, patch_embeddings.projection,
    // word_embeddings, position_embeddings, token_type_embeddings}, encoder.layer.N, layernorm, pooler.dense

    /** What is left out on purpose: name prefixes (or, starting with '.', name endings) and why. */
    private static final List<Rule> IGNORED = List.of(
            new Rule("mim_head.", "pretraining heads"),            // FlavaForPreTraining: masked image modeling
            new Rule("mlm_head.", "pretraining heads"),            // masked language modeling
            new Rule("itm_head.", "pretraining heads"),            // image-text matching
            new Rule("mmm_image_head.", "pretraining heads"),      // masked multimodal modeling, image part
            new Rule("mmm_text_head.", "pretraining heads"),       // masked multimodal modeling, text part
            new Rule("image_codebook.", "image_codebook (DALL-E tokenizer for masked image modeling)"),
            new Rule(".embeddings.position_ids", "position_ids / token_type_ids buffers (not weights)"),
            new Rule(".embeddings.token_type_ids", "position_ids / token_type_ids buffers (not weights)"));

    /** The outcome for a whole checkpoint: renamed tensors, and the names left out on purpose or not understood. */
    public record Mapping(Map<String, String> renamed, Map<String, List<String>> ignored, List<String> unknown) {
        public int ignoredCount() {
            return ignored.values().stream().mapToInt(List::size).sum();
        }
    }

    /**
     * Whether {@code names} are laid out like HF transformers' FLAVA: a {@code FlavaForPreTraining}
     * ({@code flava.*}) or a bare {@code FlavaModel} ({@code image_model.*}, {@code text_model.*}, ...).
     */
    public static boolean matches(Collection<String> names) {
        for (String n : names) {
            String k = withFlavaPrefix(n);
            for (Rule r : MODULES) {
                if (k.startsWith(r.from())) return true;
            }
        }
        return false;
    }

    /** A bare {@code FlavaModel}'s names get the {@code flava.} of {@code FlavaForPreTraining}. */
    private static String withFlavaPrefix(String name) {
        if (name.startsWith("flava.")) return name;
        for (Rule r : MODULES) {
            if (name.startsWith(r.from().substring("flava.".length()))) return "flava." + name;
        }
        return name.equals("logit_scale") ? "flava.logit_scale" : name;
    }

    /** TorchMultimodal's name for HF's {@code name}, or null if it is ignored on purpose or not understood. */
    public static String toTorchMultimodal(String name) {
        String k = withFlavaPrefix(name);
        if (ignoredReason(k) != null) return null;
        for (Rule m : MODULES) {
            if (k.startsWith(m.from())) {
                String rest = "." + k.substring(m.from().length());
                for (Rule r : LAYERS) {
                    rest = rest.replace(r.from(), r.to());
                }
                return m.to() + rest.substring(1);
            }
        }
        return null;
    }

    /**
     * Hugging Face's {@code FlavaForPreTraining} heads in TorchMultimodal's {@code FLAVAPretrainingLoss} (prefix
     * renames, then {@link #HEAD_INSIDE}): each {@code FlavaMaskedPredictionHead} is a {@code MaskedPredictionLoss}'s
     * {@code cls}, the ITM head is {@code ITMLoss}'s pooler and two-way head, {@code flava.logit_scale} is the global
     * contrastive loss's. (The image codebook, {@code image_codebook.*}, is renamed by {@code PretrainingCheckpoint}.)
     */
    private static final List<Rule> HEADS = List.of(
            new Rule("mlm_head.", "loss.mlm_loss.cls."),                     // masked language modeling
            new Rule("mim_head.", "loss.mim_loss.cls."),                     // masked image modeling
            new Rule("mmm_text_head.", "loss.mmm_loss.mlm.cls."),            // masked multimodal modeling, text
            new Rule("mmm_image_head.", "loss.mmm_loss.mim.cls."),           // masked multimodal modeling, image
            new Rule("itm_head.seq_relationship.", "loss.itm_loss.cls.seq_relationship."), // FlavaITMHead
            new Rule("itm_head.pooler.", "loss.itm_loss.pooler."),           // FlavaPooler.dense
            new Rule("flava.logit_scale", "loss.contrastive_loss.logit_scale"));

    /** Inside a {@code FlavaMaskedPredictionHead}: {@code transform} (FlavaPredictionHeadTransform) is flat in ours. */
    private static final List<Rule> HEAD_INSIDE = List.of(
            new Rule("transform.dense.", "dense."),
            new Rule("transform.LayerNorm.", "layer_norm."));

    /**
     * TorchMultimodal's {@code FLAVAForPreTraining} name for HF's {@code name}: the pretraining heads and
     * {@code logit_scale} as {@code loss.*}, everything else as {@link #toTorchMultimodal}; null for what that
     * leaves out (buffers, the codebook) or does not understand.
     */
    public static String toTorchMultimodalPretraining(String name) {
        String k = withFlavaPrefix(name);
        for (Rule h : HEADS) {
            if (k.startsWith(h.from())) {
                String rest = k.substring(h.from().length());
                for (Rule r : HEAD_INSIDE) {
                    if (rest.startsWith(r.from())) {
                        rest = r.to() + rest.substring(r.from().length());
                    }
                }
                return h.to() + rest;
            }
        }
        return toTorchMultimodal(name);
    }

    /** Why {@code name} is left out on purpose, or null. */
    public static String ignoredReason(String name) {
        String k = withFlavaPrefix(name);
        for (Rule r : IGNORED) {
            if (r.from().startsWith(".") ? k.endsWith(r.from()) : k.startsWith(r.from())) return r.to();
        }
        return null;
    }

    /** Maps every name of an HF checkpoint. */
    public static Mapping map(Collection<String> names) {
        Map<String, String> renamed = new LinkedHashMap<>();
        Map<String, List<String>> ignored = new LinkedHashMap<>();
        List<String> unknown = new ArrayList<>();
        for (String n : names) {
            String why = ignoredReason(n);
            String to = why == null ? toTorchMultimodal(n) : null;
            if (why != null) ignored.computeIfAbsent(why, k -> new ArrayList<>()).add(n);
            else if (to != null) renamed.put(n, to);
            else unknown.add(n);
        }
        return new Mapping(renamed, ignored, unknown);
    }

    // ------------------------------------------------------------------ config.json

    /** HF config key (in image_config / text_config / multimodal_config, or at the top) and the kwarg it sets. */
    private record Key(String section, String hf, String kwarg) {}

    private static final List<Key> CONFIG = List.of(
            new Key("image_config", "hidden_size", "image_hidden_size"),
            new Key("image_config", "num_attention_heads", "image_num_attention_heads"),
            new Key("image_config", "num_hidden_layers", "image_num_hidden_layers"),
            new Key("image_config", "intermediate_size", "image_intermediate_size"),
            new Key("image_config", "layer_norm_eps", "image_layer_norm_eps"),
            new Key("image_config", "image_size", "image_size"),
            new Key("image_config", "patch_size", "patch_size"),
            new Key("image_config", "num_channels", "num_channels"),
            new Key("text_config", "hidden_size", "text_hidden_size"),
            new Key("text_config", "num_attention_heads", "text_num_attention_heads"),
            new Key("text_config", "num_hidden_layers", "text_num_hidden_layers"),
            new Key("text_config", "intermediate_size", "text_intermediate_size"),
            new Key("text_config", "layer_norm_eps", "text_layer_norm_eps"),
            new Key("text_config", "vocab_size", "vocab_size"),
            new Key("text_config", "pad_token_id", "pad_token_id"),
            new Key("text_config", "type_vocab_size", "type_vocab_size"),
            new Key("text_config", "max_position_embeddings", "max_position_embeddings"),
            new Key("multimodal_config", "hidden_size", "multimodal_hidden_size"),
            new Key("multimodal_config", "num_attention_heads", "multimodal_num_attention_heads"),
            new Key("multimodal_config", "num_hidden_layers", "multimodal_num_hidden_layers"),
            new Key("multimodal_config", "intermediate_size", "multimodal_intermediate_size"),
            new Key("multimodal_config", "layer_norm_eps", "multimodal_layer_norm_eps"),
            new Key("", "projection_dim", "text_and_image_proj_size"));

    /** What our model is, where HF's config could say otherwise: section, key, the value we support. */
    private static final List<Key> FIXED = List.of(
            new Key("image_config", "hidden_act", "gelu"), new Key("text_config", "hidden_act", "gelu"),
            new Key("multimodal_config", "hidden_act", "gelu"), new Key("image_config", "qkv_bias", "true"),
            new Key("text_config", "qkv_bias", "true"), new Key("multimodal_config", "qkv_bias", "true"),
            new Key("multimodal_config", "use_cls_token", "true"),
            new Key("text_config", "position_embedding_type", "absolute"));

    /**
     * The kwargs an HF {@code config.json} (a {@code FlavaConfig}) sets: sizes and layer-norm eps. Keys it does
     * not have keep their value in {@code base}. Throws naming the key when the config asks for something our
     * model is not (another activation, no qkv bias, no multimodal CLS token, relative positions).
     */
    public static FlavaConfig config(JsonNode hf, FlavaConfig base, String where) throws CheckpointException {
        if (hf == null || !hf.isObject()) throw new CheckpointException(where + ": not a JSON object");
        if (hf.has("model_type") && !"flava".equals(hf.get("model_type").asText())) {
            throw new CheckpointException(where + ": model_type '" + hf.get("model_type").asText() + "' is not flava");
        }
        for (Key k : FIXED) {
            JsonNode v = section(hf, k.section()).get(k.hf());
            if (v != null && !v.isNull() && !v.asText().equals(k.kwarg())) {
                throw new CheckpointException(where + ": " + k.section() + "." + k.hf() + " is " + v + "; only " + k.kwarg()
                        + " is supported");
            }
        }
        Map<String, Object> kwargs = new LinkedHashMap<>();
        for (Key k : CONFIG) {
            JsonNode v = section(hf, k.section()).get(k.hf());
            if (v == null || v.isNull()) continue;
            if (!v.isNumber()) throw new CheckpointException(where + ": " + k.section() + "." + k.hf() + " is not a number: " + v);
            kwargs.put(k.kwarg(), v.numberValue());
        }
        try {
            return FlavaConfig.withKwargs(base, kwargs);
        } catch (java.io.IOException | IllegalArgumentException e) {
            throw new CheckpointException(where + ": " + e.getMessage(), e);
        }
    }

    private static JsonNode section(JsonNode hf, String name) {
        if (name.isEmpty()) return hf;
        JsonNode s = hf.get(name);
        if (s == null || !s.isObject()) s = hf.get(name + "_dict"); // written by older transformers versions
        return s != null && s.isObject() ? s : com.fasterxml.jackson.databind.node.MissingNode.getInstance();
    }
}
