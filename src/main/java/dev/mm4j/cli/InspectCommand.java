package dev.mm4j.cli;

import dev.mm4j.checkpoint.CheckpointFormat;
import dev.mm4j.checkpoint.Checkpoints;
import dev.mm4j.checkpoint.HostTensor;
import dev.mm4j.checkpoint.StateDict;
import dev.mm4j.checkpoint.StateDictLoader;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mm4j inspect}: a checkpoint's tensors and how it fits a FLAVA configuration. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"Lists a checkpoint's tensors (name, dtype, shape, count) — a torch.save .pt/.bin or a "
                + ".safetensors file — and the load report for a FLAVA configuration: what would load, what is "
                + "missing, unexpected, or of the wrong shape. Nothing is executed from the file.",
                "The whole file is checked first (every zip entry's CRC-32; a safetensors header that describes the "
                + "data exactly): a corrupt file is an error (exit 1)."})
public final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "the checkpoint file")
    Path checkpoint;

    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--no-tensors", description = "print only the summary and the load report")
    boolean noTensors;

    @Override
    public Integer call() throws Exception {
        CheckpointFormat format = CheckpointFormat.detect(checkpoint);
        String integrity = Checkpoints.verify(checkpoint); // the whole file; any corruption is an error (exit 1)
        try (StateDict sd = Checkpoints.read(checkpoint)) {
            long total = 0;
            if (!noTensors) {
                System.out.printf("%-80s %-9s %-20s %12s%n", "name", "dtype", "shape", "count");
            }
            for (Map.Entry<String, HostTensor> e : sd.asMap().entrySet()) {
                HostTensor t = e.getValue();
                total += t.numel();
                if (!noTensors) {
                    System.out.printf("%-80s %-9s %-20s %,12d%n", e.getKey(), t.dtype(), Arrays.toString(t.shape()), t.numel());
                }
            }
            System.out.printf("%n%s (%s): %,d tensors, %,d values%n%s%n", checkpoint, format, sd.size(), total, integrity);
            FlavaConfig config = model.load();
            FlavaForClassification flava = new FlavaForClassification(config); // names and shapes only, no memory
            StateDictLoader.Report r = StateDictLoader.check(flava, sd);
            System.out.printf("%nagainst FLAVA for classification (%,d parameters, num_classes %d):%n", flava.parameterCount(),
                    config.numClasses);
            System.out.printf("  would load: %d of %d tensors%n", r.loaded(), flava.namedParameters().size());
            print("missing (stay at their initial values)", r.missing());
            print("unexpected (ignored by a non-strict load)", r.unexpected());
            print("wrong shape (an error in any load)", r.mismatched());
            System.out.println(r.mismatched().isEmpty()
                    ? (r.isExact() ? "  → loads strictly" : "  → loads non-strictly (like the tutorial's strict=False)")
                    : "  → does not load: fix the config (e.g. --num-classes) to match the shapes");
            return r.mismatched().isEmpty() ? 0 : 1;
        }
    }

    private static void print(String title, java.util.List<String> names) {
        System.out.printf("  %s: %d%n", title, names.size());
        int shown = 0;
        for (String n : names) {
            if (shown++ == 20) {
                System.out.printf("    ... and %d more%n", names.size() - 20);
                break;
            }
            System.out.println("    " + n);
        }
    }
}
