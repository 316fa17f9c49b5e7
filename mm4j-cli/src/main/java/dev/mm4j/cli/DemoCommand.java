package dev.mm4j.cli;

import dev.mm4j.data.CaptionPairs;
import dev.mm4j.data.SyntheticPretraining;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.eval.AccuracyByType;
import dev.mm4j.inference.Embedder;
import dev.mm4j.report.TextTable;
import dev.mm4j.search.RetrievalFinetuner;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.Pretrainer;
import dev.mm4j.util.AtomicFiles;
import dev.mm4j.util.Hardware;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mm4j demo}: the whole job on generated data, offline, in minutes on 2 CPU cores. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"End to end with no downloads: generates a synthetic TextVQA (signs with rendered words; questions "
                + "about the word and its colours), fine-tunes a small FLAVA on it from scratch (the 'demo' preset of "
                + "finetune), evaluates on the held-out split and prints VQA accuracy per question type (reading, text "
                + "colour, sign colour) next to the majority-answer baseline, with the wall time and peak RSS. Writes "
                + "DIR/run/report.html (the same table, curves, sample images with question, prediction and human answers).",
                "--task retrieval: the same data's captions instead (\"a red sign with a white panel that says STOP\"): "
                        + "contrastive training from scratch, then text -> image recall@1/@5 among the held-out images.",
                "--task pretraining: what pretraining is for. Pretrains the small FLAVA (with a small codebook) on the same "
                        + "data's captions with their images (contrastive, ITM, MMM), the captions alone (MLM) and the images "
                        + "alone (MIM), then fine-tunes VQA with the same small budget (--steps, default 300) once from the "
                        + "pretrained encoders and once from scratch, and prints both accuracies side by side."})
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--dir", description = "working folder (default: ${DEFAULT-VALUE})")
    Path dir = Path.of("runs/demo");

    @Option(names = "--steps", description = "optimizer steps (default: the demo preset's)")
    Long steps;

    @Option(names = "--train", description = "training questions to generate (default: ${DEFAULT-VALUE}, on about 9000 images)")
    int train = 12000;

    @Option(names = "--val", description = "validation questions (default: ${DEFAULT-VALUE})")
    int val = 400;

    @Option(names = "--seed", description = "(default: ${DEFAULT-VALUE})")
    long seed = 7;

    @Option(names = "--precision", paramLabel = "P", description = "fp32, bf16 or auto (default: the demo preset's, auto: "
            + "bf16 where the CPU has avx512_bf16/AMX or on a GPU, else fp32)")
    String precision;

    @Option(names = "--task", paramLabel = "classification|retrieval|text|image|pretraining", description = "classification "
            + "(default: VQA, as above) or retrieval: train the small FLAVA contrastively on the same data's captions "
            + "(finetune's demo-retrieval preset, into DIR/retrieval) and print text -> image recall@1/@5 among the held-out "
            + "images; text: QNLI-style sentence pairs (synth --task text) through the text head; image: rendered positive / "
            + "negative words in the ImageFolder layout (synth --task image, like RenderedSST2) through the image head; "
            + "both print accuracy and macro-F1 next to the majority-class baseline (into DIR/text, DIR/image); "
            + "pretraining: pretrain it (demo-pretraining preset, into DIR/pretrain), then fine-tune VQA from it and from "
            + "scratch with the same budget (DIR/vqa-pretrained, DIR/vqa-scratch) and compare")
    String task = "classification";

    @Option(names = "--pretrain-steps", description = "with --task pretraining: pretraining steps (default: the "
            + "demo-pretraining preset's)")
    Long pretrainSteps;

    @Override
    public Integer call() throws Exception {
        if (task.equals("text") || task.equals("image")) {
            return labelled(task.equals("text"));
        }
        boolean retrieval = switch (task) {
            case "retrieval" -> true;
            case "classification", "pretraining" -> false;
            default -> throw new IllegalArgumentException("--task: classification, retrieval, text, image or pretraining, "
                    + "got '" + task + "'");
        };
        long t0 = System.nanoTime();
        if (task.equals("pretraining")) {
            return pretraining(t0);
        }
        Path data = dir.resolve("data");
        Path run = dir.resolve(retrieval ? "retrieval" : "run");
        if (!Files.exists(data.resolve("TextVQA_0.5.1_train.json"))) {
            System.out.println("1/3 generating a synthetic TextVQA in " + data + " ...");
            var summary = SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, train, val, 50, seed, 256, 192,
                    Runtime.getRuntime().availableProcessors(), SyntheticTextVqa.Look.DEMO));
            System.out.printf("    %d questions on %d images in %.1f s%n", summary.questions(), summary.images(), summary.seconds());
        } else {
            System.out.println("1/3 using the synthetic TextVQA already in " + data);
        }
        if (Files.exists(run)) {
            // a fresh run each time: the previous one is moved aside, never half-overwritten
            Path old = dir.resolve(run.getFileName() + ".previous");
            if (Files.exists(old)) {
                dev.mm4j.util.FileTrees.delete(old);
            }
            Files.move(run, old);
        }
        FinetuneSettings s = FinetuneSettings.preset(retrieval ? "demo-retrieval" : "demo");
        s.data = data.toString();
        s.out = run.toString();
        s.seed = seed;
        if (steps != null) {
            s.maxSteps = steps;
        }
        if (precision != null) {
            s.precision = precision;
        }
        if (retrieval) {
            return retrieval(s, t0);
        }
        System.out.println("2/3 fine-tuning a small FLAVA from scratch (" + s.maxSteps + " steps) ...");
        Finetuner.Result r = Finetuner.builder().settings(s).log(System.out).progressBar(true).build().run();
        if (r.stoppedOnNonFinite() || r.valAccuracy() == null) {
            return 3;
        }
        AccuracyByType t = r.byType();
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.println();
        System.out.println("3/3 result on the held-out split (" + t.overall().questions() + " questions):");
        System.out.print(TextTable.format("    ", AccuracyByType.header(), t.cells()));
        System.out.printf("    majority baseline: always \"%s\"%n", r.baselineAnswer());
        System.out.printf(Locale.ROOT, "    wall time %d:%02d (generation, training, evaluation); peak RSS %.2f GB%n",
                (long) seconds / 60, (long) seconds % 60, Hardware.peakRssBytes() / 1e9);
        System.out.println("    report: " + run.resolve("report.html") + "   curves: " + run.resolve("curves.png"));
        System.out.println("    try:    ./mm4j predict --model " + run.resolve("model") + " --image <jpg> -q \"what does the sign say?\"");
        StringBuilder result = new StringBuilder(String.format(Locale.ROOT, "accuracy %.4f%nbaseline %.4f%n", r.valAccuracy(),
                r.baselineAccuracy()));
        for (AccuracyByType.Row row : t.rows()) {
            result.append(String.format(Locale.ROOT, "accuracy[%s] %.4f%n", row.type(), row.accuracy()));
        }
        result.append(String.format(Locale.ROOT, "seconds %.1f%npeak_rss_bytes %d%n", seconds, Hardware.peakRssBytes()));
        AtomicFiles.writeString(dir.resolve("result.txt"), result.toString());
        return 0;
    }

    /** The fine-tuning budget of {@code --task pretraining} for both arms (smaller than the VQA demo's 1600 steps). */
    static final long PRETRAINING_DEMO_FINETUNE_STEPS = 300;

    /**
     * Pretraining on the three sources, then the same VQA fine-tuning from the pretrained encoders and from scratch
     * (same steps, seed and data order), side by side.
     */
    private int pretraining(long t0) throws Exception {
        Path data = dir.resolve("data");
        SyntheticPretraining.Written w;
        if (Files.exists(data.resolve(SyntheticPretraining.TEXTS_FILE)) && Files.isDirectory(data.resolve(
                SyntheticPretraining.IMAGES_DIR))) {
            System.out.println("1/4 using the synthetic data already in " + data);
            w = new SyntheticPretraining.Written(data.resolve(CaptionPairs.manifestName("train")),
                    data.resolve(SyntheticPretraining.TEXTS_FILE), data.resolve(SyntheticPretraining.IMAGES_DIR), null);
        } else {
            System.out.println("1/4 generating a synthetic TextVQA and its pretraining sources in " + data + " ...");
            w = SyntheticPretraining.generate(new SyntheticTextVqa.Options(data, train, val, 50, seed, 256, 192,
                    Runtime.getRuntime().availableProcessors(), SyntheticTextVqa.Look.DEMO));
            System.out.printf("    %d questions on %d images in %.1f s; captions with their images, the captions alone, "
                    + "the images alone%n", w.synth().questions(), w.synth().images(), w.synth().seconds());
        }
        for (String name : new String[] {"pretrain", "vqa-pretrained", "vqa-scratch"}) {
            Path run = dir.resolve(name);
            if (Files.exists(run)) {
                Path old = dir.resolve(name + ".previous");
                if (Files.exists(old)) {
                    dev.mm4j.util.FileTrees.delete(old);
                }
                Files.move(run, old);
            }
        }
        FinetuneSettings p = FinetuneSettings.preset("demo-pretraining");
        p.out = dir.resolve("pretrain").toString();
        p.seed = seed;
        if (pretrainSteps != null) {
            p.maxSteps = pretrainSteps;
        }
        if (precision != null) {
            p.precision = precision;
        }
        System.out.println("2/4 pretraining a small FLAVA from scratch (" + p.maxSteps + " steps: pairs -> contrastive + "
                + "ITM + MMM, texts -> MLM, images -> MIM) ...");
        Pretrainer.Result pre = Pretrainer.builder().settings(p).pairs(w.pairs(), 2).texts(w.texts(), 1)
                .images(w.images(), 1).log(System.out).progressBar(true).build().run();
        if (pre.status() != Finetuner.Status.COMPLETED) {
            return 3;
        }
        long budget = steps != null ? steps : PRETRAINING_DEMO_FINETUNE_STEPS;
        Finetuner.Result[] arms = new Finetuner.Result[2];
        String[] names = {"vqa-pretrained", "vqa-scratch"};
        for (int i = 0; i < 2; i++) {
            FinetuneSettings s = FinetuneSettings.preset("demo");
            s.data = data.toString();
            s.out = dir.resolve(names[i]).toString();
            s.seed = seed;
            s.maxSteps = budget;
            s.warmupSteps = Math.min(s.warmupSteps, budget / 10);
            s.evalEvery = 0;
            s.checkpointEvery = 0;
            s.checkpoint = i == 0 ? pre.modelDir().toString() : "none";
            if (precision != null) {
                s.precision = precision;
            }
            System.out.println((i == 0 ? "3/4 fine-tuning VQA from the pretrained encoders" : "4/4 fine-tuning VQA from "
                    + "scratch") + " (" + budget + " steps) ...");
            arms[i] = Finetuner.builder().settings(s).log(System.out).progressBar(true).build().run();
            if (arms[i].stoppedOnNonFinite() || arms[i].valAccuracy() == null) {
                return 3;
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.println();
        System.out.printf("VQA accuracy on the held-out split after the same %d fine-tuning steps (seed %d):%n", budget,
                seed);
        System.out.printf(Locale.ROOT, "    from the pretrained encoders (%d pretraining steps): %.2f%%%n", pre.steps(),
                100 * arms[0].valAccuracy());
        System.out.printf(Locale.ROOT, "    from scratch:                                     %.2f%%%n",
                100 * arms[1].valAccuracy());
        System.out.printf(Locale.ROOT, "    majority baseline (always \"%s\"):                %.2f%%%n",
                arms[1].baselineAnswer(), 100 * arms[1].baselineAccuracy());
        System.out.printf(Locale.ROOT, "    wall time %d:%02d (generation, pretraining, both fine-tunings); peak RSS %.2f GB%n",
                (long) seconds / 60, (long) seconds % 60, Hardware.peakRssBytes() / 1e9);
        System.out.println("    reports: " + dir.resolve("pretrain/report.html") + ", " + dir.resolve("vqa-pretrained/report.html")
                + ", " + dir.resolve("vqa-scratch/report.html"));
        AtomicFiles.writeString(dir.resolve("pretraining-result.txt"), String.format(Locale.ROOT,
                "pretrain_steps %d%nfinetune_steps %d%naccuracy_pretrained %.4f%naccuracy_scratch %.4f%nbaseline %.4f%n"
                        + "seconds %.1f%npeak_rss_bytes %d%n", pre.steps(), budget, arms[0].valAccuracy(),
                arms[1].valAccuracy(), arms[1].baselineAccuracy(), seconds, Hardware.peakRssBytes()));
        return 0;
    }

    /** Contrastive training on the captions, then the held-out recall. */
    private int retrieval(FinetuneSettings s, long t0) throws Exception {
        System.out.println("2/3 training a small FLAVA for retrieval from scratch (" + s.maxSteps + " steps, contrastive) ...");
        RetrievalFinetuner.Result r = new RetrievalFinetuner(s, System.out).run();
        if (r.recall() == null || r.steps() < s.maxSteps) {
            return 3;
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.println();
        System.out.println("3/3 text -> image retrieval among the held-out images, each image's caption as the query:");
        System.out.printf(Locale.ROOT, "    R@1 %.1f%%   R@5 %.1f%%   (%d queries over %d images; chance R@1 %.1f%%)%n",
                100 * r.recall().at1(), 100 * r.recall().at5(), r.recall().queries(), r.recall().images(),
                100.0 / r.recall().images());
        System.out.printf(Locale.ROOT, "    wall time %d:%02d (generation, training, evaluation); peak RSS %.2f GB%n",
                (long) seconds / 60, (long) seconds % 60, Hardware.peakRssBytes() / 1e9);
        Path coco = dev.mm4j.search.CocoRetrieval.writeFromManifest(dir.resolve("data"), "val");
        try (Embedder embedder = Embedder.open(r.modelDir(), null, ai.djl.Device.cpu())) {
            var cr = dev.mm4j.search.CocoRetrieval.evaluate(embedder,
                    dev.mm4j.search.CocoRetrieval.read(coco, dir.resolve("data"), 0));
            System.out.println("    COCO-style zero-shot retrieval on the held-out captions (" + coco + "):");
            System.out.print(cr.table("      "));
            System.out.println("    (the same: ./mm4j evaluate --task retrieval --model " + r.modelDir() + " --data " + coco
                    + " --images " + dir.resolve("data") + ")");
        }
        Path captions = dir.resolve("data").resolve(dev.mm4j.data.CaptionPairs.manifestName("val"));
        System.out.println("    try:    ./mm4j index --model " + r.modelDir() + " --images " + captions + " --out "
                + dir.resolve("index"));
        System.out.println("            ./mm4j search --index " + dir.resolve("index") + " \"a red sign with a white panel that says STOP\"");
        AtomicFiles.writeString(dir.resolve("retrieval-result.txt"), String.format(Locale.ROOT,
                "recall_at_1 %.4f%nrecall_at_5 %.4f%nseconds %.1f%npeak_rss_bytes %d%n", r.recall().at1(), r.recall().at5(),
                seconds, Hardware.peakRssBytes()));
        return 0;
    }

    /** Text pairs or rendered sentences: generated, fine-tuned from scratch through the unimodal head, scored. */
    private int labelled(boolean text) throws Exception {
        long t0 = System.nanoTime();
        String name = text ? "text" : "image";
        Path data = dir.resolve(name + "-data");
        Path run = dir.resolve(name);
        int nTrain = train == 12000 ? (text ? 4000 : 3000) : train;
        if (!Files.exists(data)) {
            System.out.println("1/3 generating " + (text ? "QNLI-style sentence pairs (GLUE TSV)" : "rendered sentences "
                    + "(ImageFolder, like RenderedSST2)") + " in " + data + " ...");
            var sizes = new dev.mm4j.data.SyntheticLabelled.Sizes(nTrain, val, 50);
            if (text) {
                dev.mm4j.data.SyntheticLabelled.textPairs(data, sizes, seed);
            } else {
                dev.mm4j.data.SyntheticLabelled.renderedSentences(data, sizes, 64, seed);
            }
        } else {
            System.out.println("1/3 using the data already in " + data);
        }
        if (Files.exists(run)) {
            Path old = dir.resolve(run.getFileName() + ".previous");
            if (Files.exists(old)) {
                dev.mm4j.util.FileTrees.delete(old);
            }
            Files.move(run, old);
        }
        FinetuneSettings s = FinetuneSettings.preset("demo");
        s.data = data.toString();
        s.out = run.toString();
        s.seed = seed;
        s.batchSize = 32;
        s.maxSteps = steps != null ? steps : text ? 600 : 1000;
        s.warmupSteps = 50;
        s.lr = text ? 1e-3 : 5e-4;
        s.evalEvery = 0;
        s.checkpointEvery = 0;
        s.logEvery = 50;
        if (precision != null) {
            s.precision = precision;
        }
        System.out.println("2/3 fine-tuning a small FLAVA from scratch through its " + name + " head (" + s.maxSteps
                + " steps of " + s.batchSize + ") ...");
        Finetuner f = Finetuner.builder().settings(s).log(System.out).build();
        Finetuner.Result r = f.run();
        if (r.stoppedOnNonFinite() || r.valAccuracy() == null) {
            return 3;
        }
        var full = f.lastLabelled();
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.println();
        System.out.println("3/3 result on the held-out split (" + full.metrics().count() + " examples):");
        System.out.printf(Locale.ROOT, "    accuracy %.1f%%   macro-F1 %.1f%%   majority baseline (always \"%s\") %.1f%%%n",
                100 * full.metrics().accuracy(), 100 * full.metrics().macroF1(), full.majorityClass(),
                100 * full.baselineAccuracy());
        System.out.print(full.metrics().table("    "));
        System.out.printf(Locale.ROOT, "    wall time %d:%02d (generation, training, evaluation); peak RSS %.2f GB%n",
                (long) seconds / 60, (long) seconds % 60, Hardware.peakRssBytes() / 1e9);
        System.out.println("    try:    ./mm4j evaluate --model " + r.modelDir() + " --data " + data + " --split val");
        AtomicFiles.writeString(dir.resolve(name + "-result.txt"), String.format(Locale.ROOT,
                "accuracy %.4f%nmacro_f1 %.4f%nbaseline %.4f%nseconds %.1f%npeak_rss_bytes %d%n",
                full.metrics().accuracy(), full.metrics().macroF1(), full.baselineAccuracy(), seconds,
                Hardware.peakRssBytes()));
        return 0;
    }
}
