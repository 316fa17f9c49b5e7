package dev.mm4j.cli.charts;

import dev.mm4j.report.ConsoleBar;
import java.io.PrintStream;
import java.time.Duration;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** The console bars of the CLI ({@code me.tongfei:progressbar}): ASCII, rate and ETA, updated twice a second. */
public final class ConsoleBars implements ConsoleBar.Factory {

    @Override
    public ConsoleBar open(String task, long total, String unit, long unitSize, long start, PrintStream out) {
        ProgressBarBuilder b = new ProgressBarBuilder()
                .setTaskName(task)
                .setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(500)
                .setConsumer(new ConsoleProgressBarConsumer(out))
                .startsFrom(start, Duration.ZERO)
                .showSpeed();
        if (unitSize > 1) b.setUnit(" " + unit, unitSize);
        ProgressBar bar = b.build();
        return new ConsoleBar() {
            @Override
            public void stepTo(long value) {
                bar.stepTo(value);
            }

            @Override
            public void setExtraMessage(String message) {
                bar.setExtraMessage(message.isEmpty() ? "" : " " + message);
            }

            @Override
            public void close() {
                bar.close();
            }
        };
    }
}
