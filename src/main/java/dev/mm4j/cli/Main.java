package dev.mm4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code mm4j} launcher: one command per job. */
@Command(
        name = "mm4j",
        mixinStandardHelpOptions = true,
        version = "Multimodal4J 0.1.0",
        description = "FLAVA on the JVM: load PyTorch checkpoints, fine-tune on TextVQA, evaluate, predict.",
        subcommands = {CommandLine.HelpCommand.class, InspectCommand.class, BenchCommand.class, DownloadCommand.class, SynthCommand.class, ShowCommand.class, BenchLoaderCommand.class, BenchLoadCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        int rc = new CommandLine(new Main()).setCaseInsensitiveEnumValuesAllowed(true).execute(args);
        System.exit(rc);
    }
}
