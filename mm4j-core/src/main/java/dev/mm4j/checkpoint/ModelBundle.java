package dev.mm4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.annotation.JsonSetter;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.Padding;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.flava.FlavaForPreTraining;
import dev.mm4j.flava.FlavaForRetrieval;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Precision;
import dev.mm4j.nn.TorchOps;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A fine-tuned model as a folder anyone can pick up: {@code model.safetensors} (PyTorch parameter
 * names, the FLAVA config in its metadata as {@code flava_model_for_classification} kwargs), {@code answers.txt}
 * (class id = line), and {@code bundle.json} (how inputs were prepared: text length, padding, resize, image
 * normalization, tokenizer; and the precision it was trained in). Every file is written atomically. Evaluation,
 * prediction and serving prepare inputs exactly as training did, and run in the precision it was trained in unless
 * asked otherwise ({@link Precision#choose}).
 */
public final class ModelBundle {
    public static final String WEIGHTS = "model.safetensors";
    public static final String VOCAB = "answers.txt";
    public static final String INFO = "bundle.json";
    public static final String CONFIG_KEY = "flava_config";
    /** {@link Info#format} of a classification bundle (the default) and of a retrieval bundle (no answers). */
    public static final String CLASSIFICATION_FORMAT = "mm4j-flava-classification";
    public static final String RETRIEVAL_FORMAT = "mm4j-flava-retrieval";
    /** A pretrained FLAVA ({@code FLAVAForPreTraining}'s state dict: model, codebook, loss heads). */
    public static final String PRETRAINING_FORMAT = "mm4j-flava-pretraining";

    /** How a question and an image become model inputs. */
    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public static final class Info {
        public String format = CLASSIFICATION_FORMAT;
        public int maxLength = 512;
        /** The training run's padding; DYNAMIC also means the multimodal encoder masks text padding. */
        public Padding padding = Padding.FIXED;
        public boolean antialias;
        /** Image normalization after the resize: none, clip or imagenet ({@link ImageTransform.Normalize}). */
        public String normalize = "none";
        /** tokenizer.json / vocab.txt copied into the bundle, or null for the bundled bert-base-uncased. */
        public String tokenizer;
        public long trainedSteps;
        /**
         * What the classification bundle was trained for: null or {@code vqa} (answers to questions about images), or
         * {@code classification} (labelled text, images or both; its answers file lists the class names).
         */
        public String task;
        /** For {@code task: classification}: the encoder the head reads, image, text or mm. */
        public String requiredEmbedding;
        /**
         * The precision the model was trained in, resolved: fp32 or bf16 ({@link Precision#code()}); null in bundles
         * written before it was recorded (they were trained in fp32).
         */
        public String precision;

        /** {@link #precision} as a {@link Precision}; null when the bundle records none. */
        public Precision trainedPrecision() {
            return precision == null ? null : Precision.valueOf(precision.toUpperCase(java.util.Locale.ROOT));
        }

        /** Bundles written before {@code padding} existed said {@code dynamic_padding: true|false}. */
        @JsonSetter("dynamic_padding")
        void setDynamicPadding(boolean dynamic) {
            padding = dynamic ? Padding.DYNAMIC : Padding.FIXED;
        }
    }

    private static final Logger LOG = LoggerFactory.getLogger(ModelBundle.class);

    private ModelBundle() {}

    /** Weights (with config) of {@code model} as a safetensors file: PyTorch names, float32. */
    public static void writeWeights(Path file, FlavaForClassification model) throws IOException {
        writeWeights(file, model, model.config());
    }

    /**
     * Weights of any FLAVA module (its parameter names) with {@code config} in the metadata: TorchMultimodal's kwargs
     * as they are ({@link FlavaConfig#toKwargsJson}); for a {@link FlavaForPreTraining} its pretraining kwargs, the
     * codebook's sizes and the loss weights included ({@link FlavaConfig#toPretrainingKwargsJson}), so that
     * {@link #loadPretraining} rebuilds it exactly.
     */
    public static void writeWeights(Path file, Module model, FlavaConfig config) throws IOException {
        Map<String, NDArray> arrays = new LinkedHashMap<>();
        model.stateDictParameters().forEach((n, p) -> arrays.put(n, p.array())); // tied weights under each name
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put(CONFIG_KEY, model instanceof FlavaForPreTraining ? config.toPretrainingKwargsJson()
                : config.toKwargsJson());
        SafeTensors.writeNDArrays(file, arrays, meta);
    }

    /** Writes the bundle folder; {@code info}'s precision is the model's ({@link Module#precision()}). */
    public static void write(Path dir, FlavaForClassification model, AnswerVocab vocab, Info info, Path tokenizerFile)
            throws IOException {
        Files.createDirectories(dir);
        info.precision = model.precision().code();
        writeWeights(dir.resolve(WEIGHTS), model);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < vocab.size(); i++) {
            sb.append(vocab.answer(i)).append('\n');
        }
        AtomicFiles.writeString(dir.resolve(VOCAB), sb.toString());
        writeInfo(dir, info, tokenizerFile);
    }

    /**
     * Writes a retrieval bundle: {@code model.safetensors} with {@code model.*} and
     * {@code loss.contrastive_loss.logit_scale}, {@code bundle.json} of format {@link #RETRIEVAL_FORMAT}, no answers.
     */
    public static void writeRetrieval(Path dir, FlavaForRetrieval model, Info info, Path tokenizerFile) throws IOException {
        Files.createDirectories(dir);
        writeWeights(dir.resolve(WEIGHTS), model, model.config());
        info.format = RETRIEVAL_FORMAT;
        info.precision = model.precision().code();
        writeInfo(dir, info, tokenizerFile);
    }

    /**
     * Writes a pretraining bundle: {@code model.safetensors} with {@code FLAVAForPreTraining}'s names (what
     * {@code finetune --checkpoint DIR} starts any task from, and what pretraining loads back strictly), {@code
     * bundle.json} of format {@link #PRETRAINING_FORMAT}.
     */
    public static void writePretraining(Path dir, FlavaForPreTraining model, Info info, Path tokenizerFile)
            throws IOException {
        Files.createDirectories(dir);
        writeWeights(dir.resolve(WEIGHTS), model, model.config());
        info.format = PRETRAINING_FORMAT;
        info.precision = model.precision().code();
        writeInfo(dir, info, tokenizerFile);
    }

    private static void writeInfo(Path dir, Info info, Path tokenizerFile) throws IOException {
        if (tokenizerFile != null) {
            String name = tokenizerFile.getFileName().toString();
            AtomicFiles.write(dir.resolve(name), out -> Files.copy(tokenizerFile, out));
            info.tokenizer = name;
        }
        AtomicFiles.writeString(dir.resolve(INFO), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(info));
    }

    /** A loaded bundle: model (eval mode) on {@code manager}, vocabulary, tokenizer, transform. */
    public record Loaded(FlavaForClassification model, AnswerVocab vocab, QuestionTokenizer tokenizer,
            ImageTransform transform, Info info) implements AutoCloseable {
        /** The question's token ids as the model was trained: padded to max length, or unpadded for dynamic padding. */
        public long[] encode(String question) {
            return info.padding == Padding.DYNAMIC ? tokenizer.encode(question)
                    : tokenizer.encodePadded(question, info.maxLength);
        }

        @Override
        public void close() {
            tokenizer.close();
        }
    }

    /**
     * Reads the config from the weights' metadata, builds the model and loads it strictly; it runs in the precision
     * it was trained in ({@link Precision#choose}, logged).
     */
    public static Loaded load(Path dir, NDManager manager) throws IOException {
        return load(dir, manager, null);
    }

    /**
     * As {@link #load(Path, NDManager)} with the model's matrix products in {@code precision} (fp32, bf16 or auto;
     * null: the precision it was trained in, or fp32 where bf16 would be emulated). The choice is logged.
     */
    public static Loaded load(Path dir, NDManager manager, String precision) throws IOException {
        Path weights = weightsFile(dir);
        if (!isBundle(dir)) {
            throw new IOException(dir + " is not a model bundle (no " + INFO + ", and " + weights.getFileName()
                    + " has no mm4j FLAVA config): a checkpoint, e.g. a Hugging Face folder? Fine-tune it first "
                    + "(finetune --checkpoint " + dir + ") or embed with it (classify, index, search)");
        }
        Path folder = weights.toAbsolutePath().getParent();
        Info info = info(folder);
        if (RETRIEVAL_FORMAT.equals(info.format)) {
            throw new IOException(dir + " is a retrieval model (no answers): use it with classify, index or search");
        }
        if (PRETRAINING_FORMAT.equals(info.format)) {
            throw new IOException(dir + " is a pretrained model (no answers): fine-tune it first (finetune --checkpoint "
                    + dir + "), or load it with ModelBundle.loadPretraining");
        }
        FlavaForClassification model;
        try (StateDict sd = SafeTensors.read(weights)) {
            FlavaConfig config = config(sd, weights);
            config.maskTextPaddingInMultimodal = info.padding.masksTextInMultimodal();
            model = FlavaForClassification.create(config, manager);
            StateDictLoader.load(model, sd, true, weights.toString());
        }
        model.setTraining(false);
        Precision.Choice choice = Precision.choose(precision, info.trainedPrecision(), manager.getDevice());
        model.setPrecision(choice.precision());
        if (choice.precision() == Precision.BF16) { // an inference model: its weights' bf16 copies are made once
            TorchOps.freeze(model.namedParameters().values().stream().map(Parameter::array).toList());
        }
        LOG.info("{}: {}", folder, choice);
        AnswerVocab vocab = AnswerVocab.load(folder.resolve(VOCAB));
        if (vocab.size() != model.config().numClasses) {
            throw new IOException(folder.resolve(VOCAB) + " has " + vocab.size() + " answers but the model has "
                    + model.config().numClasses + " classes");
        }
        return new Loaded(model, vocab, tokenizer(folder, info), transform(model.config(), info), info);
    }

    /** A bundle's embedding model: FLAVA with its projections and temperature, tokenizer and transform. */
    public record Retrieval(FlavaForRetrieval model, QuestionTokenizer tokenizer, ImageTransform transform, Info info)
            implements AutoCloseable {
        @Override
        public void close() {
            tokenizer.close();
        }
    }

    /**
     * The embedding model of any bundle: a retrieval bundle loads strictly; a classification bundle loads
     * everything but its classifier, and the contrastive temperature (which it does not have) starts at ln(1/0.07).
     */
    public static Retrieval loadRetrieval(Path dir, NDManager manager) throws IOException {
        Path weights = weightsFile(dir);
        Path folder = weights.toAbsolutePath().getParent();
        Info info = info(folder);
        boolean retrieval = RETRIEVAL_FORMAT.equals(info.format);
        FlavaForRetrieval model;
        try (StateDict sd = SafeTensors.read(weights)) {
            model = FlavaForRetrieval.create(config(sd, weights), manager);
            StateDictLoader.Report r = StateDictLoader.load(model, sd, retrieval, weights.toString());
            List<String> missing = r.missing().stream().filter(n -> !n.startsWith("loss.")).toList();
            if (!missing.isEmpty()) {
                throw new IOException(weights + " lacks " + missing.size() + " tensors of the model, e.g. " + missing.get(0));
            }
        }
        model.setTraining(false);
        return new Retrieval(model, tokenizer(folder, info), transform(model.config(), info), info);
    }

    /**
     * A pretraining bundle's model ({@link #writePretraining}, or a pretraining run's checkpoint): {@link
     * FlavaForPreTraining} built from the config in the weights' metadata (codebook and loss weights included) and
     * loaded strictly (0 missing, 0 unexpected, or an error naming them), in eval mode, on {@code manager}, in the
     * precision it was trained in unless that would be emulated ({@link Precision#choose}, logged).
     */
    public static FlavaForPreTraining loadPretraining(Path dir, NDManager manager) throws IOException {
        Path weights = weightsFile(dir);
        Path folder = weights.toAbsolutePath().getParent();
        Info info = info(folder);
        if (Files.isRegularFile(folder.resolve(INFO)) && !PRETRAINING_FORMAT.equals(info.format)) {
            throw new IOException(dir + " is a " + info.format + " bundle, not a pretrained model ("
                    + PRETRAINING_FORMAT + ")");
        }
        FlavaConfig config;
        try (StateDict sd = SafeTensors.read(weights)) {
            config = config(sd, weights);
        }
        config.maskTextPaddingInMultimodal = info.padding.masksTextInMultimodal();
        FlavaForPreTraining model = FlavaForPreTraining.create(config, manager);
        PretrainingCheckpoint.load(model, weights, null);
        model.setTraining(false);
        Precision.Choice choice = Precision.choose(null, info.trainedPrecision(), manager.getDevice());
        model.setPrecision(choice.precision());
        LOG.info("{}: {}", folder, choice);
        return model;
    }

    /**
     * {@code base} with the config of the pretraining bundle (or pretraining run checkpoint) at {@code path} set over
     * it; null when {@code path} is no such thing. A pretraining bundle is one whose {@code bundle.json} says
     * {@link #PRETRAINING_FORMAT}, or whose weights' config carries the pretraining keys (only a pretraining model's
     * does: {@link #writeWeights}).
     */
    public static FlavaConfig pretrainingConfig(Path path, FlavaConfig base) throws IOException {
        if (!isBundle(path)) {
            return null;
        }
        Path weights = weightsFile(path);
        boolean pretrainingFormat = PRETRAINING_FORMAT.equals(info(weights.toAbsolutePath().getParent()).format);
        try (StateDict sd = SafeTensors.read(weights)) {
            String cfg = sd.metadata().get(CONFIG_KEY);
            if (cfg == null) {
                return null; // a folder's bundle.json without mm4j weights: whoever loads it says what is wrong
            }
            Map<String, Object> kwargs = new ObjectMapper().readValue(cfg, new TypeReference<LinkedHashMap<String, Object>>() {});
            if (!pretrainingFormat && !kwargs.containsKey("codebook_image_size")) {
                return null;
            }
            try {
                return FlavaConfig.withKwargs(base, kwargs);
            } catch (IOException | IllegalArgumentException e) {
                throw new IOException(weights + ": its '" + CONFIG_KEY + "' metadata: " + e.getMessage(), e);
            }
        }
    }

    /** The FLAVA config in the weights' metadata. */
    private static FlavaConfig config(StateDict sd, Path weights) throws IOException {
        String cfg = sd.metadata().get(CONFIG_KEY);
        if (cfg == null) {
            throw new IOException(weights + " has no '" + CONFIG_KEY + "' metadata: not written by mm4j");
        }
        return FlavaConfig.fromJson(cfg);
    }

    private static Path weightsFile(Path dir) throws IOException {
        Path weights = Files.isDirectory(dir) ? dir.resolve(WEIGHTS) : dir;
        if (!Files.exists(weights)) {
            throw new IOException(dir + " is not a model bundle: " + weights + " is missing (write one with finetune)");
        }
        return weights;
    }

    /**
     * Whether {@code path} is a bundle: a folder holding {@code bundle.json}, or a safetensors file (or a folder's
     * {@code model.safetensors}) whose metadata carries the FLAVA config mm4j writes ({@value #CONFIG_KEY}). A
     * Hugging Face model folder ({@code config.json} and {@code model.safetensors}, as transformers' {@code
     * save_pretrained} writes it) is not one: it has neither.
     */
    public static boolean isBundle(Path path) {
        if (Files.isDirectory(path) && Files.isRegularFile(path.resolve(INFO))) {
            return true;
        }
        Path weights = Files.isDirectory(path) ? path.resolve(WEIGHTS) : path;
        if (!Files.isRegularFile(weights) || !weights.getFileName().toString().endsWith(".safetensors")) {
            return false;
        }
        try (StateDict sd = SafeTensors.read(weights)) { // the header only: the data is mapped, not read
            return sd.metadata().containsKey(CONFIG_KEY);
        } catch (IOException e) {
            return false; // not readable as a bundle's weights: whoever opens it as a checkpoint says what is wrong
        }
    }

    /** Whether {@code path} is a retrieval bundle ({@link #writeRetrieval}: embeddings, no answers). */
    public static boolean isRetrieval(Path path) throws IOException {
        return isBundle(path) && RETRIEVAL_FORMAT.equals(info(weightsFile(path).toAbsolutePath().getParent()).format);
    }

    private static Info info(Path folder) throws IOException {
        Path file = folder.resolve(INFO);
        if (!Files.exists(file)) {
            return new Info();
        }
        Info info = new ObjectMapper().readValue(file.toFile(), Info.class);
        if (info.precision != null && !List.of("fp32", "bf16").contains(info.precision)) {
            throw new IOException(file + ": precision '" + info.precision + "' is not fp32 or bf16");
        }
        return info;
    }

    private static QuestionTokenizer tokenizer(Path folder, Info info) throws IOException {
        return info.tokenizer == null ? QuestionTokenizer.bertBaseUncased(info.maxLength)
                : QuestionTokenizer.load(folder.resolve(info.tokenizer), info.maxLength);
    }

    /** The image transform a bundle's model was trained with. */
    public static ImageTransform transform(FlavaConfig config, Info info) {
        return new ImageTransform(config.imageSize, config.imageSize, info.antialias, ImageTransform.Normalize.parse(info.normalize));
    }
}
