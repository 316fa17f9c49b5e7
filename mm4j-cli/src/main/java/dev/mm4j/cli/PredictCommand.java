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
        description = {"Answers a question about an image with a fine-tuned model: prints the top-k answers and probabilities.",
            "A model fine-tuned on labelled text / images (finetune on GLUE TSV, ImageFolder, ...): classifies --text "
                    + "(and --text-pair), --image, or both, as its head needs; prints the top-k classes."})
public final class PredictCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model folder (OUT/model of finetune)")
    Path model;

    @Option(names = "--image", paramLabel = "FILE", description = "JPEG/PNG image (VQA; image or image+text classification)")
    Path image;

    @Option(names = {"--question", "-q"}, description = "the question (VQA)")
    String questionOption;

    @Option(names = "--text", description = "the text to classify (a model fine-tuned on labelled text or image+text)")
    String text;

    @Option(names = "--text-pair", description = "the pair's second text (e.g. QNLI's sentence after --text's question)")
    String textPair;

    /** The question, required for a VQA model. */
    String question;

    @Option(names = {"--top-k", "-k"}, description = "(default: ${DEFAULT-VALUE})")
    int k = 5;

    @Mixin EngineOptions engine = new EngineOptions();

    @Override
    public Integer call() throws Exception {
        question = questionOption;
        engine.configureThreads();
        if (LabelledEvaluation.isLabelledBundle(model)) {
            return LabelledEvaluation.predict(model, image, text, textPair, k, engine.device(), engine.modelPrecision());
        }
        if (image == null || question == null) {
            throw new IllegalArgumentException("a VQA model needs --image FILE and --question TEXT");
        }
        FileTrees.readableFile(image, "image");
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
