package dev.mm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.Pretrainer;
import dev.mm4j.search.RetrievalFinetuner;
import dev.mm4j.train.dist.Launcher;
import dev.mm4j.train.dist.Rendezvous;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code mm4j finetune}: fine-tune FLAVA for classification on a TextVQA-format dataset. */
@Command(name = "finetune", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fine-tunes FLAVA for classification on TextVQA (official JSON + images, or Hugging Face parquet) or on "
                + "your own data (a JSON Lines or CSV manifest of image, question, answers; image paths relative to it).",
                "Settings come from a preset, then a YAML file (--settings), then the options below and --set KEY=VALUE "
                        + "(any key of the settings file). The effective settings are printed and saved to OUT/settings.yaml.",
                "Outputs in OUT: metrics.jsonl, checkpoints/ (step-N, latest, best), model/ (exported safetensors + answers), "
                        + "predictions.json, curves.png, report.html.",
                "Presets: tutorial (the TorchMultimodal tutorial: batch 2, AdamW lr 1e-3, 3 steps, prints 'Loss at step i = x'), "
                        + "torchmultimodal (its FLAVA fine-tuning defaults: lr 1e-5, betas 0.9/0.98, eps 1e-6, wd 0.1, warmup, "
                        + "linear decay), demo (a small model trained from scratch, used by 'mm4j demo'), demo-retrieval (the "
                        + "same model trained for retrieval: task retrieval, all cores; 'mm4j demo --task retrieval'), qnli and "
                        + "rendered_sst2 (TorchMultimodal's FLAVA example configs: batch 32, lr 1e-5, cosine with warmup), demo-pretraining "
                        + "(the demo's model with a small codebook, pretrained on a mix of sources; 'mm4j demo --task pretraining').",
                "Labelled text / images (task classification): --data a GLUE-style folder (train.tsv, dev.tsv: a header, "
                        + "one sentence column or a pair such as question/sentence, label), a CSV / JSON Lines file or folder "
                        + "with text (+ text_pair) and label, an ImageFolder (train/, val/ with one folder per class, like "
                        + "RenderedSST2), or image + text manifests ({img, text, label}). The head reads the encoder the data "
                        + "has (--set required_embedding=image|text|mm to choose); OUT gets classes.txt, eval.json (accuracy, "
                        + "macro-F1, per class) and predictions.jsonl."})
public final class FinetuneCommand implements Callable<Integer> {
    @Option(names = "--preset", description = "tutorial, torchmultimodal, demo, demo-retrieval, demo-pretraining, qnli, "
            + "rendered_sst2 or default (default: ${DEFAULT-VALUE})")
    String preset = "default";

    @Option(names = "--settings", paramLabel = "YAML", description = "settings file (keys as in OUT/settings.yaml)")
    Path settingsFile;

    @Option(names = "--task", paramLabel = "classification|retrieval|pretraining",
            description = "classification (default; also vqa: FLAVA + answer head), retrieval (contrastive image-text training on "
                    + "captions: a .jsonl/.csv manifest of {image, text}, a synth folder's captions_SPLIT.jsonl, or TextVQA data "
                    + "as question + majority answer; writes a retrieval model and held-out recall@1/@5) or pretraining "
                    + "(FLAVA's pretraining losses over a mix of --pairs / --texts / --images sources or pretraining_sources; "
                    + "loss weights as model kwargs mlm_weight, mim_weight, itm_loss_weight, mmm_text_loss_weight, "
                    + "mmm_image_loss_weight, contrastive_loss_weight; writes OUT/model, a pretraining bundle that "
                    + "--checkpoint OUT/model starts fine-tuning from)")
    String task;

    @Option(names = "--pairs", paramLabel = "PATH[:RATIO]", description = "pretraining source of image-text pairs (a "
            + "caption manifest or folder, as retrieval reads): contrastive + ITM + MMM; RATIO its sampling ratio (1)")
    List<String> pairs = new ArrayList<>();

    @Option(names = "--texts", paramLabel = "PATH[:RATIO]", description = "pretraining source of texts (.txt one per line, "
            + ".jsonl with a text field): MLM")
    List<String> texts = new ArrayList<>();

    @Option(names = "--images", paramLabel = "PATH[:RATIO]", description = "pretraining source of images (a folder): MIM")
    List<String> images = new ArrayList<>();

    @Option(names = "--data", paramLabel = "PATH", description = "dataset: official JSON / folder, parquet file / folder, "
            + "or a JSON Lines / CSV manifest (image, question, answers) / folder of <split>.jsonl|csv; or labelled text / "
            + "images: GLUE TSV folder, CSV / JSON Lines with text and label, ImageFolder, {img, text, label} manifests")
    String data;

    @Option(names = "--vocab", paramLabel = "FILE|build", description = "answer vocabulary, one answer per line "
            + "(default: DATA/answers.txt); build: from the training split's answers, written to OUT/answers.txt")
    String vocab;

    @Option(names = "--vocab-min-count", paramLabel = "N", description = "with --vocab build: answers given at least N times "
            + "become classes (default 1)")
    Integer vocabMinCount;

    @Option(names = "--checkpoint", paramLabel = "PATH|URL|hf:ORG/NAME|none",
            description = "pretrained weights, loaded non-strictly: a .pt/.bin/.safetensors file, *.index.json or Hugging Face "
                    + "folder, a URL (cached), or a hub model (after download --hf)")
    String checkpoint;

    @Option(names = "--model-config", paramLabel = "YAML", description = "FLAVA kwargs (TorchMultimodal names); num_classes defaults to the vocabulary size")
    Path modelConfig;

    @Option(names = "--out", paramLabel = "DIR", description = "output folder")
    String out;

    @Option(names = "--max-steps", description = "stop after N optimizer steps")
    Long maxSteps;

    @Option(names = "--epochs", description = "epochs (when --max-steps is 0)")
    Integer epochs;

    @Option(names = "--batch-size")
    Integer batchSize;

    @Option(names = "--lr")
    Double lr;

    @Mixin EngineOptions engine = new EngineOptions();

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = "any settings key, e.g. --set warmup_steps=100 --set schedule=cosine")
    List<String> sets = new ArrayList<>();

    @Option(names = "--resume", description = "continue the run in OUT from its latest checkpoint")
    boolean resume;

    @Option(names = "--nproc", paramLabel = "N", description = "data-parallel training in N processes on this machine "
            + "(like torchrun --nproc_per_node; rendezvous on 127.0.0.1), task classification or pretraining: each trains "
            + "on its share of every global batch of N x batch_size (pretraining: every process the same source), the "
            + "gradients averaged with libtorch's Gloo; process 0 writes OUT. Set --threads to "
            + "the cores per process. Needs the native part built with g++ (Linux x86-64/aarch64) (default: 1)")
    int nproc = 1;

    @Option(names = "--dist-timeout", paramLabel = "SECONDS", description = "with --nproc: how long a process waits "
            + "for the others; a process that dies stops the others within it (default: ${DEFAULT-VALUE})")
    long distTimeout = Rendezvous.DEFAULT_TIMEOUT.toSeconds();

    @Option(names = "--master", paramLabel = "URL", description = "data-parallel training as a Spark barrier stage "
            + "(like TorchDistributor): one task per rank on this master (spark://HOST:7077, local-cluster[W,C,MB]), the "
            + "first task's host the rendezvous; OUT must be on a file system every executor sees; a failed stage is "
            + "retried and resumes from the last checkpoint. Runs from the Spark build (./mm4j does that for --master)")
    String master;

    @Option(names = "--workers", paramLabel = "N", description = "with --master: the number of ranks (tasks) (default: ${DEFAULT-VALUE})")
    int workers = 2;

    @Option(names = "--conf", paramLabel = "KEY=VALUE", description = "with --master: a Spark setting, as spark-submit's --conf")
    List<String> conf = new ArrayList<>();

    @Spec CommandSpec spec;

    /** Runs the ranks on a Spark cluster; installed by the Spark build's main class ({@code SparkMain}). */
    public interface Cluster {
        /** @return one line per rank */
        List<String> run(String master, Map<String, String> conf, int workers, FinetuneSettings settings, boolean resume,
                Duration timeout) throws Exception;
    }

    static Cluster cluster;

    @Override
    public Integer call() throws Exception {
        if (master != null) {
            if (cluster == null) {
                throw new IllegalArgumentException("finetune --master runs from the Spark build (mvn -Pspark package, "
                        + "target/mm4j-spark.jar; ./mm4j finetune --master ... runs it)");
            }
            if (nproc > 1) {
                throw new IllegalArgumentException("--master and --nproc: choose one (--workers sets the ranks on Spark)");
            }
            Map<String, String> settings = new LinkedHashMap<>();
            for (String c : conf) {
                int eq = c.indexOf('=');
                if (eq <= 0) {
                    throw new IllegalArgumentException("--conf " + c + ": expected KEY=VALUE");
                }
                settings.put(c.substring(0, eq), c.substring(eq + 1));
            }
            FinetuneSettings s = settings(preset, settingsFile, overrides());
            cluster.run(master, settings, workers, s, resume, Duration.ofSeconds(distTimeout)).forEach(System.out::println);
            return 0;
        }
        Rendezvous rank = Rendezvous.fromEnvironment(System.getenv()); // set by the launcher for each process
        if (nproc > 1 && rank == null) {
            List<String> args = new ArrayList<>(List.of("finetune"));
            List<String> given = spec.commandLine().getParseResult().originalArgs();
            // the same command line in each process, less the launcher's options (and what precedes "finetune")
            for (int i = given.indexOf(spec.name()) + 1; i < given.size(); i++) {
                String a = given.get(i);
                if (a.equals("--nproc") || a.equals("--dist-timeout")) {
                    i++; // and its value
                } else if (!a.startsWith("--nproc=") && !a.startsWith("--dist-timeout=")) {
                    args.add(a);
                }
            }
            return Launcher.run(Launcher.sameJvm(Main.class.getName(), args), nproc, Duration.ofSeconds(distTimeout),
                    Map.of(), System.out);
        }
        FinetuneSettings s = settings(preset, settingsFile, overrides());
        if (rank != null && s.isRetrieval()) {
            throw new IllegalArgumentException("--nproc: data-parallel training runs the classification and pretraining "
                    + "tasks, not retrieval");
        }
        if (s.isPretraining()) {
            Pretrainer.Result r = Pretrainer.builder().settings(s).resume(resume).log(System.out)
                    .progressBar(rank == null || rank.rank() == 0).distributed(rank).build().run();
            return r.status() == Finetuner.Status.STOPPED_ON_NON_FINITE_LOSS ? 3 : 0;
        }
        if (!pairs.isEmpty() || !texts.isEmpty() || !images.isEmpty()) {
            throw new IllegalArgumentException("--pairs / --texts / --images are pretraining sources: add --task pretraining");
        }
        if (rank != null) {
            Finetuner.Result r = Finetuner.builder().settings(s).resume(resume).log(System.out)
                    .progressBar(rank.rank() == 0).distributed(rank).build().run();
            return r.stoppedOnNonFinite() ? 3 : 0;
        }
        if (s.isRetrieval()) {
            RetrievalFinetuner.Result r = new RetrievalFinetuner(s, System.out).resume(resume).run();
            return r.status() == Finetuner.Status.STOPPED_ON_NON_FINITE_LOSS ? 3 : 0;
        }
        Finetuner.Result r = Finetuner.builder().settings(s).resume(resume).log(System.out).progressBar(true).build().run();
        return r.stoppedOnNonFinite() ? 3 : 0;
    }

    Map<String, Object> overrides() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        put(o, "task", task);
        put(o, "data", data);
        put(o, "vocab", vocab);
        put(o, "vocab_min_count", vocabMinCount);
        put(o, "checkpoint", checkpoint);
        put(o, "out", out);
        put(o, "max_steps", maxSteps);
        put(o, "epochs", epochs);
        put(o, "batch_size", batchSize);
        put(o, "lr", lr);
        List<Map<String, Object>> sources = new ArrayList<>();
        pairs.forEach(p -> sources.add(source("pairs", p)));
        texts.forEach(p -> sources.add(source("text", p)));
        images.forEach(p -> sources.add(source("image", p)));
        if (!sources.isEmpty()) {
            o.put("pretraining_sources", sources);
        }
        put(o, "device", engine.deviceSpec());
        put(o, "precision", engine.precisionSpec());
        put(o, "threads", engine.threads > 0 ? engine.threads : null);
        if (modelConfig != null) {
            o.put("model", new ObjectMapper(new YAMLFactory()).readValue(modelConfig.toFile(), Map.class));
        }
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        for (String kv : sets) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--set expects KEY=VALUE, got '" + kv + "'");
            }
            try {
                o.put(kv.substring(0, eq).trim(), yaml.readValue(kv.substring(eq + 1), Object.class));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalArgumentException(FinetuneSettings.problem(e, "--set " + kv), e);
            }
        }
        return o;
    }

    private static Map<String, Object> source(String kind, String spec) {
        FinetuneSettings.PretrainingSourceSpec p = FinetuneSettings.PretrainingSourceSpec.parse(kind, spec);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("kind", p.kind);
        m.put("path", p.path);
        m.put("ratio", p.ratio);
        return m;
    }

    private static void put(Map<String, Object> o, String k, Object v) {
        if (v != null) {
            o.put(k, v);
        }
    }

    /** preset → settings file → overrides. */
    static FinetuneSettings settings(String preset, Path file, Map<String, Object> overrides) throws Exception {
        FinetuneSettings s = FinetuneSettings.preset(preset);
        if (file != null) {
            s.merge(file);
        }
        return s.apply(overrides, "--set");
    }
}
