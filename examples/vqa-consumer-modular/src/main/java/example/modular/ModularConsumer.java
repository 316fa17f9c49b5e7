package example.modular;

import ai.djl.Device;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.inference.Answer;
import dev.mm4j.inference.Embedder;
import dev.mm4j.inference.VqaModel;
import dev.mm4j.train.Finetuner;
import dev.mm4j.train.Preset;
import dev.mm4j.util.FileTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Multimodal4J from a named module: generates a small synthetic TextVQA, fine-tunes the demo preset's tiny FLAVA
 * (its settings and the BERT tokenizer are resources of mm4j-core) for a few steps from scratch, and answers a
 * question with the exported model through {@link VqaModel}, then embeds the image and the question with
 * {@link Embedder} (what a search client needs). Exit code 1 when it does not run on the module path, the loss is not
 * a number, the model gives no answer or an embedding is not unit length.
 */
public final class ModularConsumer {
    private ModularConsumer() {}

    public static void main(String[] args) throws Exception {
        System.out.printf("module %s reads %s and %s%n", ModularConsumer.class.getModule().getName(),
                VqaModel.class.getModule().getName(), Finetuner.class.getModule().getName());
        if (!ModularConsumer.class.getModule().isNamed() || !VqaModel.class.getModule().isNamed()) {
            System.err.println("example failed: not running on the module path");
            System.exit(1);
        }
        Path work = Path.of(args.length > 0 ? args[0] : "target/work");
        if (Files.exists(work)) {
            FileTrees.delete(work); // a fresh run each time
        }
        Path data = work.resolve("data");
        SyntheticTextVqa.generate(SyntheticTextVqa.Options.of(data, 32, 8, 4, 7).withLook(SyntheticTextVqa.Look.DEMO));

        Finetuner.Result r = Finetuner.builder()
                .preset(Preset.DEMO)
                .data(data)
                .outputDir(work.resolve("run"))
                .maxSteps(2)
                .batchSize(8)
                .set("warmup_steps", 0)
                .set("eval_every", 0)
                .set("checkpoint_every", 0)
                .build()
                .run();
        double lastLoss = r.losses().get(r.losses().size() - 1);
        System.out.printf("trained %d steps: last loss %.4f%n", r.steps(), lastLoss);

        Path image;
        try (Stream<Path> images = Files.list(data.resolve("train_images"))) {
            image = images.filter(p -> p.toString().endsWith(".jpg")).sorted().findFirst().orElseThrow();
        }
        List<Answer> answers;
        try (VqaModel model = VqaModel.load(r.modelDir())) {
            answers = model.answer(Files.readAllBytes(image), "what does the sign say?", 3);
        }
        for (Answer a : answers) {
            System.out.printf("  %-12s %.4f%n", a.answer(), a.probability());
        }
        float[] imageVector;
        float[] textVector;
        try (Embedder embedder = Embedder.open(r.modelDir(), null, Device.cpu())) {
            imageVector = embedder.images(List.of(Files.readAllBytes(image)), List.of(image.toString()))[0];
            textVector = embedder.texts(List.of("what does the sign say?"))[0];
        }
        double norm = Math.sqrt(Embedder.cosine(imageVector, imageVector));
        System.out.printf("embeddings: %d dimensions, image-text cosine %.4f%n", imageVector.length,
                Embedder.cosine(imageVector, textVector));
        if (!Double.isFinite(lastLoss) || answers.isEmpty() || Math.abs(norm - 1) > 1e-3) {
            System.err.println("example failed: loss " + lastLoss + ", " + answers.size() + " answers, norm " + norm);
            System.exit(1);
        }
    }
}
