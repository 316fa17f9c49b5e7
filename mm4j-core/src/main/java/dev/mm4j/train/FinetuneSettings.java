package dev.mm4j.train;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.mm4j.data.ImageTransform;
import dev.mm4j.data.Padding;
import dev.mm4j.download.Sources;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.util.FileTrees;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Everything a fine-tuning run is told: data, model, optimization, schedule and outputs. Read from a
 * YAML file (snake_case keys, as printed and saved by every run), then overridden from the command line.
 * {@link #preset} gives the named starting points.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public final class FinetuneSettings {
    /**
     * classification (the tutorial: FLAVA + MLP head on TextVQA answers, {@link Finetuner}) or retrieval (contrastive
     * image-text training of the encoders and projections on captions, search.RetrievalFinetuner) or pretraining
     * (FLAVA's pretraining objectives over a mix of {@link #pretrainingSources}, {@link Pretrainer}).
     */
    public String task = "classification";
    /**
     * For labelled data beyond VQA (text, image or image + text, {@code data.LabelledExamples}): the encoder the
     * classification head reads, image, text or mm (TorchMultimodal's {@code required_embedding}); null decides it from
     * the data (text -> text, image -> image, both -> mm).
     */
    public String requiredEmbedding;

    // pretraining (task: pretraining)
    /**
     * The sources pretraining mixes, as TorchMultimodal's {@code datasets.selected}: each {kind: pairs|text|image,
     * path, ratio}. Pairs (a caption manifest / folder retrieval reads) train contrastive + ITM + MMM, texts (.txt /
     * .jsonl) MLM, images (a folder) MIM; a source is drawn for a share ratio / sum(ratios) of the steps.
     */
    public List<PretrainingSourceSpec> pretrainingSources = List.of();
    /** Share of pair samples whose caption is replaced by another sample's (ITM negatives; VLDataModule's 0.1). */
    public double itmProbability = 0.1;
    /** BERT masking probability of text and caption tokens (0.15). */
    public double mlmProbability = 0.15;
    /**
     * Patches masked per image (BEiT block masking); null: TorchMultimodal's 75 of 196 patches scaled to the model's
     * patch grid (and its minimum block of 16 likewise).
     */
    public Integer mimMaskedPatches;
    /** Longest pair caption in tokens (VLTransform pads to 77). */
    public int pairsMaxLength = 77;

    /** One pretraining source: what it holds, where, and how often it is drawn. */
    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public static final class PretrainingSourceSpec {
        /** pairs (also vl), text or image. */
        public String kind;
        /** A caption manifest / folder (pairs), a .txt / .jsonl file (text), an image folder (image). */
        public String path;
        /** Sampling ratio (> 0); 1 by default. */
        public double ratio = 1.0;
        /** For pairs: the split of a folder (train). */
        public String split = "train";

        public PretrainingSourceSpec() {}

        public PretrainingSourceSpec(String kind, String path, double ratio) {
            this.kind = kind;
            this.path = path;
            this.ratio = ratio;
        }

        /**
         * {@code PATH[:RATIO]} as the CLI's {@code --pairs/--texts/--images} take it (a suffix after the last colon that
         * is a number is the ratio).
         */
        public static PretrainingSourceSpec parse(String kind, String spec) {
            int colon = spec.lastIndexOf(':');
            if (colon > 0) {
                try {
                    double r = Double.parseDouble(spec.substring(colon + 1));
                    return new PretrainingSourceSpec(kind, spec.substring(0, colon), r);
                } catch (NumberFormatException e) {
                    // no ratio: the colon is part of the path
                }
            }
            return new PretrainingSourceSpec(kind, spec, 1.0);
        }
    }

    // data
    /** Dataset path: official JSON / folder, or Hugging Face parquet file(s) / folder. */
    public String data;
    public String trainSplit = "train";
    /** Validation split (null or "none": no validation). */
    public String valSplit = "val";
    /**
     * Answer vocabulary (one answer per line); default {@code <data>/answers.txt} when present. {@code build}: built
     * from the training split's answers (those given at least {@code vocab_min_count} times) into OUT/answers.txt.
     */
    public String vocab;
    /** With {@code vocab: build}, how often an answer must be given in the training split to become a class. */
    public int vocabMinCount = 1;
    /** tokenizer.json or vocab.txt; default: the Hugging Face checkpoint folder's, else the bundled bert-base-uncased. */
    public String tokenizer;
    public int maxLength = 512;
    /** fixed (pad to max_length, the tutorial) or dynamic (pad to the longest question, padding masked). */
    public Padding padding = Padding.FIXED;
    public boolean antialias = false;
    /**
     * Image normalization after the resize: none (the tutorial), clip (the mean/std FLAVA was pretrained with) or
     * imagenet (TorchMultimodal's fine-tuning example). Stored in the model bundle for evaluate/predict.
     */
    public String normalize = "none";
    /** Pillow's decompression-bomb rule: warn above this many pixels, skip the record above twice that (0 = no limit). */
    public long maxImagePixels = ImageTransform.DEFAULT_MAX_IMAGE_PIXELS;
    public boolean shuffle = false;
    public int loaderThreads = 1;
    /** Use at most this many training / validation samples (0 = all). */
    public int trainLimit = 0;
    public int valLimit = 0;

    // model
    /**
     * Pretrained checkpoint, loaded non-strictly: a path (file, *.index.json, Hugging Face model folder), an http(s)
     * URL (cached), or hf:ORG/NAME[@REVISION] (a hub model repository); null / "none" for random init.
     */
    public String checkpoint;
    /** FLAVA kwargs (TorchMultimodal names); num_classes defaults to the vocabulary size. */
    public Map<String, Object> model;

    // optimization
    public int epochs = 1;
    /** Stop after this many optimizer steps (0 = run the epochs). */
    public long maxSteps = 0;
    public int batchSize = 2;
    public int gradAccum = 1;
    public double lr = 1e-3;

    @JsonFormat(shape = JsonFormat.Shape.ARRAY)
    public List<Double> betas = List.of(0.9, 0.999);

    public double eps = 1e-8;
    public double weightDecay = 0.01;
    /** constant, linear or cosine (after linear warmup). */
    public String schedule = "constant";
    public long warmupSteps = 0;
    /** Clip the global gradient norm to this (0 = off). */
    public double maxGradNorm = 0;
    /** Train mode (classifier dropout active), as in the tutorial. */
    public boolean dropout = true;
    /**
     * Recompute each transformer layer in the backward pass instead of keeping its activations: much less
     * memory (room for larger batches) for about one more forward pass of the layers; same numbers.
     */
    public boolean activationCheckpointing = false;
    /**
     * bf16 keeps every layer's activations: without it (the default) bf16 recomputes, by itself, the layers whose
     * bfloat16 weight copies would outweigh what it saves on their activations, so that it needs no more memory than
     * fp32; with it no layer is recomputed unless {@code activation_checkpointing} asks: the fastest bf16 step, as
     * {@code torch.autocast} runs it, for more memory (e.g. FLAVA pretraining at batch 2: 2.74 s and 6.12 GB
     * against 3.08 s and 5.41 GB; README, the pretraining step).
     */
    public boolean bf16KeepActivations = false;
    /**
     * The matrix products' arithmetic: fp32, bf16 (bfloat16 products, float32 master weights, as
     * {@code torch.autocast}) or auto (bf16 where the CPU has avx512_bf16/AMX or on a GPU, else fp32).
     */
    public String precision = "fp32";
    public long seed = 0;
    public int threads = 0;
    public String device;

    // outputs
    public String out = "runs/finetune";
    public int logEvery = 1;
    /** Validate every N steps (0 = only at the end). */
    public long evalEvery = 0;
    /** Checkpoint every N steps (0 = only at the end). */
    public long checkpointEvery = 0;
    public int keepLast = 2;
    /** Print "Loss at step i = x" per step, as the tutorial does. */
    public boolean printLoss = true;

    /** Named starting points: tutorial, torchmultimodal, demo, demo-retrieval. */
    public static FinetuneSettings preset(String name) {
        if (name.equals("demo-pretraining")) {
            // FLAVA's pretraining objectives on the demo's small model (demo-model.yaml with a small frozen codebook):
            // the demo's optimizer and schedule ('mm4j demo --task pretraining'; README, Pretraining)
            FinetuneSettings s = preset("demo");
            s.task = "pretraining";
            s.model = demoPretrainingModel();
            s.maxSteps = 600;
            s.batchSize = 32;
            s.warmupSteps = 50;
            s.evalEvery = 0;
            s.checkpointEvery = 200;
            s.logEvery = 20;
            s.threads = 1; // as the VQA demo: deterministic, and on a busy machine 2 threads lost more than they gained
            s.loaderThreads = 2;
            s.pairsMaxLength = 32;
            s.valSplit = "none";
            return s;
        }
        if (name.equals("demo-retrieval")) {
            // contrastive training of the demo's small model from scratch on the demo's captions: the demo's optimizer,
            // schedule, batch 96 and 1200 steps (about 6.5 minutes on 2 busy cores, R@1 99% on the held-out signs;
            // README, Search); libtorch on every core, as retrieval training decodes its images once up front instead
            // of in a loader thread
            FinetuneSettings s = preset("demo");
            s.task = "retrieval";
            s.maxSteps = 1200;
            s.threads = 0;
            s.logEvery = 100;
            return s;
        }
        FinetuneSettings s = new FinetuneSettings();
        switch (name) {
            case "tutorial" -> {
                // the TorchMultimodal tutorial: batch 2, AdamW(lr=1e-3) defaults, train mode, file order, 3 steps
                s.maxSteps = 3;
                s.valSplit = "none";
                s.checkpoint = DEFAULT_CHECKPOINT;
            }
            case "torchmultimodal" -> {
                // TorchMultimodal's own FLAVA fine-tuning defaults
                s.lr = 1e-5;
                s.betas = List.of(0.9, 0.98);
                s.eps = 1e-6;
                s.weightDecay = 0.1;
                s.schedule = "linear";
                s.warmupSteps = 1000;
                s.maxGradNorm = 1.0;
                s.batchSize = 8;
                s.padding = Padding.DYNAMIC;
                s.shuffle = true;
                s.normalize = "imagenet";
                s.checkpoint = DEFAULT_CHECKPOINT;
                s.precision = "auto";
            }
            case "qnli", "rendered_sst2" -> {
                // TorchMultimodal's FLAVA example, configs/finetuning/{qnli,rendered_sst2}.yaml: the published FLAVA
                // checkpoint, batch 32, AdamW with the file's lr / betas / eps / weight decay, cosine schedule with
                // warmup (examples/flava/model.py get_cosine_schedule_with_warmup), the file's max_steps; labelled data
                // in GLUE's TSV layout (QNLI: question/sentence, text head) or the ImageFolder layout (RenderedSST2,
                // image head); validation every val_check_interval steps is left to evaluate
                boolean qnli = name.equals("qnli");
                s.lr = 1e-5;
                s.betas = qnli ? List.of(0.9, 0.98) : List.of(0.9, 0.999);
                s.eps = qnli ? 1e-6 : 1e-8;
                s.weightDecay = qnli ? 0.1 : 0.01;
                s.schedule = "cosine";
                s.warmupSteps = qnli ? 1986 : 1256;
                s.maxSteps = qnli ? 33112 : 20935;
                s.batchSize = 32;
                s.shuffle = true;
                s.normalize = "imagenet";
                s.checkpoint = DEFAULT_CHECKPOINT;
                s.checkpointEvery = 1000;
                s.requiredEmbedding = qnli ? "text" : "image";
                s.precision = "auto";
            }
            case "demo" -> {
                // the demo's small model (demo-model.yaml) from scratch, batch 96 of 16x16-patch images. On the demo's
                // data, batch 96 learns to read within these 1600 steps where batch 32 (3x the steps for the same
                // samples) is still at ~50%; at 1200 steps reading was at the edge (fp32 with fused attention: 70%,
                // bf16 92%), at 1600 both read (93% / 99%) (README, demo section)
                s.lr = 1e-3;
                s.betas = List.of(0.9, 0.98);
                s.eps = 1e-6;
                s.weightDecay = 0.05;
                s.schedule = "cosine";
                s.warmupSteps = 100;
                s.maxGradNorm = 1.0;
                s.batchSize = 96;
                s.padding = Padding.DYNAMIC;
                s.maxLength = 32;
                s.shuffle = true;
                s.epochs = 1000;
                s.maxSteps = 1600;
                s.evalEvery = 250;
                s.checkpointEvery = 500;
                s.logEvery = 10;
                s.printLoss = false;
                s.loaderThreads = 1;
                s.threads = 1;
                s.model = demoModel();
                s.precision = "auto";
            }
            case "default", "none" -> { }
            default -> throw new IllegalArgumentException("unknown preset '" + name
                    + "' (tutorial, torchmultimodal, demo, demo-retrieval, demo-pretraining, qnli, rendered_sst2)");
        }
        return s;
    }

    /** The demo's small FLAVA: the kwargs of {@code demo-model.yaml} (a resource next to this class). */
    public static Map<String, Object> demoModel() {
        try (java.io.InputStream in = FinetuneSettings.class.getResourceAsStream("/dev/mm4j/demo-model.yaml")) {
            if (in == null) {
                throw new IllegalStateException("resource /dev/mm4j/demo-model.yaml is missing from the jar");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> kw = new ObjectMapper(new YAMLFactory()).readValue(in, Map.class);
            return kw;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot read the demo model configuration", e);
        }
    }

    /**
     * The demo's small FLAVA for pretraining: {@link #demoModel()} with a codebook for its 64x64 images (32x32 input,
     * a 4x4 token grid = its patch grid), narrower and with fewer tokens than DALL-E's.
     */
    public static Map<String, Object> demoPretrainingModel() {
        Map<String, Object> kw = new java.util.LinkedHashMap<>(demoModel());
        kw.put("codebook_image_size", 32);
        kw.put("image_vocab_size", 1024);
        kw.put("codebook_n_hid", 32);
        kw.put("codebook_n_blk_per_group", 1);
        return kw;
    }

    /** TorchMultimodal's published FLAVA pretraining checkpoint, what the tutorial loads. */
    public static final String DEFAULT_CHECKPOINT = Sources.CHECKPOINT_URL;

    private static ObjectMapper mapper(boolean yaml) {
        return (yaml ? new ObjectMapper(new YAMLFactory()) : new ObjectMapper())
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    }

    /**
     * Overlays a YAML file's keys onto these settings. A mistake in the file (unknown key, wrong type, bad YAML) is
     * an {@link IllegalArgumentException} (a usage error) with one line naming the file, the line and the key.
     */
    public FinetuneSettings merge(Path yaml) throws IOException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(FileTrees.notADirectory(yaml, "settings file"));
        } catch (java.nio.file.NoSuchFileException e) {
            throw new IllegalArgumentException("settings file " + yaml + " does not exist", e);
        }
        try {
            mapper(true).readerForUpdating(this).readValue(bytes);
            return this;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException(problem(e, yaml.toString()), e);
        }
    }

    /**
     * One line for a mistake in settings: where ({@code source}, and its line for a file), which key, what is
     * wrong, e.g. {@code run.yaml line 4: key 'batch_size': 'eight' is not an integer}.
     */
    public static String problem(com.fasterxml.jackson.core.JsonProcessingException e, String source) {
        return problem(e, source, !source.startsWith("--"));
    }

    private static String problem(com.fasterxml.jackson.core.JsonProcessingException e, String source, boolean isFile) {
        StringBuilder sb = new StringBuilder(source);
        com.fasterxml.jackson.core.JsonLocation loc = e.getLocation();
        if (isFile && loc != null && loc.getLineNr() > 0) {
            sb.append(" line ").append(loc.getLineNr());
        }
        sb.append(": ");
        String key = "";
        if (e instanceof com.fasterxml.jackson.databind.JsonMappingException m) {
            StringBuilder k = new StringBuilder();
            for (com.fasterxml.jackson.databind.JsonMappingException.Reference r : m.getPath()) {
                if (r.getFieldName() != null) {
                    k.append(k.length() == 0 ? "" : ".").append(r.getFieldName());
                } else if (r.getIndex() >= 0) {
                    k.append('[').append(r.getIndex()).append(']');
                }
            }
            key = k.toString();
        }
        if (e instanceof com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException u) {
            return sb.append("unknown key '").append(key.isEmpty() ? u.getPropertyName() : key)
                    .append("' (the keys are those of OUT/settings.yaml)").toString();
        }
        if (!key.isEmpty()) {
            sb.append("key '").append(key).append("': ");
        }
        if (e instanceof com.fasterxml.jackson.databind.exc.InvalidFormatException f) {
            return sb.append('\'').append(f.getValue()).append("' is not ").append(expected(f.getTargetType())).toString();
        }
        if (e instanceof com.fasterxml.jackson.databind.exc.MismatchedInputException m && m.getTargetType() != null) {
            return sb.append("expected ").append(expected(m.getTargetType())).toString();
        }
        String msg = e.getOriginalMessage() == null ? e.toString() : e.getOriginalMessage();
        return sb.append(msg.lines().findFirst().orElse(msg).strip()).toString();
    }

    private static String expected(Class<?> type) {
        if (type == int.class || type == Integer.class || type == long.class || type == Long.class) return "an integer";
        if (type == double.class || type == Double.class || type == float.class || type == Float.class) return "a number";
        if (type == boolean.class || type == Boolean.class) return "true or false";
        if (List.class.isAssignableFrom(type)) return "a list";
        if (Map.class.isAssignableFrom(type)) return "a mapping of keys to values";
        if (type == String.class) return "a string";
        return "a " + type.getSimpleName();
    }

    /**
     * Overlays {@code values} (settings keys as in OUT/settings.yaml, e.g. {@code batch_size}) onto these settings. A
     * mistake (unknown key, wrong type) is an {@link IllegalArgumentException} with one line naming {@code source}
     * and the key.
     */
    public FinetuneSettings apply(Map<String, Object> values, String source) {
        if (values.isEmpty()) {
            return this;
        }
        ObjectMapper yaml = mapper(true);
        try {
            yaml.readerForUpdating(this).readValue(yaml.writeValueAsString(values));
            return this;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException(problem(e, source, false), e);
        }
    }

    /** An independent copy (through the YAML form, so nothing is shared with this one). */
    public FinetuneSettings copy() {
        try {
            return mapper(true).readValue(toYaml(), FinetuneSettings.class);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public String toYaml() {
        try {
            return mapper(true).writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The FLAVA config: the {@code model} kwargs over the full-size defaults, num_classes from the
     * vocabulary, and the multimodal encoder masking text padding when the padding is dynamic.
     */
    public FlavaConfig flavaConfig(int vocabSize) throws IOException {
        return flavaConfig(vocabSize, new FlavaConfig());
    }

    /**
     * The {@code model} kwargs over {@code base} (e.g. the sizes of a Hugging Face checkpoint's config.json),
     * num_classes from the vocabulary unless the kwargs set it.
     */
    public FlavaConfig flavaConfig(int vocabSize, FlavaConfig base) throws IOException {
        Map<String, Object> kw = model == null ? Map.of() : model;
        FlavaConfig c = FlavaConfig.withKwargs(base, kw);
        if (!kw.containsKey("num_classes")) {
            c.numClasses = vocabSize;
        }
        c.maskTextPaddingInMultimodal = padding.masksTextInMultimodal();
        c.activationCheckpointing = activationCheckpointing;
        c.bf16KeepActivations = bf16KeepActivations;
        return c.validate();
    }

    public ImageTransform.Normalize normalization() {
        return ImageTransform.Normalize.parse(normalize);
    }

    public AdamW.Settings adamw() {
        if (betas.size() != 2) {
            throw new IllegalArgumentException("betas must be two numbers, got " + betas);
        }
        return new AdamW.Settings(lr, betas.get(0), betas.get(1), eps, weightDecay);
    }

    /** Whether the answer vocabulary is built from the training split ({@code vocab: build}). */
    public boolean buildsVocab() {
        return "build".equals(vocab);
    }

    /** Whether {@link #task} is retrieval (else classification or pretraining; anything else is an error naming the key). */
    @com.fasterxml.jackson.annotation.JsonIgnore
    public boolean isRetrieval() {
        return checkedTask().equals("retrieval");
    }

    /** Whether {@link #task} is pretraining ({@link Pretrainer}). */
    @com.fasterxml.jackson.annotation.JsonIgnore
    public boolean isPretraining() {
        return checkedTask().equals("pretraining");
    }

    private String checkedTask() {
        String t = task == null ? "" : task;
        return switch (t) {
            case "retrieval", "classification", "pretraining" -> t;
            case "vqa" -> "classification";
            default -> throw new IllegalArgumentException("task '" + task
                    + "' is not classification (vqa), retrieval or pretraining");
        };
    }

    public boolean hasValidation() {
        return valSplit != null && !valSplit.isBlank() && !valSplit.equals("none");
    }
}
