package dev.mm4j.cli;

import dev.mm4j.checkpoint.Checkpoints;
import dev.mm4j.checkpoint.HfFlavaLayout;
import dev.mm4j.checkpoint.HostTensor;
import dev.mm4j.checkpoint.PretrainedCheckpoint;
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
                + ".safetensors file, a sharded checkpoint's *.index.json, or a Hugging Face model folder — its layout "
                + "(TorchMultimodal, or Hugging Face transformers' FLAVA: what is mapped to our names and what is "
                + "ignored on purpose), and the load report for a FLAVA configuration (by default the HF folder's "
                + "config.json, else full size): what would load, what is missing, unexpected, or of the wrong shape. "
                + "Nothing is executed from the file.",
                "The whole file is checked first (every zip entry's CRC-32; a safetensors header that describes the "
                + "data exactly; every shard of an index): a corrupt file is an error (exit 1)."})
public final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "checkpoint file, *.index.json or model folder")
    Path checkpoint;

    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--no-tensors", description = "print only the summary and the load report")
    boolean noTensors;

    @Override
    public Integer call() throws Exception {
        String integrity = Checkpoints.verify(checkpoint); // the whole file; any corruption is an error (exit 1)
        try (PretrainedCheckpoint ck = PretrainedCheckpoint.open(checkpoint)) {
            StateDict sd = ck.tensors();
            long total = 0;
            if (!noTensors) {
                System.out.printf("%-80s %-13s %-20s %12s%n", "name", "dtype", "shape", "count");
            }
            for (Map.Entry<String, HostTensor> e : sd.asMap().entrySet()) {
                HostTensor t = e.getValue();
                total += t.numel();
                if (!noTensors) {
                    System.out.printf("%-80s %-13s %-20s %,12d%n", e.getKey(), t.dtype(), Arrays.toString(t.shape()), t.numel());
                }
            }
            System.out.printf("%n%s (%s): %,d tensors, %,d values%n%s%n", checkpoint, ck.format(), sd.size(), total, integrity);
            System.out.printf("layout: %s%n", ck.layout());
            HfFlavaLayout.Mapping m = ck.mapping();
            if (m != null) {
                System.out.printf("  mapped to TorchMultimodal names: %d tensors%n", m.renamed().size());
                System.out.printf("  ignored on purpose: %d%n", m.ignoredCount());
                m.ignored().forEach((why, names) -> {
                    System.out.printf("    %s: %d%n", why, names.size());
                    names.stream().limit(3).forEach(n -> System.out.println("      " + n));
                    if (names.size() > 3) System.out.printf("      ... and %d more%n", names.size() - 3);
                });
            }
            Path hfConfig = PretrainedCheckpoint.hfConfigFile(checkpoint);
            Path tokenizer = PretrainedCheckpoint.tokenizerFile(checkpoint);
            FlavaConfig config = model.load(PretrainedCheckpoint.config(checkpoint, FlavaConfig.fullSize(FlavaConfig.TEXTVQA_CLASSES)));
            if (hfConfig != null) {
                System.out.printf("config: sizes and layer-norm eps from %s%s%n", hfConfig,
                        model.config != null ? " (overridden by --config)" : "");
            }
            if (tokenizer != null) {
                System.out.printf("tokenizer: %s%n", tokenizer);
            }
            FlavaForClassification flava = new FlavaForClassification(config); // names and shapes only, no memory
            if (m != null) { // names the mapping leaves alone are loaded as they are: TorchMultimodal's own load
                java.util.Set<String> ours = flava.namedParameters().keySet();
                print("already TorchMultimodal names (pass through and load)", m.unknown().stream().filter(ours::contains).toList());
                print("not understood (unexpected in the load)", m.unknown().stream().filter(n -> !ours.contains(n)).toList());
            }
            StateDictLoader.Report r = ck.check(flava).load();
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
