package dev.mm4j.flava;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.mm4j.nn.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Every size and setting of FLAVA for classification, with FLAVA's full-size defaults. Keys are
 * TorchMultimodal's argument names ({@code flava_model_for_classification(**kwargs)}), so the kwargs a
 * Python user passed work unchanged as a YAML or JSON file.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public final class FlavaConfig {
    /** Classes of TextVQA's answer vocabulary ({@code answers_textvqa_more_than_1.txt}), the tutorial's head. */
    public static final int TEXTVQA_CLASSES = 3997;

    // image encoder
    public int imageHiddenSize = 768;
    public int imageNumAttentionHeads = 12;
    public int imageNumHiddenLayers = 12;
    public double imageDropout = 0.0;
    public int imageIntermediateSize = 3072;
    public double imageLayerNormEps = 1e-12;
    public boolean useImageMasking = true;
    public int imageSize = 224;
    public int patchSize = 16;
    public int numChannels = 3;
    // text encoder
    public int textHiddenSize = 768;
    public int textNumAttentionHeads = 12;
    public int textNumHiddenLayers = 12;
    public double textDropout = 0.0;
    public int textIntermediateSize = 3072;
    public double textLayerNormEps = 1e-12;
    public int vocabSize = 30522;
    public int padTokenId = 0;
    public int typeVocabSize = 2;
    public int maxPositionEmbeddings = 512;
    // multimodal encoder
    public int multimodalHiddenSize = 768;
    public int multimodalNumAttentionHeads = 12;
    public int multimodalNumHiddenLayers = 6;
    public double multimodalDropout = 0.0;
    public int multimodalIntermediateSize = 3072;
    public double multimodalLayerNormEps = 1e-12;
    public int textAndImageProjSize = 768;
    // classification head
    public int numClasses = TEXTVQA_CLASSES;
    /** Input width of the head; null means {@code multimodal_hidden_size}. */
    public Integer classifierInDim = null;

    @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY)
    public List<Integer> classifierHiddenSizes = new ArrayList<>(List.of(768));

    public double classifierDropout = 0.5;
    public double initializerRange = 0.02;

    // pretraining (FlavaForPreTraining): the codebook and FLAVAPretrainingLoss; not classification kwargs
    /** Side of the codebook's input image ({@code flava_model_for_pretraining(codebook_image_size=112)}). */
    public int codebookImageSize = 112;
    /** Tokens of the image codebook (DALL-E's 8192): the MIM heads' output width and the codebook's. */
    public int imageVocabSize = 8192;
    /**
     * {@code DalleEncoder(group_count, n_hid, n_blk_per_group)}: DALL-E's 4, 256, 2 (the encoder always has four
     * groups; {@code group_count} only scales the residual paths' gain).
     */
    public int codebookGroupCount = 4;
    @JsonProperty("codebook_n_hid")
    public int codebookNHid = 256;

    @JsonProperty("codebook_n_blk_per_group")
    public int codebookNBlkPerGroup = 2;

    /** {@code FLAVAPretrainingLoss}'s loss weights (a loss with weight 0 is not computed) and its heads' norm eps. */
    public double mlmWeight = 1.0;
    public double mimWeight = 1.0;
    public double contrastiveLossWeight = 1.0;
    public double mmmImageLossWeight = 1.0;
    public double mmmTextLossWeight = 1.0;
    public double itmLossWeight = 1.0;
    public double pretrainingLayerNormEps = 1e-5;

    /**
     * The pretraining keys above: no {@code flava_model_for_classification} kwarg, left out of {@link #toKwargsJson},
     * kept by {@link #toPretrainingKwargsJson}.
     */
    static final List<String> PRETRAINING_KEYS = List.of("codebook_image_size", "image_vocab_size",
            "codebook_group_count", "codebook_n_hid", "codebook_n_blk_per_group", "mlm_weight", "mim_weight",
            "contrastive_loss_weight", "mmm_image_loss_weight", "mmm_text_loss_weight", "itm_loss_weight",
            "pretraining_layer_norm_eps");

    /** The classification head's keys ({@code flava_model_for_classification}'s own): no pretraining model's kwargs. */
    static final List<String> CLASSIFIER_KEYS = List.of("num_classes", "classifier_in_dim", "classifier_hidden_sizes",
            "classifier_dropout");

    /**
     * Whether the multimodal encoder ignores text padding tokens. Off reproduces the reference, whose
     * multimodal encoder attends to padding (so its numbers depend on the padded length); on makes the
     * output independent of it. Not a TorchMultimodal kwarg: it follows from the run's {@code padding}
     * ({@code Padding.masksTextInMultimodal}), and a model bundle carries it as its padding.
     */
    @JsonIgnore
    public boolean maskTextPaddingInMultimodal;

    /**
     * Whether training recomputes each transformer layer in the backward pass instead of keeping its
     * activations ({@code nn.ActivationCheckpointing}): much less memory for about one more forward pass of
     * the layers; outputs and gradients are the same. Off, the training step keeps every layer's activations (in bf16
     * without weight copies of their own: {@code nn.SharedBf16Copies}); a backward pass of the whole graph at once in
     * bf16 still recomputes the encoders whose bfloat16 weight copies would outweigh what bfloat16 saves on the
     * model's activations (few tokens a batch), so that bf16 never needs more memory than float32
     * ({@code nn.ActivationCheckpointing#plan}). Not a TorchMultimodal kwarg: it
     * follows from the run's {@code activation_checkpointing} setting and is not part of a saved model.
     */
    @JsonIgnore
    public boolean activationCheckpointing;

    /**
     * Whether bf16 keeps every layer's activations instead of recomputing, by itself, the encoders whose bfloat16
     * weight copies would outweigh what it saves on the model's activations ({@code nn.ActivationCheckpointing#plan}):
     * faster, for more memory than float32 may need. The training step records the layers layer by layer, where the
     * kept layers share their weight copies and bf16 recomputes nothing by itself anyway: the setting then changes
     * nothing; it decides for a backward pass of the whole graph at once. Not a TorchMultimodal kwarg: it follows from
     * the run's {@code bf16_keep_activations} setting and is not part of a saved model.
     */
    @JsonIgnore
    public boolean bf16KeepActivations;

    /**
     * The arithmetic of the matrix products ({@code nn.Precision}: float32, or bfloat16 with float32 master
     * weights). Not a TorchMultimodal kwarg: it follows from the run's resolved {@code precision} setting and is
     * not part of a saved model's weights (they stay float32).
     */
    @JsonIgnore
    public Precision precision = Precision.FP32;

    /** FLAVA's full size (the defaults) with {@code numClasses} answers. */
    public static FlavaConfig fullSize(int numClasses) {
        FlavaConfig c = new FlavaConfig();
        c.numClasses = numClasses;
        return c;
    }

    public int classifierInputDim() {
        return classifierInDim != null ? classifierInDim : multimodalHiddenSize;
    }

    /** FLAVA's full size for pretraining: {@code flava_model_for_pretraining()}'s defaults. */
    public static FlavaConfig fullSizePretraining() {
        return new FlavaConfig();
    }

    /** Side of the codebook's token grid: its input side over 8 (three 2x poolings). */
    public int codebookGridSize() {
        return codebookImageSize / 8;
    }

    public int numPatches() {
        return (imageSize / patchSize) * (imageSize / patchSize);
    }

    /** Checks the combination; throws IllegalArgumentException naming the offending key. */
    public FlavaConfig validate() {
        require(imageHiddenSize % imageNumAttentionHeads == 0, "image_hidden_size must be divisible by image_num_attention_heads");
        require(textHiddenSize % textNumAttentionHeads == 0, "text_hidden_size must be divisible by text_num_attention_heads");
        require(multimodalHiddenSize % multimodalNumAttentionHeads == 0,
                "multimodal_hidden_size must be divisible by multimodal_num_attention_heads");
        require(imageSize % patchSize == 0, "image_size must be a multiple of patch_size");
        require(numClasses > 0, "num_classes must be positive");
        require(imageDropout == 0 && textDropout == 0 && multimodalDropout == 0,
                "encoder dropout (image_dropout/text_dropout/multimodal_dropout) other than 0 is not supported yet");
        require(classifierDropout >= 0 && classifierDropout < 1, "classifier_dropout must be in [0, 1)");
        require(codebookImageSize > 0 && codebookImageSize % 8 == 0, "codebook_image_size must be a positive multiple of 8");
        require(imageVocabSize > 0, "image_vocab_size must be positive");
        require(codebookGroupCount > 0, "codebook_group_count must be positive");
        require(codebookNHid > 0 && codebookNHid % 4 == 0, "codebook_n_hid must be a positive multiple of 4");
        require(codebookNBlkPerGroup > 0, "codebook_n_blk_per_group must be positive");
        return this;
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("invalid FLAVA config: " + message);
        }
    }

    private static ObjectMapper mapper(boolean yaml) {
        ObjectMapper m = yaml ? new ObjectMapper(new YAMLFactory()) : new ObjectMapper();
        return m.enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    }

    /** Reads a YAML or JSON file of TorchMultimodal kwargs; keys not given keep the full-size default. */
    public static FlavaConfig load(Path file) throws IOException {
        String name = file.getFileName().toString().toLowerCase();
        boolean yaml = name.endsWith(".yaml") || name.endsWith(".yml");
        try {
            FlavaConfig c = mapper(yaml).readValue(Files.readAllBytes(file), FlavaConfig.class);
            return (c == null ? new FlavaConfig() : c).validate();
        } catch (IOException | IllegalArgumentException e) {
            throw new IOException("cannot read FLAVA config " + file + ": " + e.getMessage(), e);
        }
    }

    /** Parses a JSON object of kwargs (e.g. the fixture's {@code config}). */
    public static FlavaConfig fromJson(String json) throws IOException {
        return mapper(false).readValue(json, FlavaConfig.class).validate();
    }

    /**
     * {@code base} with the given kwargs (TorchMultimodal names) set over it; unknown keys are an error naming
     * them. {@code base} is not changed.
     */
    public static FlavaConfig withKwargs(FlavaConfig base, Map<String, ?> kwargs) throws IOException {
        FlavaConfig c = base.copy();
        if (kwargs != null && !kwargs.isEmpty()) {
            ObjectMapper m = mapper(false);
            m.readerForUpdating(c).readValue(m.writeValueAsString(kwargs));
        }
        return c.validate();
    }

    /**
     * This config as the kwargs of TorchMultimodal's {@code flava_model_for_classification(**kwargs)}: every
     * size and setting it takes, {@code classifier_in_dim} as a number (its Python default is 768 whatever the
     * multimodal width), without {@code initializer_range} (which only our initialization reads). What the model
     * bundle stores; {@link #fromJson} reads it and also our full form.
     */
    public String toKwargsJson() {
        return kwargsJson(false);
    }

    /**
     * This config as a pretraining model's kwargs: those of TorchMultimodal's {@code flava_model_for_pretraining(
     * codebook_image_size, **flava_model_kwargs)} and the other pretraining keys ({@link #PRETRAINING_KEYS}: the
     * codebook's sizes, the loss weights and the heads' eps), so that {@link #fromJson} rebuilds
     * {@code FlavaForPreTraining} exactly; without the classification head's keys ({@link #CLASSIFIER_KEYS}) and
     * {@code initializer_range}. What a pretraining bundle stores.
     */
    public String toPretrainingKwargsJson() {
        return kwargsJson(true);
    }

    private String kwargsJson(boolean pretraining) {
        try {
            ObjectMapper m = mapper(false);
            com.fasterxml.jackson.databind.node.ObjectNode o = m.valueToTree(this);
            o.remove("initializer_range");
            (pretraining ? CLASSIFIER_KEYS : PRETRAINING_KEYS).forEach(o::remove);
            if (!pretraining) {
                o.put("classifier_in_dim", classifierInputDim());
            }
            return m.writerWithDefaultPrettyPrinter().writeValueAsString(o);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public String toJson() {
        try {
            return mapper(false).writerWithDefaultPrettyPrinter().writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public FlavaConfig copy() {
        try {
            FlavaConfig c = fromJson(toJson());
            c.maskTextPaddingInMultimodal = maskTextPaddingInMultimodal;
            c.activationCheckpointing = activationCheckpointing;
            c.bf16KeepActivations = bf16KeepActivations;
            c.precision = precision;
            return c;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
