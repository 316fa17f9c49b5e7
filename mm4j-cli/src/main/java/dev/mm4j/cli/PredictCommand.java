package dev.mm4j.cli;

import dev.mm4j.inference.Answer;
import dev.mm4j.inference.VqaModel;
import dev.mm4j.util.FileTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code mm4j predict}: an image and a question in, the top-k answers with probabilities out. */
@Command(name = "predict", mixinStandardHelpOptions = true,
        description = "Answers a question about an image with a fine-tuned model: prints the top-k answers and probabilities.")
public final class PredictCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model folder (OUT/model of finetune)")
    Path model;

    @Option(names = "--image", required = true, paramLabel = "FILE", description = "JPEG/PNG image")
    Path image;

    @Option(names = {"--question", "-q"}, required = true, description = "the question")
    String question;

    @Option(names = {"--top-k", "-k"}, description = "(default: ${DEFAULT-VALUE})")
    int k = 5;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        FileTrees.readableFile(image, "image");
        engine.configureThreads();
        try (VqaModel m = VqaModel.load(model, engine.device(), new VqaModel.Options(0, VqaModel.Options.defaults().maxPixels()),
                engine.modelPrecision())) {
            System.out.println("Q: " + question);
            for (Answer a : m.answer(Files.readAllBytes(image), question, k)) {
                System.out.printf("  %-30s %6.2f%%%n", a.answer(), 100 * a.probability());
            }
        }
        return 0;
    }
}
