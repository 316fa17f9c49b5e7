package dev.mm4j.spark;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Starts the Spark session a command runs in: embedded ({@code local[...]}) or the cluster spark-submit named. */
public final class SparkSessions {
    private SparkSessions() {}

    private static final Logger LOG = LoggerFactory.getLogger(SparkSessions.class);

    /** The master if none is given and spark-submit set none. */
    public static final String DEFAULT_MASTER = "local[*]";

    /**
     * A session for {@code master} ({@code local[*]}, {@code local[2]}, {@code local[2,3]} = 2 threads and up to 3
     * attempts per task, {@code local-cluster[...]}, {@code spark://...}, {@code yarn}, {@code k8s://...}). Null: the
     * master spark-submit set, else {@value #DEFAULT_MASTER}.
     *
     * <p>{@code settings} are applied as spark-submit's {@code --conf}: over the {@code spark.*} system properties
     * (spark-submit's own settings), keys not starting with {@code spark.} ignored with a warning; {@code master},
     * when given, wins over {@code spark.master}. Sessions on this machine ({@code local...}) run without the web
     * UI and bind to the loopback unless told otherwise; elsewhere Spark binds as it does by default
     * ({@code spark.driver.host} / {@code spark.driver.bindAddress} to override). {@code local-cluster[...]} needs
     * {@code SPARK_LOCAL_IP} in the environment (see {@link #checkLocalCluster}). When the executors are other
     * JVMs (anything but {@code local[...]}), the application's code is shipped to them ({@code spark.jars},
     * see {@link ApplicationJar}) unless {@code spark.jars} already carries it.
     */
    public static SparkSession open(String master, String appName, Map<String, String> settings) {
        SparkConf conf = new SparkConf(true).setAppName(appName);
        settings.forEach((k, v) -> {
            if (k.startsWith("spark.")) {
                conf.set(k, v);
            } else {
                LOG.warn("ignoring non-Spark setting --conf {}={} (Spark settings start with \"spark.\")", k, v);
            }
        });
        if (master != null) {
            conf.setMaster(master);
        } else if (!conf.contains("spark.master")) {
            conf.setMaster(DEFAULT_MASTER);
        }
        String m = conf.get("spark.master");
        if (m.startsWith("local-cluster")) {
            checkLocalCluster(m, System.getenv());
        }
        if (m.startsWith("local")) {
            conf.setIfMissing("spark.ui.enabled", "false");
            conf.setIfMissing("spark.driver.host", "127.0.0.1");
            conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
        }
        if (!inProcess(m)) {
            String jars = conf.get("spark.jars", "");
            // spark-submit puts its application jar there (the jar this code runs from)
            if (!names(jars, ApplicationJar.location(BatchPredictJob.class))) {
                Path jar = ApplicationJar.forExecutors();
                if (!names(jars, jar)) {
                    conf.set("spark.jars", jars.isBlank() ? jar.toUri().toString() : jars + "," + jar.toUri());
                }
            }
        }
        return SparkSession.builder().config(conf).getOrCreate();
    }

    /**
     * Refuses {@code local-cluster[...]} unless {@code SPARK_LOCAL_IP} is set ({@code ./mm4j} sets 127.0.0.1).
     * Its master and workers run in this JVM and its executors in JVMs the workers start, and Spark binds them all
     * (RPC, block managers, the master's and workers' web UIs, which cannot be turned off) to the address
     * {@code SPARK_LOCAL_IP} names, read from the process environment only; without it to the machine's first
     * non-loopback address and the web UIs to all interfaces.
     */
    static void checkLocalCluster(String master, Map<String, String> env) {
        String ip = env.get("SPARK_LOCAL_IP");
        if (ip == null || ip.isBlank()) {
            throw new IllegalArgumentException(master + " needs SPARK_LOCAL_IP in the environment (SPARK_LOCAL_IP=127.0.0.1, "
                    + "as ./mm4j sets it): without it Spark's in-process master and workers listen on this machine's network "
                    + "address and their web UIs on all interfaces");
        }
    }

    /** A session with no extra settings. */
    public static SparkSession open(String master, String appName) {
        return open(master, appName, Map.of());
    }

    /** Whether the comma-separated list of paths / URLs {@code jars} names the file {@code jar}. */
    static boolean names(String jars, Path jar) {
        return Arrays.stream(jars.split(",")).map(String::strip).filter(s -> !s.isEmpty())
                .anyMatch(s -> s.equals(jar.toString()) || s.equals(jar.toUri().toString()) || s.endsWith(":" + jar));
    }

    /** Whether the executors of {@code master} are this JVM ({@code local}, {@code local[...]}). */
    public static boolean inProcess(String master) {
        return master.equals("local") || master.startsWith("local[");
    }
}
