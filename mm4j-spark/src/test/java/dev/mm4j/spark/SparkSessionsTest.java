package dev.mm4j.spark;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Map;
import org.junit.jupiter.api.Test;

class SparkSessionsTest {
    @Test
    void localClusterIsRefusedInOneLineWithoutSparkLocalIp() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SparkSessions.checkLocalCluster("local-cluster[2,1,1024]", Map.of("PATH", "/usr/bin")));
        assertTrue(e.getMessage().startsWith("local-cluster[2,1,1024] needs SPARK_LOCAL_IP in the environment"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        String blank = " "; // set but empty: refused as well
        assertThrows(IllegalArgumentException.class, () -> SparkSessions.checkLocalCluster("local-cluster[1,1,512]",
                Map.of("SPARK_LOCAL_IP", blank)));
        SparkSessions.checkLocalCluster("local-cluster[2,1,1024]", Map.of("SPARK_LOCAL_IP", "127.0.0.1"));
    }

    @Test
    void theTestsRunWithSparkLocalIpOnTheLoopback() {
        // the surefire configuration (root pom) sets it, for every module's tests
        assertEquals("127.0.0.1", System.getenv("SPARK_LOCAL_IP"));
    }
}
