package dev.mm4j.cli;

import dev.mm4j.util.Hardware;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code mm4j} launcher: one command per job. */
@Command(
        name = "mm4j",
        mixinStandardHelpOptions = true,
        version = "Multimodal4J 0.1.0",
        description = "FLAVA on the JVM: load PyTorch checkpoints, fine-tune on TextVQA, evaluate, predict.",
        footer = {"", "Apache Spark commands (batch-predict, bench-spark) live in the Spark build, target/mm4j-spark.jar;",
                "./mm4j builds and uses it for them (see README, Scaling)."},
        subcommands = {CommandLine.HelpCommand.class, DemoCommand.class, FinetuneCommand.class, EvaluateCommand.class,
                PredictCommand.class, ClassifyCommand.class, IndexCommand.class, SearchCommand.class, ServeCommand.class, BenchServeCommand.class, InspectCommand.class, DownloadCommand.class, SynthCommand.class, ShowCommand.class,
                BenchCommand.class, BenchLoadCommand.class, BenchLoaderCommand.class, BenchSearchCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /**
     * Runs one command line and returns its exit code (usage 2, failure 1). {@code extraCommands} are
     * subcommands added to the core ones: the Spark jar's {@code dev.mm4j.cli.SparkMain} passes batch-predict and
     * bench-spark, which the core jar does not have.
     */
    public static int execute(String[] args, Object... extraCommands) {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        Hardware.quietGpuProbeUnlessAsked(args);
        CommandLine cl = commandLine();
        for (Object c : extraCommands) {
            cl.addSubcommand(c);
        }
        return cl.execute(args);
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
