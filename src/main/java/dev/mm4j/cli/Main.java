package dev.mm4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code mm4j} launcher: one command per job. */
@Command(
        name = "mm4j",
        mixinStandardHelpOptions = true,
        version = "Multimodal4J 0.1.0",
        description = "FLAVA on the JVM: load PyTorch checkpoints, fine-tune on TextVQA, evaluate, predict.",
        subcommands = {CommandLine.HelpCommand.class, DemoCommand.class, FinetuneCommand.class, EvaluateCommand.class,
                PredictCommand.class, InspectCommand.class, DownloadCommand.class, SynthCommand.class, ShowCommand.class,
                BenchCommand.class, BenchLoadCommand.class, BenchLoaderCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        dev.mm4j.util.Runtime.quietGpuProbeUnlessAsked(args);
        System.exit(commandLine().execute(args));
    }

    /** The launcher's command line: usage errors (bad options, IllegalArgumentException) exit 2, failures 1. */
    static CommandLine commandLine() {
        return new CommandLine(new Main())
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setExecutionExceptionHandler((e, cmd, parsed) -> {
                    // a clear one-line message; the stack trace only when asked for
                    cmd.getErr().println("error: " + (e.getMessage() != null ? e.getMessage() : e.toString()));
                    if (System.getenv("MM4J_DEBUG") != null) {
                        e.printStackTrace(cmd.getErr());
                    } else {
                        cmd.getErr().println("(set MM4J_DEBUG=1 for the stack trace)");
                    }
                    return e instanceof IllegalArgumentException ? 2 : 1;
                });
    }
}
