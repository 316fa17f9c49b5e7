package dev.mm4j.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/** Starts the Spark session a command runs in: embedded ({@code local[...]}) or the cluster spark-submit named. */
public final class SparkSessions {
    private SparkSessions() {}

    /**
     * A session for {@code master} ({@code local[*]}, {@code local[2]}, {@code local[2,3]} = 2 threads and up to 3
     * attempts per task, {@code spark://...}, {@code yarn}, {@code k8s://...}). Null: the master spark-submit
     * set, else {@code local[*]}. Embedded (local) sessions run without the web UI and bind to the loopback.
     */
    public static SparkSession open(String master, String appName) {
        SparkConf conf = new SparkConf(true).setAppName(appName);
        if (master != null) {
            conf.setMaster(master);
        } else if (!conf.contains("spark.master")) {
            conf.setMaster("local[*]");
        }
        if (conf.get("spark.master").startsWith("local")) {
            conf.setIfMissing("spark.ui.enabled", "false");
            conf.setIfMissing("spark.driver.host", "127.0.0.1");
            conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
        }
        return SparkSession.builder().config(conf).getOrCreate();
    }
}
