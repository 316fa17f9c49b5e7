package dev.mm4j.cli;

import dev.mm4j.inference.Embedder;
import dev.mm4j.inference.ZeroShotClassifier;
import dev.mm4j.util.FileTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mm4j classify}: zero-shot classification of images by prompts (no training). */
@Command(name = "classify", mixinStandardHelpOptions = true,
        description = {"Zero-shot classification: scores each image against a prompt per label (FLAVA's contrastive "
                + "embeddings, cosine x exp(logit_scale), softmax over the labels) and prints the labels with probabilities."})
public final class ClassifyCommand implements Callable<Integer> {
    @Mixin SearchModelOptions model = new SearchModelOptions();

    @Option(names = "--labels", required = true, paramLabel = "A,B,...", description = "comma-separated labels")
    String labels;

    @Option(names = "--template", paramLabel = "TEXT", description = "prompt per label, {} = the label (default: ${DEFAULT-VALUE})")
    String template = "a photo of {}";

    @Parameters(arity = "1..*", paramLabel = "IMAGE", description = "JPEG/PNG images")
    List<Path> images;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        List<String> names = Arrays.stream(labels.split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
        for (Path image : images) {
            FileTrees.readableFile(image, "image");
        }
        engine.modelPrecision(); // one known value, checked before loading
        engine.configureThreads();
        try (Embedder e = engine.withAskedPrecision(model.open(engine.device()))) {
            ZeroShotClassifier c = new ZeroShotClassifier(e, names, template);
            for (Path image : images) {
                System.out.println(image);
                for (ZeroShotClassifier.Score s : c.classify(Files.readAllBytes(image), image.toString())) {
                    System.out.printf("  %-30s %6.2f%%%n", s.label(), 100 * s.probability());
                }
            }
        }
        return 0;
    }
}
