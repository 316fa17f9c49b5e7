package dev.mm4j.train.dist;

import java.time.Duration;

/**
 * Where the ranks of one data-parallel run meet (PyTorch's {@code MASTER_ADDR}/{@code MASTER_PORT}, {@code RANK},
 * {@code WORLD_SIZE}): rank 0 serves the rendezvous store on {@code masterAddr:masterPort}; every rank reaches its
 * peers from {@code selfAddr} (its own address on the network the ranks share).
 *
 * @param timeout how long a rank waits for the others (rendezvous, and every collective) before it fails
 * @param threads Gloo's threads per process
 */
public record Rendezvous(String masterAddr, int masterPort, String selfAddr, int rank, int worldSize, Duration timeout,
        int threads) {

    public Rendezvous {
        if (worldSize < 1) {
            throw new IllegalArgumentException("world size must be at least 1, not " + worldSize);
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " is outside 0.." + (worldSize - 1));
        }
        if (masterPort < 1 || masterPort > 65535) {
            throw new IllegalArgumentException("master port " + masterPort + " is outside 1..65535");
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, not " + timeout);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, not " + threads);
        }
    }

    /** The environment variables a launcher sets for each rank (torchrun's names, plus mm4j's own). */
    public static final String RANK = "RANK";
    public static final String WORLD_SIZE = "WORLD_SIZE";
    public static final String MASTER_ADDR = "MASTER_ADDR";
    public static final String MASTER_PORT = "MASTER_PORT";
    /** This rank's own address for Gloo (default: MASTER_ADDR when that is a loopback address, else this host's). */
    public static final String SELF_ADDR = "MM4J_DIST_SELF_ADDR";
    /** Seconds a rank waits for the others (default {@link #DEFAULT_TIMEOUT}). */
    public static final String TIMEOUT = "MM4J_DIST_TIMEOUT_S";
    /** Gloo's threads per process (default 2). */
    public static final String THREADS = "MM4J_GLOO_THREADS";

    /** PyTorch's default for Gloo process groups (30 minutes). */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(30);

    /**
     * The rendezvous a launcher described in the environment ({@link #RANK}, {@link #WORLD_SIZE},
     * {@link #MASTER_ADDR}, {@link #MASTER_PORT}; optional {@link #SELF_ADDR}, {@link #TIMEOUT}, {@link #THREADS}), or
     * null when {@code RANK} is not set (a single process).
     *
     * @throws IllegalArgumentException naming the variable that is missing or wrong
     */
    public static Rendezvous fromEnvironment(java.util.Map<String, String> env) {
        if (env.get(RANK) == null) {
            return null;
        }
        String master = required(env, MASTER_ADDR);
        String self = env.get(SELF_ADDR);
        if (self == null) {
            try {
                self = java.net.InetAddress.getByName(master).isLoopbackAddress()
                        ? master : java.net.InetAddress.getLocalHost().getHostAddress();
            } catch (java.net.UnknownHostException e) {
                throw new IllegalArgumentException(MASTER_ADDR + "=" + master + ": unknown host", e);
            }
        }
        String timeout = env.get(TIMEOUT);
        String threads = env.get(THREADS);
        return new Rendezvous(master, integer(env, MASTER_PORT, required(env, MASTER_PORT)), self,
                integer(env, RANK, required(env, RANK)), integer(env, WORLD_SIZE, required(env, WORLD_SIZE)),
                timeout == null ? DEFAULT_TIMEOUT : Duration.ofSeconds(integer(env, TIMEOUT, timeout)),
                threads == null ? 2 : integer(env, THREADS, threads));
    }

    private static String required(java.util.Map<String, String> env, String name) {
        String v = env.get(name);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException("distributed training: " + name + " is not set (a launcher sets "
                    + RANK + ", " + WORLD_SIZE + ", " + MASTER_ADDR + " and " + MASTER_PORT + " for each rank)");
        }
        return v.trim();
    }

    private static int integer(java.util.Map<String, String> env, String name, String value) {
        try {
            return Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("distributed training: " + name + "=" + value + " is not an integer");
        }
    }

    /** All ranks on this machine (127.0.0.1), two Gloo threads. */
    public static Rendezvous local(int masterPort, int rank, int worldSize, Duration timeout) {
        return new Rendezvous("127.0.0.1", masterPort, "127.0.0.1", rank, worldSize, timeout, 2);
    }
}
