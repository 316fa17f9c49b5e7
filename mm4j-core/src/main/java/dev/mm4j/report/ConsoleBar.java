package dev.mm4j.report;

import java.io.PrintStream;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * A progress bar drawn on a console: {@link ProgressReporter}'s BAR mode. The core module draws none (a library
 * should not own its host's terminal): the CLI module installs one ({@code me.tongfei:progressbar}) through
 * {@link ServiceLoader}; without one, BAR mode prints the plain lines instead.
 */
public interface ConsoleBar extends AutoCloseable {

    void stepTo(long value);

    /** The text shown after the counts ("" for none). */
    void setExtraMessage(String message);

    @Override
    void close();

    /** Opens bars; see {@link ProgressReporter#ProgressReporter} for the parameters. */
    interface Factory {
        ConsoleBar open(String task, long total, String unit, long unitSize, long start, PrintStream out);
    }

    /** The installed factory, if any. */
    static Optional<Factory> installed() {
        return ServiceLoader.load(Factory.class, Factory.class.getClassLoader()).findFirst();
    }
}
