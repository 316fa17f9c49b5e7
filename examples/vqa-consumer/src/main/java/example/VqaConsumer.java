package example;

import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.inference.Answer;
import dev.mm4j.inference.VqaModel;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.Preset;
import dev.mm4j.train.TrainingListener;
import dev.mm4j.util.FileTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Multimodal4J from a Java application: generates a small synthetic TextVQA, fine-tunes the demo's tiny FLAVA for
 * a few steps, and answers a question about one of its images with the exported model. Exit code 1 when the loss
 * is not a number or the model gives no answer.
 */
public final class VqaConsumer {
    private VqaConsumer() {}

    public static void main(String[] args) throws Exception {
        Path work = Path.of(args.length > 0 ? args[0] : "target/work");
        if (Files.exists(work)) {
            FileTrees.delete(work); // a fresh run each time
        }
        Path data = work.resolve("data");
        SyntheticTextVqa.Summary generated = SyntheticTextVqa.generate(
                SyntheticTextVqa.Options.of(data, 64, 16, 4, 7).withLook(SyntheticTextVqa.Look.DEMO));
        System.out.printf("generated %d questions on %d images%n", generated.questions(), generated.images());

        // fine-tuning through the training API: the demo preset's small model, from scratch, a few steps
        Finetuner.Result r = Finetuner.builder()
                .preset(Preset.DEMO)
                .data(data)
                .outputDir(work.resolve("run"))
                .maxSteps(4)
                .batchSize(8)
                .set("warmup_steps", 0)
                .set("eval_every", 0)
                .set("checkpoint_every", 0)
                .listener(new TrainingListener() {
                    @Override
                    public void onStep(Step step) {
                        System.out.printf("step %d loss %.4f%n", step.index(), step.loss());
                    }
                })
                .build()
                .run();
        double lastLoss = r.losses().get(r.losses().size() - 1);
        System.out.printf("trained %d steps: first loss %.4f, last loss %.4f, validation accuracy %s%n", r.steps(),
                r.losses().get(0), lastLoss, r.valAccuracy() == null ? "-" : String.format("%.4f", r.valAccuracy()));

        // prediction: the exported model bundle, through VqaModel (mm4j-inference)
        Path image;
        try (Stream<Path> images = Files.list(data.resolve("train_images"))) {
            image = images.filter(p -> p.toString().endsWith(".jpg")).sorted().findFirst().orElseThrow();
        }
        String question = "what does the sign say?";
        List<Answer> answers;
        try (VqaModel model = VqaModel.load(r.modelDir())) {
            answers = model.answer(Files.readAllBytes(image), question, 3);
        }
        System.out.printf("%s: \"%s\"%n", image.getFileName(), question);
        for (Answer a : answers) {
            System.out.printf("  %-12s %.4f%n", a.answer(), a.probability());
        }
        if (!Double.isFinite(lastLoss) || answers.isEmpty()) {
            System.err.println("example failed: loss " + lastLoss + ", " + answers.size() + " answers");
            System.exit(1);
        }
    }
}
