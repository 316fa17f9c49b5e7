package dev.mm4j.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes Hugging Face transformers-layout FLAVA checkpoints for tests: the tiny fixture's weights under the names
 * {@code modeling_flava.py} gives them (an inverse mapping written here independently of {@link HfFlavaLayout}),
 * plus what a {@code FlavaForPreTraining} checkpoint holds besides (pretraining heads, logit_scale, the image
 * codebook, a position_ids buffer), and the model folder's {@code config.json}.
 */
public final class HfFlavaCheckpoints {
    private HfFlavaCheckpoints() {}

    /** TorchMultimodal name patterns and their HF names (whole-name regexes, tried in order). */
    private static final List<String[]> INVERSE = List.of(
            new String[] {"model\\.image_encoder\\.(.*)", "flava.image_model.$1"},
            new String[] {"model\\.text_encoder\\.(.*)", "flava.text_model.$1"},
            new String[] {"model\\.mm_encoder\\.(.*)", "flava.multimodal_model.$1"},
            new String[] {"model\\.((image|text)(_to_mm)?_projection\\..*)", "flava.$1"});
    private static final List<String[]> INVERSE_INSIDE = List.of(
            new String[] {"(.*\\.encoder\\.layer\\.\\d+)\\.attention\\.(query|key|value)\\.(weight|bias)", "$1.attention.attention.$2.$3"},
            new String[] {"(.*\\.encoder\\.layer\\.\\d+)\\.attention\\.output\\.(weight|bias)", "$1.attention.output.dense.$2"},
            new String[] {"(.*\\.encoder\\.layer\\.\\d+)\\.feedforward\\.model\\.0\\.(weight|bias)", "$1.intermediate.dense.$2"},
            new String[] {"(.*\\.encoder\\.layer\\.\\d+)\\.feedforward\\.model\\.2\\.(weight|bias)", "$1.output.dense.$2"},
            new String[] {"(.*\\.encoder\\.layer\\.\\d+)\\.attention_layernorm\\.(weight|bias)", "$1.layernorm_before.$2"},
            new String[] {"(.*\\.encoder\\.layer\\.\\d+)\\.feedforward_layernorm\\.(weight|bias)", "$1.layernorm_after.$2"},
            new String[] {"(.*\\.embeddings)\\.layer_norm\\.(weight|bias)", "$1.LayerNorm.$2"});

    /** HF's name for a TorchMultimodal one, or null for the classifier (which HF's FLAVA does not have). */
    public static String toHf(String name) {
        if (name.startsWith("classifier.")) return null;
        for (String[] r : INVERSE) {
            Matcher m = Pattern.compile(r[0]).matcher(name);
            if (m.matches()) {
                String hf = m.replaceFirst(r[1]);
                for (String[] inner : INVERSE_INSIDE) {
                    Matcher mi = Pattern.compile(inner[0]).matcher(hf);
                    if (mi.matches()) return mi.replaceFirst(inner[1]);
                }
                return hf;
            }
        }
        throw new IllegalArgumentException("no HF name for " + name);
    }

    /** Tensors a FlavaForPreTraining checkpoint has besides FlavaModel's: ignored on purpose, but for flava.logit_scale (mapped). */
    public static Map<String, HostTensor> pretrainingExtras(int textHidden) {
        Map<String, HostTensor> m = new LinkedHashMap<>();
        m.put("flava.logit_scale", HostTensor.ofFloats(new float[] {2.6592f}));
        long[] pos = new long[40];
        for (int i = 0; i < pos.length; i++) pos[i] = i;
        m.put("flava.text_model.embeddings.position_ids", HostTensor.ofLongs(pos, 1, 40));
        m.put("mlm_head.transform.dense.weight", HostTensor.ofFloats(new float[textHidden * textHidden], textHidden, textHidden));
        m.put("mlm_head.bias", HostTensor.ofFloats(new float[5], 5));
        m.put("mim_head.decoder.bias", HostTensor.ofFloats(new float[5], 5));
        m.put("itm_head.pooler.dense.weight", HostTensor.ofFloats(new float[textHidden * textHidden], textHidden, textHidden));
        m.put("itm_head.seq_relationship.bias", HostTensor.ofFloats(new float[2], 2));
        m.put("mmm_text_head.transform.LayerNorm.weight", HostTensor.ofFloats(new float[textHidden], textHidden));
        m.put("mmm_image_head.decoder.bias", HostTensor.ofFloats(new float[5], 5));
        m.put("image_codebook.blocks.input.weight", HostTensor.ofFloats(new float[8 * 3 * 7 * 7], 8, 3, 7, 7));
        return m;
    }

    /** The fixture's classification checkpoint in HF names (classifier dropped) plus the pretraining extras. */
    public static Map<String, HostTensor> hfTensors(StateDict fixture) {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        fixture.asMap().forEach((name, t) -> {
            String hf = toHf(name);
            if (hf != null) out.put(hf, t);
        });
        out.putAll(pretrainingExtras((int) fixture.get("model.text_encoder.pooler.dense.weight").shape()[0]));
        return out;
    }

    /** The HF config.json (a FlavaConfig) for TorchMultimodal kwargs such as the fixture's {@code config}. */
    public static ObjectNode hfConfig(JsonNode kw) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode c = json.createObjectNode();
        c.putArray("architectures").add("FlavaForPreTraining");
        c.put("model_type", "flava");
        c.put("projection_dim", kw.path("text_and_image_proj_size").asInt(768));
        c.put("hidden_size", 768);
        c.put("initializer_range", 0.02);
        ObjectNode image = c.putObject("image_config");
        image.put("model_type", "flava_image_model");
        image.put("hidden_size", kw.path("image_hidden_size").asInt(768));
        image.put("num_attention_heads", kw.path("image_num_attention_heads").asInt(12));
        image.put("num_hidden_layers", kw.path("image_num_hidden_layers").asInt(12));
        image.put("intermediate_size", kw.path("image_intermediate_size").asInt(3072));
        image.put("image_size", kw.path("image_size").asInt(224));
        image.put("patch_size", kw.path("patch_size").asInt(16));
        image.put("num_channels", 3);
        image.put("layer_norm_eps", 1e-12);
        image.put("hidden_act", "gelu");
        image.put("qkv_bias", true);
        image.put("mask_token", true);
        image.put("vocab_size", 8192);
        ObjectNode text = c.putObject("text_config");
        text.put("model_type", "flava_text_model");
        text.put("hidden_size", kw.path("text_hidden_size").asInt(768));
        text.put("num_attention_heads", kw.path("text_num_attention_heads").asInt(12));
        text.put("num_hidden_layers", kw.path("text_num_hidden_layers").asInt(12));
        text.put("intermediate_size", kw.path("text_intermediate_size").asInt(3072));
        text.put("vocab_size", kw.path("vocab_size").asInt(30522));
        text.put("max_position_embeddings", kw.path("max_position_embeddings").asInt(512));
        text.put("type_vocab_size", 2);
        text.put("pad_token_id", 0);
        text.put("layer_norm_eps", 1e-12);
        text.put("hidden_act", "gelu");
        text.put("qkv_bias", true);
        text.put("position_embedding_type", "absolute");
        ObjectNode mm = c.putObject("multimodal_config");
        mm.put("model_type", "flava_multimodal_model");
        mm.put("hidden_size", kw.path("multimodal_hidden_size").asInt(768));
        mm.put("num_attention_heads", kw.path("multimodal_num_attention_heads").asInt(12));
        mm.put("num_hidden_layers", kw.path("multimodal_num_hidden_layers").asInt(6));
        mm.put("intermediate_size", kw.path("multimodal_intermediate_size").asInt(3072));
        mm.put("layer_norm_eps", 1e-12);
        mm.put("hidden_act", "gelu");
        mm.put("qkv_bias", true);
        mm.put("use_cls_token", true);
        return c;
    }

    /** How the weights are written into an HF model folder. */
    public enum Form { BIN, SAFETENSORS, BIN_2_SHARDS, SAFETENSORS_2_SHARDS }

    /** Writes {@code tensors} into {@code dir} in the given form, with {@code config.json}; returns {@code dir}. */
    public static Path writeFolder(Path dir, Form form, Map<String, HostTensor> tensors, JsonNode config) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(config));
        switch (form) {
            case BIN -> TorchCheckpoints.write(dir.resolve("pytorch_model.bin"), tensors);
            case SAFETENSORS -> SafeTensors.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            case BIN_2_SHARDS -> writeShards(dir, tensors, "pytorch_model", ".bin");
            case SAFETENSORS_2_SHARDS -> writeShards(dir, tensors, "model", ".safetensors");
        }
        return dir;
    }

    /** Two shards as {@code save_pretrained(max_shard_size=...)} names them, and the index. */
    static void writeShards(Path dir, Map<String, HostTensor> tensors, String stem, String ext) throws IOException {
        List<Map.Entry<String, HostTensor>> all = new ArrayList<>(tensors.entrySet());
        ObjectMapper json = new ObjectMapper();
        ObjectNode index = json.createObjectNode();
        long total = 0;
        ObjectNode weightMap = json.createObjectNode();
        for (int s = 0; s < 2; s++) {
            String name = String.format("%s-%05d-of-%05d%s", stem, s + 1, 2, ext);
            Map<String, HostTensor> shard = new LinkedHashMap<>();
            for (Map.Entry<String, HostTensor> e : all.subList(s == 0 ? 0 : all.size() / 2, s == 0 ? all.size() / 2 : all.size())) {
                shard.put(e.getKey(), e.getValue());
                weightMap.put(e.getKey(), name);
                total += e.getValue().numel() * 4;
            }
            if (ext.equals(".bin")) TorchCheckpoints.write(dir.resolve(name), shard);
            else SafeTensors.write(dir.resolve(name), shard, Map.of("format", "pt"));
        }
        index.putObject("metadata").put("total_size", total);
        index.set("weight_map", weightMap);
        Files.writeString(dir.resolve(stem + ext + ".index.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(index));
    }
}
