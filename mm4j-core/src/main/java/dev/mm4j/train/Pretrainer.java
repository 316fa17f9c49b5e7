package dev.mm4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.checkpoint.PretrainingCheckpoint;
import dev.mm4j.checkpoint.SafeTensors;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.data.BlockMasking;
import dev.mm4j.data.ItmNegatives;
import dev.mm4j.data.MlmMasking;
import dev.mm4j.data.PretrainingBatch;
import dev.mm4j.data.PretrainingImageTransform;
import dev.mm4j.data.PretrainingLoader;
import dev.mm4j.data.PretrainingSource;
import dev.mm4j.data.QuestionTokenizer;
import dev.mm4j.download.PretrainedWeights;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForPreTraining;
import dev.mm4j.nn.Precision;
import dev.mm4j.report.ChartRenderer;
import dev.mm4j.report.HtmlReport;
import dev.mm4j.report.MetricsLog;
import dev.mm4j.train.dist.ProcessGroup;
import dev.mm4j.train.dist.Rendezvous;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.DirectoryLock;
import dev.mm4j.util.Hardware;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * FLAVA pretraining ({@code task: pretraining}): {@link FlavaForPreTraining} trained on the shared
 * {@link TrainingLoop} over a mix of sources ({@link FinetuneSettings#pretrainingSources}, as TorchMultimodal's
 * {@code datasets.selected: [image, text, vl]}): image-text pairs train the global contrastive loss, ITM and MMM, texts
 * MLM, images MIM, each weighted by the model's {@code mlm_weight}, {@code mim_weight}, {@code itm_loss_weight},
 * {@code mmm_text_loss_weight}, {@code mmm_image_loss_weight}, {@code contrastive_loss_weight} kwargs
 * ({@code FLAVAPretrainingLoss}'s names and defaults). Each optimizer step is one global batch of one source
 * ({@link PretrainingLoader}: drawn by the sources' ratios, deterministic for the seed, resumable at any step) of
 * {@code batch_size x grad_accum x processes} records, cut into micro-batches of {@code batch_size}.
 *
 * <p>Data-parallel ({@link Builder#distributed}, {@code finetune --task pretraining --nproc N}): every rank trains on
 * its micro-batches of each step, the gradients averaged over the ranks ({@link DataParallelSync}); rank 0 alone
 * writes {@code OUT} and prints (the loss averaged over the ranks; its parts rank 0's own). N processes give the
 * weights of 1 process with N times the accumulation. Each rank's contrastive loss is over its own micro-batch, as
 * under gradient accumulation (TorchMultimodal's DDP gathers the embeddings of every rank for it; this does not).
 *
 * <p>Starting weights ({@code checkpoint}): none (from scratch), a pretraining bundle or TorchMultimodal pretraining
 * checkpoint (loaded strictly), or a classification / retrieval bundle (its encoders; the heads and codebook start
 * fresh). Outputs in {@code OUT}: {@code settings.yaml}, {@code metrics.jsonl} (every loss part by TorchMultimodal's
 * name), {@code checkpoints/} (every {@code checkpoint_every} steps and at the end; {@link Builder#resume} continues
 * from the latest and repeats the uninterrupted losses exactly), {@code curves.png} and {@code report.html}, and the
 * pretraining bundle {@code model/} that {@code finetune --checkpoint OUT/model} starts any task from.
 *
 * <pre>{@code
 * Pretrainer.Result r = Pretrainer.builder().preset(Preset.DEMO_PRETRAINING)
 *         .pairs(Path.of("synth/captions_train.jsonl"), 2).texts(Path.of("synth/pretrain_texts.txt"), 1)
 *         .images(Path.of("synth/pretrain_images"), 1).outputDir(Path.of("runs/pretrain")).build().run();
 * }</pre>
 */
public final class Pretrainer {

    /**
     * What a run did.
     *
     * @param status how it ended
     * @param steps the optimizer steps done in all (with those before a resume)
     * @param losses the total loss of each step this run made
     * @param lastParts the loss parts of the last step this run made, by name
     * @param modelDir the exported bundle (null unless completed)
     * @param lastCheckpoint the latest checkpoint (null when none was written)
     */
    public record Result(Finetuner.Status status, long steps, List<Double> losses, Map<String, Double> lastParts,
            Path modelDir, Path lastCheckpoint) {}

    private final FinetuneSettings s;
    private final PrintStream out;
    private final boolean resume;
    private final boolean progressBar;
    private final List<TrainingListener> listeners;
    private final Rendezvous rendezvous;
    /** This process's rank and the number of processes (0 of 1 without {@link Builder#distributed}). */
    private final int rank;
    private final int world;
    private volatile boolean cancelRequested;

    private Pretrainer(Builder b, FinetuneSettings s) {
        this.s = s;
        this.rendezvous = b.rendezvous != null && b.rendezvous.worldSize() > 1 ? b.rendezvous : null;
        this.rank = rendezvous == null ? 0 : rendezvous.rank();
        this.world = rendezvous == null ? 1 : rendezvous.worldSize();
        // rank 0 alone prints and writes; the others print nothing but their errors
        this.out = rank == 0 ? b.log : new PrintStream(OutputStream.nullOutputStream());
        this.resume = b.resume;
        this.progressBar = b.progressBar;
        this.listeners = List.copyOf(b.listeners);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The effective settings. */
    public FinetuneSettings settings() {
        return s;
    }

    /** Asks the run to stop at the next step boundary (from any thread); it writes a checkpoint and returns CANCELLED. */
    public void cancel() {
        cancelRequested = true;
    }

    public Result run() throws IOException {
        if (s.pretrainingSources == null || s.pretrainingSources.isEmpty()) {
            throw new IllegalArgumentException("no pretraining sources: set pretraining_sources (a list of {kind: "
                    + "pairs|text|image, path, ratio}) or --pairs / --texts / --images PATH[:RATIO]");
        }
        Path outDir = Path.of(s.out);
        Files.createDirectories(outDir);
        CheckpointStore store = new CheckpointStore(outDir, s.keepLast);
        boolean primary = rank == 0;
        // every rank checks the folder before the group meets (none can write before all have met): all fail alike
        try (DirectoryLock lock = primary ? store.lockOutput() : null) {
            if (Files.exists(outDir.resolve("model").resolve(ModelBundle.WEIGHTS))) {
                throw new IOException(outDir + " already holds a model; choose another --out");
            }
            Path resumedFrom = store.latest();
            if (resume && resumedFrom == null) {
                throw new IOException("--resume: no checkpoint in " + store.dir() + " (nothing to resume)");
            }
            if (!resume && resumedFrom != null) {
                throw new IOException(outDir + " already holds checkpoints; pass --resume to continue that run, or "
                        + "choose another --out");
            }
            if (rendezvous != null) {
                out.printf("data-parallel: %d processes (rendezvous %s:%d, timeout %d s)%n", world,
                        rendezvous.masterAddr(), rendezvous.masterPort(), rendezvous.timeout().toSeconds());
            }
            if (primary) {
                AtomicFiles.writeString(outDir.resolve("settings.yaml"), s.toYaml());
            }
            int threads = Hardware.configureThreads(s.threads);
            PretrainedWeights pretrained = PretrainedWeights.resolve(s.checkpoint);
            FlavaConfig config = s.flavaConfig(1, pretrained.config(new FlavaConfig()));
            Path tokenizerFile = s.tokenizer == null ? pretrained.tokenizerFile() : Path.of(s.tokenizer);
            int textMax = Math.min(s.maxLength, config.maxPositionEmbeddings);
            int pairsMax = Math.min(s.pairsMaxLength, config.maxPositionEmbeddings);
            try (QuestionTokenizer tokenizer = tokenizerFile == null
                    ? QuestionTokenizer.bertBaseUncased(Math.max(textMax, pairsMax))
                    : QuestionTokenizer.load(tokenizerFile, Math.max(textMax, pairsMax));
                    PretrainingLoader loader = loader(config, tokenizer, textMax, pairsMax);
                    NDManager manager = NDManager.newBaseManager(Hardware.device(s.device));
                    ProcessGroup group = rendezvous == null ? null : ProcessGroup.open(rendezvous)) {
                config.precision = Precision.resolve(s.precision, manager.getDevice());
                out.printf("data: %s; %d libtorch threads, %d loader workers%n", describe(loader), threads,
                        s.loaderThreads);
                out.printf("precision: %s (setting %s)%n", config.precision.code(), s.precision);
                Engine.getInstance().setRandomSeed(Long.hashCode(s.seed));
                FlavaForPreTraining model = FlavaForPreTraining.create(config, manager);
                out.printf("model: FLAVA for pretraining, %,d parameters (%,d trained), on %s%n",
                        model.parameterCount(), count(model.trainableParameters()), manager.getDevice());
                if (resumedFrom == null) {
                    out.println(loadStart(model, pretrained));
                }
                try (AdamW optimizer = new AdamW(model.trainableParameters(), s.adamw(), manager)) {
                    GradientSync sync = group == null ? GradientSync.NONE : new DataParallelSync(group);
                    return train(model, config, optimizer, manager, loader, store, resumedFrom, outDir, tokenizerFile,
                            sync);
                } finally {
                    model.setTraining(false);
                }
            }
        }
    }

    private static long count(Map<String, dev.mm4j.nn.Parameter> params) {
        return params.values().stream().mapToLong(p -> p.array().size()).sum();
    }

    private PretrainingLoader loader(FlavaConfig config, QuestionTokenizer tokenizer, int textMax, int pairsMax)
            throws IOException {
        int grid = config.imageSize / config.patchSize;
        int patches = grid * grid;
        int masked = s.mimMaskedPatches != null ? s.mimMaskedPatches
                : (int) Math.round(patches * BlockMasking.DEFAULT_NUM_MASKING_PATCHES / 196.0);
        int min = Math.max(1, Math.min(masked, (int) Math.round(patches * BlockMasking.DEFAULT_MIN_NUM_PATCHES / 196.0)));
        PretrainingLoader.Builder b = PretrainingLoader.builder()
                .batchSize(s.batchSize)
                .accumulation(s.gradAccum)
                .shard(rank, world)
                .seed(s.seed)
                .shuffle(s.shuffle)
                .imageTransform(new PretrainingImageTransform(true, config.imageSize, config.codebookImageSize,
                        PretrainingImageTransform.DEFAULT_SCALE_MIN, PretrainingImageTransform.DEFAULT_SCALE_MAX,
                        s.normalization()))
                .blockMasking(new BlockMasking(grid, grid, masked, min, null, BlockMasking.DEFAULT_MIN_ASPECT, null))
                .mlm(new MlmMasking(s.mlmProbability, MlmMasking.Vocab.BERT_UNCASED))
                .itm(new ItmNegatives(s.itmProbability))
                .tokenizer(tokenizer)
                .textMaxLength(textMax)
                .pairsMaxLength(pairsMax)
                .workers(Math.max(1, s.loaderThreads))
                .maxImagePixels(s.maxImagePixels);
        for (int i = 0; i < s.pretrainingSources.size(); i++) {
            FinetuneSettings.PretrainingSourceSpec spec = s.pretrainingSources.get(i);
            String where = "pretraining_sources[" + i + "]";
            if (spec == null || spec.path == null || spec.path.isBlank()) {
                throw new IllegalArgumentException(where + ": no path");
            }
            PretrainingSource.Kind kind;
            try {
                kind = PretrainingSource.Kind.parse(spec.kind);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
            }
            Path path = Path.of(spec.path);
            if (!Files.exists(path)) {
                throw new IllegalArgumentException(where + ": " + spec.path + " does not exist");
            }
            PretrainingSource src = switch (kind) {
                case PAIRS -> PretrainingSource.pairs(path, spec.split == null ? "train" : spec.split);
                case TEXT -> PretrainingSource.texts(path);
                case IMAGE -> PretrainingSource.images(path);
            };
            try {
                b.source(src, spec.ratio);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
            }
        }
        return b.build();
    }

    private static String describe(PretrainingLoader loader) {
        StringBuilder sb = new StringBuilder();
        double[] shares = loader.shares();
        for (int i = 0; i < loader.sources().size(); i++) {
            PretrainingSource src = loader.sources().get(i);
            sb.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%s %s (%d records, %.0f%% of the steps)",
                    src.kind().name().toLowerCase(Locale.ROOT), src.name(), src.size(), 100 * shares[i]));
        }
        return sb.toString();
    }

    /**
     * The starting weights: none; a pretraining bundle or TorchMultimodal pretraining checkpoint, strictly; a
     * classification or retrieval bundle (its {@code model.*} encoders), non-strictly.
     */
    private static String loadStart(FlavaForPreTraining model, PretrainedWeights pretrained) throws IOException {
        Path p = pretrained.path();
        if (p == null) {
            return pretrained.loadInto(model); // random initialization, or a URL: fetched and loaded non-strictly
        }
        Path weights = Files.isDirectory(p) ? p.resolve(ModelBundle.WEIGHTS) : p;
        if (ModelBundle.isBundle(p) && !isPretrainingBundle(weights)) {
            return pretrained.loadInto(model) + " (a fine-tuned model's encoders; the pretraining heads and codebook "
                    + "start fresh)";
        }
        // a bundle folder: its weights file; anything else (a file, a Hugging Face folder) as the checkpoint reader takes it
        Path source = Files.isDirectory(p) && ModelBundle.isBundle(p) ? weights : p;
        return "weights: " + PretrainingCheckpoint.load(model, source, null) + " (strict)";
    }

    private static boolean isPretrainingBundle(Path weights) throws IOException {
        if (!Files.isRegularFile(weights) || !weights.toString().endsWith(".safetensors")) {
            return false;
        }
        try (StateDict sd = SafeTensors.read(weights)) {
            return sd.asMap().keySet().stream().anyMatch(n -> n.startsWith("image_codebook."));
        }
    }

    private Result train(FlavaForPreTraining model, FlavaConfig config, AdamW optimizer, NDManager manager,
            PretrainingLoader loader, CheckpointStore store, Path resumedFrom, Path outDir, Path tokenizerFile,
            GradientSync sync) throws IOException {
        int perEpoch = 0;
        for (int i = 0; i < loader.sources().size(); i++) {
            perEpoch += loader.batchesPerEpoch(i);
        }
        // a loader step is an optimizer step (its global batch cut into the micro-batches of every process)
        long total = s.maxSteps > 0 ? s.maxSteps : (long) s.epochs * Math.max(1, perEpoch);
        LrSchedule schedule = new LrSchedule(LrSchedule.Kind.parse(s.schedule), s.lr, Math.min(s.warmupSteps, total),
                total, 0.5, 0);
        out.printf("training: %d steps, batch %d x %d accumulation%s, one source per step, schedule %s%n", total,
                s.batchSize, s.gradAccum, world > 1 ? " x " + world + " processes" : "", schedule);
        TrainState state;
        if (resumedFrom != null) {
            state = CheckpointStore.restore(resumedFrom, model, optimizer);
            out.printf("resumed from %s: step %d, next loader step %d%n", resumedFrom, state.step, state.nextBatch);
        } else {
            state = new TrainState();
            state.seed = s.seed;
        }
        Map<String, Double> lastParts = new LinkedHashMap<>();
        List<TrainingListener> all = new ArrayList<>();
        all.add(console(total, lastParts));
        TrainingLoop.Outcome o;
        Path last;
        boolean primary = rank == 0;
        try (MetricsLog metrics = primary
                        ? TrainingListeners.openMetrics(outDir.resolve(TrainingListeners.METRICS), state) : null;
                TrainingListeners.Progress progress = progressBar && primary
                        ? new TrainingListeners.Progress(total, state.step) : null) {
            if (metrics != null) {
                all.add(TrainingListeners.metrics(metrics, s.logEvery));
            }
            if (progress != null) {
                all.add(progress);
            }
            all.addAll(listeners);
            TrainingLoop<PretrainingBatch> loop = new TrainingLoop<>(model, config, optimizer, manager,
                    new LoaderData(loader, perEpoch), TrainingLoop.Options.of(s), schedule, total, store, state,
                    resumedFrom);
            if (world > 1) {
                loop.dataParallel(rank, world, sync); // the loader is this rank's share already (LoaderData.shard)
            }
            loop.listeners(all).log(out).cancelWhen(() -> cancelRequested);
            try {
                o = loop.run();
            } catch (UncheckedIOException e) {
                throw e.getCause();
            }
            if (o.stoppedOnNonFinite()) {
                return new Result(Finetuner.Status.STOPPED_ON_NON_FINITE_LOSS, state.step, o.losses(), lastParts, null,
                        o.lastCheckpoint());
            }
            last = loop.checkpoint();
        }
        if (o.cancelled()) {
            out.printf("%ncancelled after %d of %d steps; checkpoint %s (resume to continue)%n", state.step, total, last);
            return new Result(Finetuner.Status.CANCELLED, state.step, o.losses(), lastParts, null, last);
        }
        if (!primary) {
            return new Result(Finetuner.Status.COMPLETED, state.step, o.losses(), lastParts, null, last);
        }
        Path modelDir = outDir.resolve("model");
        ModelBundle.Info info = new ModelBundle.Info();
        info.maxLength = Math.min(s.maxLength, config.maxPositionEmbeddings);
        info.padding = s.padding;
        info.antialias = s.antialias;
        info.normalize = s.normalization().key();
        info.trainedSteps = state.step;
        ModelBundle.writePretraining(modelDir, model, info, tokenizerFile);
        report(outDir, state, model);
        out.printf("%ndone: %d steps%s; final loss %.4f; pretrained model exported to %s (finetune --checkpoint %s)%n",
                state.step, world > 1 ? " on " + world + " processes" : "", state.lastLoss, modelDir, modelDir);
        return new Result(Finetuner.Status.COMPLETED, state.step, o.losses(), lastParts, modelDir, last);
    }

    /** {@code curves.png} (when a renderer is installed) and {@code report.html}: each loss part's first and last value. */
    private void report(Path outDir, TrainState state, FlavaForPreTraining model) throws IOException {
        List<MetricsLog.Entry> entries = MetricsLog.read(outDir.resolve(TrainingListeners.METRICS));
        Path chart = null;
        ChartRenderer charts = ChartRenderer.installed().orElse(null);
        if (charts != null) {
            chart = outDir.resolve(RunOutputs.CURVES);
            charts.write(entries, chart);
        }
        Map<String, double[]> firstLast = new LinkedHashMap<>(); // name -> first, last, count
        for (MetricsLog.Entry e : entries) {
            if (e.lossParts() == null) {
                continue;
            }
            e.lossParts().forEach((k, v) -> {
                double[] f = firstLast.computeIfAbsent(k, x -> new double[] {v, v, 0});
                f[1] = v;
                f[2]++;
            });
        }
        List<List<String>> rows = new ArrayList<>();
        firstLast.forEach((k, f) -> rows.add(List.of(k, String.format(Locale.ROOT, "%.4f", f[0]),
                String.format(Locale.ROOT, "%.4f", f[1]), String.valueOf((long) f[2]))));
        HtmlReport r = HtmlReport.create("Multimodal4J pretraining report");
        r.summary("sources", s.pretrainingSources.stream()
                .map(p -> p.kind + " " + p.path + " (ratio " + p.ratio + ")").toList().toString());
        r.summary("steps", state.step);
        r.summary("final training loss", String.format(Locale.ROOT, "%.4f", state.lastLoss));
        r.summary("model parameters", String.format("%,d", model.parameterCount()));
        r.summary("settings", "settings.yaml");
        r.table(new HtmlReport.Table("Losses", "each weighted loss at the first and last logged step of its source "
                + "(metrics.jsonl loss_parts)", List.of("loss", "first", "last", "logged steps"), rows));
        if (chart != null) {
            r.chart(chart);
        }
        r.write(outDir.resolve(RunOutputs.REPORT));
    }

    /** "step i/n loss x (mlm_loss a, ...) lr y" every {@code log_every} steps and at the last. */
    private TrainingListener console(long total, Map<String, Double> lastParts) {
        return new TrainingListener() {
            @Override
            public void onStep(Step st) {
                lastParts.clear();
                lastParts.putAll(st.lossParts());
                if (s.logEvery > 0 && (st.index() % s.logEvery == 0 || st.index() == total - 1)) {
                    StringBuilder parts = new StringBuilder();
                    st.lossParts().forEach((k, v) -> parts.append(parts.length() == 0 ? "" : ", ")
                            .append(String.format(Locale.ROOT, "%s %.4f", k, v)));
                    out.printf(Locale.ROOT, "step %d/%d  loss %.4f (%s)  lr %.3g%n", st.index() + 1, total, st.loss(),
                            parts, st.lr());
                }
            }
        };
    }

    /**
     * The loader's steps as the loop's data: one endless "epoch" (the loader mixes the sources and runs each through
     * its own epochs), a batch's number being its loader step, so a resumed run continues at the next loader step. A
     * step's micro-batches (accumulation) come one after the other, all numbered with their step.
     */
    private static final class LoaderData implements TrainingLoop.Data<PretrainingBatch> {
        private final PretrainingLoader loader;
        private final int perEpoch;

        LoaderData(PretrainingLoader loader, int perEpoch) {
            this.loader = loader;
            this.perEpoch = perEpoch;
        }

        @Override
        public Iterator<PretrainingBatch> epoch(int epoch, int startBatch) {
            return loader.from(startBatch);
        }

        @Override
        public int batchesPerEpoch() {
            return Math.max(1, perEpoch);
        }

        @Override
        public int samples(PretrainingBatch batch) {
            return batch.size();
        }

        @Override
        public int index(PretrainingBatch batch) {
            return Math.toIntExact(batch.step());
        }

        /** The loader was built for this process's share ({@link PretrainingLoader.Builder#shard}): itself. */
        @Override
        public TrainingLoop.Data<PretrainingBatch> shard(int rank, int worldSize) {
            return this;
        }
    }

    /**
     * The settings of a run, as Java types: a preset (or given settings), a YAML file, then every setter in the order
     * called; keys without a setter of their own go through {@link #set(String, Object)}.
     */
    public static final class Builder extends RunBuilder<Builder> {
        private final List<FinetuneSettings.PretrainingSourceSpec> sources = new ArrayList<>();

        private Builder() {
            super(System.out);
        }

        /** An image-text pair source (a caption manifest or folder): contrastive + ITM + MMM. */
        public Builder pairs(Path path, double ratio) {
            sources.add(new FinetuneSettings.PretrainingSourceSpec("pairs", path.toString(), ratio));
            return this;
        }

        /** A text source (.txt, .jsonl): MLM. */
        public Builder texts(Path path, double ratio) {
            sources.add(new FinetuneSettings.PretrainingSourceSpec("text", path.toString(), ratio));
            return this;
        }

        /** An image folder: MIM. */
        public Builder images(Path path, double ratio) {
            sources.add(new FinetuneSettings.PretrainingSourceSpec("image", path.toString(), ratio));
            return this;
        }

        /** The pretrainer, its settings fixed ({@code task} is pretraining; sources given here add to the settings'). */
        public Pretrainer build() throws IOException {
            FinetuneSettings s = resolve("Pretrainer.Builder");
            s.task = "pretraining";
            if (!sources.isEmpty()) {
                List<FinetuneSettings.PretrainingSourceSpec> all = new ArrayList<>(s.pretrainingSources);
                all.addAll(sources);
                s.pretrainingSources = all;
            }
            return new Pretrainer(this, s);
        }
    }
}
