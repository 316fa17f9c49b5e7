package dev.mm4j.cli;

import dev.mm4j.eval.BundleEvaluation;
import dev.mm4j.eval.PredictionsWriter;
import dev.mm4j.inference.Embedder;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j evaluate}: VQA accuracy of a fine-tuned model on a split, and its predictions file. */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = {"Scores a fine-tuned model (a folder written by finetune, OUT/model) on a split with the official "
                + "VQA accuracy (normalized answers; mean over the 10 leave-one-out subsets of min(1, matches/3)) and writes "
                + "predictions as [{\"question_id\", \"answer\"}], the format of the TextVQA evaluation server."})
public final class EvaluateCommand implements Callable<Integer> {
    @Mixin SplitOptions target = new SplitOptions();

    @Option(names = "--predictions", paramLabel = "FILE", description = "where to write predictions (default: ${DEFAULT-VALUE})")
    Path predictions = Path.of("predictions.json");

    @Option(names = "--limit", description = "at most N questions (0 = all)")
    int limit;

    @Mixin EngineOptions engine = new EngineOptions();

    @Option(names = "--task", paramLabel = "vqa|classification|retrieval|zero-shot", description = {"vqa, or "
            + "classification: labelled text / images / both (GLUE TSV, CSV / JSON Lines, ImageFolder; a model from "
            + "finetune on such data): accuracy, macro-F1 and per-class figures, predictions as JSON Lines (default: what "
            + "the model was trained for);",
            "retrieval: zero-shot image -> text and text -> image recall@1/@5/@10 on a COCO-style captions file (--data "
            + "annotations/captions_*.json, --images the image folder; every caption of an image counts for it), as "
            + "TorchMultimodal's coco_zero_shot.py; zero-shot: top-1/top-5 accuracy on an ImageFolder split from prompts "
            + "(--templates FILE, --class-names FILE). Both take a bundle, a TorchMultimodal checkpoint or a Hugging Face folder."})
    String task;

    @Option(names = "--images", paramLabel = "DIR", description = "--task retrieval: the image folder (default: the "
            + "folder named after the captions file's split next to its annotations/ folder, e.g. val2017/)")
    Path images;

    @Option(names = "--templates", paramLabel = "FILE", description = "--task zero-shot: prompt templates, one per line "
            + "with {} for the class name (default: ten of OpenAI's ImageNet templates)")
    Path templates;

    @Option(names = "--class-names", paramLabel = "FILE", description = "--task zero-shot: one class name per line, in "
            + "the sorted order of the class folders (default: the folder names)")
    Path classNames;

    @Override
    public Integer call() throws Exception {
        engine.configureThreads();
        if ("classification".equals(task) || task == null && LabelledEvaluation.isLabelledBundle(target.model())) {
            return LabelledEvaluation.evaluate(target.model(), target.data(), target.split(), target.batchSize(), limit,
                    predictions.toString().equals("predictions.json") ? Path.of("predictions.jsonl") : predictions,
                    engine.device(), engine.modelPrecision());
        }
        if ("retrieval".equals(task) || "zero-shot".equals(task)) {
            try (Embedder embedder = Embedder.open(target.model(), null, engine.device())) {
                if (task.equals("retrieval")) {
                    var captions = dev.mm4j.search.CocoRetrieval.read(target.data(), images, limit);
                    var r = dev.mm4j.search.CocoRetrieval.evaluate(embedder, captions);
                    System.out.printf("zero-shot retrieval on %s (%d images, %d captions; %s):%n", target.data(),
                            r.images(), r.captions(), embedder.source());
                    System.out.print(r.table("  "));
                    return 0;
                }
                var r = dev.mm4j.search.ZeroShotEvaluation.evaluate(embedder, target.data(), target.split(),
                        classNames == null ? null : java.nio.file.Files.readAllLines(classNames).stream()
                                .map(String::strip).filter(l -> !l.isEmpty()).toList(),
                        templates == null ? dev.mm4j.search.ZeroShotEvaluation.DEFAULT_TEMPLATES
                                : dev.mm4j.search.ZeroShotEvaluation.templates(templates), limit);
                System.out.printf("zero-shot classification on %s, split %s: %s%n", target.data(), target.split(), r);
                return 0;
            }
        }
        if (task != null && !task.equals("vqa")) {
            throw new IllegalArgumentException("--task: vqa, classification, retrieval or zero-shot, got '" + task + "'");
        }
        BundleEvaluation e = BundleEvaluation.run(target.model(), target.data(), target.split(), target.batchSize(), limit, engine.device(),
                engine.modelPrecision());
        PredictionsWriter.write(predictions, e.result().predictions());
        System.out.printf("VQA accuracy %.2f%% over %d questions (%s, split %s); predictions written to %s%n",
                100 * e.result().accuracy(), e.result().count(), target.data(), target.split(), predictions);
        if (e.skipped() > 0) {
            System.out.printf("%d questions skipped (unreadable images or empty questions): %s%n", e.skipped(),
                    e.skippedByReason());
        }
        return 0;
    }
}
