package dev.mm4j.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Option;

/** spark-submit's {@code --conf key=value} for the Spark commands (a picocli mixin). */
public final class SparkConfOptions {
    @Option(names = "--conf", paramLabel = "KEY=VALUE", description = "a Spark setting, as spark-submit's --conf "
            + "(repeatable): e.g. spark.executor.memory=4g, spark.executor.cores=2, spark.task.cpus=2, "
            + "spark.driver.host=HOST, spark.eventLog.enabled=true; keys not starting with spark. are ignored")
    Map<String, String> conf = new LinkedHashMap<>();

    /** The settings given, in order. */
    public Map<String, String> settings() {
        return conf;
    }
}
