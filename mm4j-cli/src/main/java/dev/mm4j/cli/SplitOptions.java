package dev.mm4j.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** A fine-tuned model and the split to run it over: the options of evaluate, batch-predict and bench-spark. */
public final class SplitOptions {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model folder (OUT/model of finetune)")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "PATH", description = "dataset (official JSON / folder or parquet)")
    Path data;

    @Option(names = "--split", description = "split (default: ${DEFAULT-VALUE})")
    String split = "val";

    @Option(names = "--batch-size", description = "(default: ${DEFAULT-VALUE})")
    int batchSize = 8;

    public Path model() {
        return model;
    }

    public Path data() {
        return data;
    }

    public String split() {
        return split;
    }

    public int batchSize() {
        return batchSize;
    }
}
