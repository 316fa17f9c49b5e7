package dev.mm4j.cli;

import dev.mm4j.data.SyntheticTextVqa;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mm4j synth}: writes a synthetic TextVQA in the official layout. */
@Command(
        name = "synth",
        mixinStandardHelpOptions = true,
        description = {
            "Write a synthetic TextVQA in the official layout: TextVQA_0.5.1_{train,val,test}.json,",
            "train_images/ (train+val) and test_images/ JPEGs, and answers.txt (line 0 = <unk>).",
            "Signs with one word in various fonts/colours; questions about the word and the colours.",
            "Same seed, same files. Also annotations/captions_{train,val}.json: the signs' captions in COCO's format "
                    + "(evaluate --task retrieval --data DIR/annotations/captions_val.json --images DIR)."})
public final class SynthCommand implements Callable<Integer> {

    @Option(names = "--out", required = true, description = "output folder (created)")
    Path out;

    @Option(names = "--train", defaultValue = "2000", description = "train questions (default ${DEFAULT-VALUE})")
    int train;

    @Option(names = "--val", defaultValue = "500", description = "val questions (default ${DEFAULT-VALUE})")
    int val;

    @Option(names = "--test", defaultValue = "500", description = "test questions, without answers (default ${DEFAULT-VALUE})")
    int test;

    @Option(names = "--seed", defaultValue = "42", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--width", defaultValue = "256", description = "image width (default ${DEFAULT-VALUE}; the release is ~1024)")
    int width;

    @Option(names = "--height", defaultValue = "192", description = "image height (default ${DEFAULT-VALUE}; the release is ~768)")
    int height;

    @Option(names = "--threads", description = "rendering threads (default: cores)")
    Integer threads;

    @Option(names = "--text-scale-min", defaultValue = "0.10",
            description = "smallest font size, as a fraction of the image height (default ${DEFAULT-VALUE})")
    double textScaleMin;

    @Option(names = "--text-scale-max", defaultValue = "0.24",
            description = "largest font size, as a fraction of the image height (default ${DEFAULT-VALUE})")
    double textScaleMax;

    @Option(names = "--max-distractors", defaultValue = "-1",
            description = "random shapes on a 'shapes' background: 0 to N, or -1 for the default 3 to 8 (default ${DEFAULT-VALUE})")
    int maxDistractors;

    @Option(names = "--position-jitter", defaultValue = "1.0",
            description = "how far the sign may be from the centre, as a fraction of the room around it: 1 = anywhere, 0 = centred (default ${DEFAULT-VALUE})")
    double positionJitter;

    @Option(names = "--one-text-style", description = "write every word in upper case, bold sans-serif (default: 4 fonts x 4 styles x 3 cases)")
    boolean oneTextStyle;

    @Option(names = "--white-panel", description = "write the word on a white panel in a coloured sign (default: straight on the sign's colour)")
    boolean whitePanel;

    @Option(names = "--task", paramLabel = "vqa|text|image", description = {"vqa (default): the synthetic TextVQA above; "
            + "text: a GLUE-style TSV sentence-pair set in QNLI's layout (train.tsv, dev.tsv, test.tsv without labels: "
            + "question, sentence, entailment when the sentence answers that kind of question); image: positive / "
            + "negative words rendered as images in torchvision's ImageFolder layout (train|val|test/negative|positive/), "
            + "like RenderedSST2. --train/--val/--test count examples; both balanced (majority baseline 50%)"})
    String task = "vqa";

    @Option(names = "--size", defaultValue = "64", description = "--task image: image side in pixels (default ${DEFAULT-VALUE})")
    int size;

    @Override
    public Integer call() throws Exception {
        if (!task.equals("vqa")) {
            long t0 = System.nanoTime();
            var sizes = new dev.mm4j.data.SyntheticLabelled.Sizes(train, val, test);
            switch (task) {
                case "text" -> dev.mm4j.data.SyntheticLabelled.textPairs(out, sizes, seed);
                case "image" -> dev.mm4j.data.SyntheticLabelled.renderedSentences(out, sizes, size, seed);
                default -> throw new IllegalArgumentException("--task: vqa, text or image, got '" + task + "'");
            }
            System.out.printf(Locale.ROOT, "wrote %d/%d/%d %s examples (train/val/test) to %s in %.1f s%n", train, val, test,
                    task.equals("text") ? "sentence-pair" : "rendered-sentence", out, (System.nanoTime() - t0) / 1e9);
            return 0;
        }
        int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        SyntheticTextVqa.Summary s = SyntheticTextVqa.generate(
                new SyntheticTextVqa.Options(out, train, val, test, seed, width, height, t,
                        new SyntheticTextVqa.Look(textScaleMin, textScaleMax, maxDistractors, positionJitter, oneTextStyle, whitePanel)));
        for (String split : new String[] {"train", "val"}) {
            if (java.nio.file.Files.isRegularFile(out.resolve(dev.mm4j.data.CaptionPairs.manifestName(split)))) {
                dev.mm4j.search.CocoRetrieval.writeFromManifest(out, split); // annotations/captions_SPLIT.json
            }
        }
        System.out.printf(Locale.ROOT, "wrote %d questions on %d images (%.1f MB of JPEG) to %s in %.1f s (%.0f images/s)%n",
                s.questions(), s.images(), s.jpegBytes() / 1e6, out, s.seconds(), s.imagesPerSecond());
        return 0;
    }
}
