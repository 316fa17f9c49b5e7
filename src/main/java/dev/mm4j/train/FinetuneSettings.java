package dev.mm4j.train;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.mm4j.flava.FlavaConfig;
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
    // data
    /** Dataset path: official JSON / folder, or Hugging Face parquet file(s) / folder. */
    public String data;
    public String trainSplit = "train";
    /** Validation split (null or "none": no validation). */
    public String valSplit = "val";
    /** Answer vocabulary (one answer per line); default {@code <data>/answers.txt} when present. */
    public String vocab;
    /** tokenizer.json or vocab.txt; default: the bundled bert-base-uncased. */
    public String tokenizer;
    public int maxLength = 512;
    /** fixed (pad to max_length, the tutorial) or dynamic (pad to the longest question, padding masked). */
    public String padding = "fixed";
    public boolean antialias = false;
    public boolean shuffle = false;
    public int loaderThreads = 1;
    /** Use at most this many training / validation samples (0 = all). */
    public int trainLimit = 0;
    public int valLimit = 0;

    // model
    /** Pretrained checkpoint (path or URL; loaded non-strictly), or null / "none" for random init. */
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

    /** Named starting points: tutorial, torchmultimodal, demo. */
    public static FinetuneSettings preset(String name) {
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
                s.padding = "dynamic";
                s.shuffle = true;
                s.checkpoint = DEFAULT_CHECKPOINT;
            }
            case "demo" -> {
                // batch 96 of 16x16-patch images (see demo-model.yaml): ~3.5x the samples per second of batch 32 at
                // 8x8 patches, which is what lets the from-scratch model get past the answer prior in 1000 steps
                s.lr = 1e-3;
                s.betas = List.of(0.9, 0.98);
                s.eps = 1e-6;
                s.weightDecay = 0.05;
                s.schedule = "cosine";
                s.warmupSteps = 100;
                s.maxGradNorm = 1.0;
                s.batchSize = 96;
                s.padding = "dynamic";
                s.maxLength = 32;
                s.shuffle = true;
                s.epochs = 1000;
                s.maxSteps = 1200;
                s.evalEvery = 250;
                s.checkpointEvery = 500;
                s.logEvery = 10;
                s.printLoss = false;
                s.loaderThreads = 1;
                s.threads = 1;
                s.model = demoModel();
            }
            case "default", "none" -> { }
            default -> throw new IllegalArgumentException("unknown preset '" + name + "' (tutorial, torchmultimodal, demo)");
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

    /** TorchMultimodal's published FLAVA pretraining checkpoint, what the tutorial loads. */
    public static final String DEFAULT_CHECKPOINT =
            "https://download.pytorch.org/models/multimodal/flava/flava_for_pretraining_unified_text_encoder.pt";

    private static ObjectMapper mapper(boolean yaml) {
        return (yaml ? new ObjectMapper(new YAMLFactory()) : new ObjectMapper())
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    }

    /** Overlays a YAML file's keys onto these settings. */
    public FinetuneSettings merge(Path yaml) throws IOException {
        try {
            mapper(true).readerForUpdating(this).readValue(Files.readAllBytes(yaml));
            return this;
        } catch (IOException e) {
            throw new IOException("cannot read settings " + yaml + ": " + e.getMessage(), e);
        }
    }

    public String toYaml() {
        try {
            return mapper(true).writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static FinetuneSettings fromYaml(String yaml) throws IOException {
        return mapper(true).readValue(yaml, FinetuneSettings.class);
    }

    /** The FLAVA config: the {@code model} kwargs over the full-size defaults, num_classes from the vocabulary. */
    public FlavaConfig flavaConfig(int vocabSize) throws IOException {
        Map<String, Object> kw = model == null ? Map.of() : model;
        FlavaConfig c = FlavaConfig.fromJson(new ObjectMapper().writeValueAsString(kw));
        if (!kw.containsKey("num_classes")) {
            c.numClasses = vocabSize;
        }
        return c.validate();
    }

    public boolean dynamicPadding() {
        return switch (padding) {
            case "dynamic" -> true;
            case "fixed" -> false;
            default -> throw new IllegalArgumentException("padding must be fixed or dynamic, got " + padding);
        };
    }

    public AdamW.Settings adamw() {
        if (betas.size() != 2) {
            throw new IllegalArgumentException("betas must be two numbers, got " + betas);
        }
        return new AdamW.Settings(lr, betas.get(0), betas.get(1), eps, weightDecay);
    }

    public boolean hasValidation() {
        return valSplit != null && !valSplit.isBlank() && !valSplit.equals("none");
    }
}
