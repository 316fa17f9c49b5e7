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

    /** All ranks on this machine (127.0.0.1), two Gloo threads. */
    public static Rendezvous local(int masterPort, int rank, int worldSize, Duration timeout) {
        return new Rendezvous("127.0.0.1", masterPort, "127.0.0.1", rank, worldSize, timeout, 2);
    }
}
