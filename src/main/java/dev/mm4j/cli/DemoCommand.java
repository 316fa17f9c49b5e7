package dev.mm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.mm4j.data.SyntheticTextVqa;
import dev.mm4j.train.FinetuneSettings;
import dev.mm4j.train.Finetuner;
import dev.mm4j.util.AtomicFiles;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mm4j demo}: the whole job on generated data, offline, in minutes on 2 CPU cores. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"End to end with no downloads: generates a synthetic TextVQA (signs with rendered words; questions "
                + "about the word and its colours), fine-tunes a small FLAVA on it from scratch, evaluates on the held-out "
                + "split and prints VQA accuracy next to the majority-answer baseline. Writes DIR/run/report.html "
                + "(curves + sample images with question, prediction and human answers)."})
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--dir", description = "working folder (default: ${DEFAULT-VALUE})")
    Path dir = Path.of("runs/demo");

    @Option(names = "--steps", description = "optimizer steps (default: ${DEFAULT-VALUE})")
    long steps = 1200;

    @Option(names = "--train", description = "training questions to generate (default: ${DEFAULT-VALUE}, on about 9000 images)")
    int train = 12000;

    @Option(names = "--val", description = "validation images (default: ${DEFAULT-VALUE})")
    int val = 400;

    @Option(names = "--seed", description = "(default: ${DEFAULT-VALUE})")
    long seed = 7;

    /**
     * An easier scene than the synth default, so that a small ViT trained from scratch learns to read in a
     * few minutes: a big sign (font 30-40% of the image height, so the word stays legible at the model's
     * input size), near the centre (within 20% of the free room, so the word lands on about the same patches
     * and the ViT need not learn translation invariance first), no distractor shapes (a plain background
     * where the default draws 3-8 shapes) and one text style (upper case, bold sans-serif: thick strokes, so
     * "what colour is the word?" is learned as well as the sign's colour).
     */
    static final SyntheticTextVqa.Look DEMO_LOOK = SyntheticTextVqa.Look.DEFAULT.withTextScale(0.30, 0.40)
            .withMaxDistractors(0).withPositionJitter(0.2).withOneTextStyle(true);

    @Override
    public Integer call() throws Exception {
        Path data = dir.resolve("data");
        Path run = dir.resolve("run");
        if (!Files.exists(data.resolve("TextVQA_0.5.1_train.json"))) {
            System.out.println("1/3 generating a synthetic TextVQA in " + data + " ...");
            var summary = SyntheticTextVqa.generate(new SyntheticTextVqa.Options(data, train, val, 50, seed, 256, 192,
                    java.lang.Runtime.getRuntime().availableProcessors(), DEMO_LOOK));
            System.out.printf("    %d questions on %d images in %.1f s%n", summary.questions(), summary.images(), summary.seconds());
        } else {
            System.out.println("1/3 using the synthetic TextVQA already in " + data);
        }
        if (Files.exists(run)) {
            // a fresh run each time: the previous one is moved aside, never half-overwritten
            Path old = dir.resolve("run.previous");
            if (Files.exists(old)) {
                dev.mm4j.util.FileTrees.delete(old);
            }
            Files.move(run, old);
        }
        FinetuneSettings s = FinetuneSettings.preset("demo");
        s.data = data.toString();
        s.out = run.toString();
        s.maxSteps = steps;
        s.seed = seed;
        try (InputStream in = DemoCommand.class.getResourceAsStream("/dev/mm4j/demo-model.yaml")) {
            @SuppressWarnings("unchecked")
            Map<String, Object> model = new ObjectMapper(new YAMLFactory()).readValue(in, Map.class);
            s.model = model;
        }
        System.out.println("2/3 fine-tuning a small FLAVA from scratch (" + steps + " steps) ...");
        Finetuner.Result r = new Finetuner(s, System.out).run(false);
        if (r.stoppedOnNonFinite() || r.valAccuracy() == null) {
            return 3;
        }
        System.out.println();
        System.out.println("3/3 result on the held-out split:");
        System.out.printf("    VQA accuracy      %6.2f%%%n", 100 * r.valAccuracy());
        System.out.printf("    majority baseline %6.2f%%  (always \"%s\")%n", 100 * r.baselineAccuracy(), r.baselineAnswer());
        System.out.println("    report: " + run.resolve("report.html") + "   curves: " + run.resolve("curves.png"));
        System.out.println("    try:    ./mm4j predict --model " + run.resolve("model") + " --image <jpg> -q \"what does the sign say?\"");
        AtomicFiles.writeString(dir.resolve("result.txt"), String.format("accuracy %.4f%nbaseline %.4f%n", r.valAccuracy(),
                r.baselineAccuracy()));
        return 0;
    }
}
