package dev.mm4j.train.dist;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Starts the ranks of a data-parallel run on this machine, like {@code torchrun --nproc_per_node N}: N processes of the
 * same command, each with {@link Rendezvous#RANK}, {@link Rendezvous#WORLD_SIZE}, {@link Rendezvous#MASTER_ADDR}
 * (127.0.0.1), {@link Rendezvous#MASTER_PORT} (a free port) and {@link Rendezvous#TIMEOUT} in its environment; their
 * output goes to this process's. When a rank fails, the others fail on their own within the timeout (a collective
 * with a dead peer fails); any still running after the timeout and a grace period are killed.
 */
public final class Launcher {
    private static final Duration GRACE = Duration.ofSeconds(30);

    private Launcher() {}

    /**
     * Runs {@code command} as {@code nproc} ranks and waits for them.
     *
     * @return 0 when every rank ended with 0, else the first failing rank's exit code
     */
    public static int run(List<String> command, int nproc, Duration timeout, Map<String, String> extraEnv,
            PrintStream log) throws IOException, InterruptedException {
        if (nproc < 1) {
            throw new IllegalArgumentException("--nproc must be at least 1, not " + nproc);
        }
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        log.printf("launching %d processes on 127.0.0.1 (rendezvous port %d; a rank that dies stops the others "
                + "within %d s)%n", nproc, port, timeout.toSeconds());
        List<Process> ranks = new ArrayList<>();
        try {
            for (int r = 0; r < nproc; r++) {
                ProcessBuilder pb = new ProcessBuilder(command).inheritIO();
                Map<String, String> env = pb.environment();
                env.putAll(extraEnv);
                env.put(Rendezvous.RANK, String.valueOf(r));
                env.put(Rendezvous.WORLD_SIZE, String.valueOf(nproc));
                env.put(Rendezvous.MASTER_ADDR, "127.0.0.1");
                env.put(Rendezvous.MASTER_PORT, String.valueOf(port));
                env.put(Rendezvous.TIMEOUT, String.valueOf(timeout.toSeconds()));
                ranks.add(pb.start());
            }
            int firstFailure = 0;
            long failedAt = 0;
            while (true) {
                boolean running = false;
                for (int r = 0; r < ranks.size(); r++) {
                    Process p = ranks.get(r);
                    if (p.isAlive()) {
                        running = true;
                    } else if (p.exitValue() != 0 && firstFailure == 0) {
                        firstFailure = p.exitValue();
                        failedAt = System.nanoTime();
                        log.printf("rank %d exited with code %d; the other ranks stop within the timeout (%d s)%n", r,
                                firstFailure, timeout.toSeconds());
                    }
                }
                if (!running) {
                    return firstFailure;
                }
                if (firstFailure != 0 && System.nanoTime() - failedAt > timeout.plus(GRACE).toNanos()) {
                    log.printf("killing the ranks still running %d s after the failure%n",
                            timeout.plus(GRACE).toSeconds());
                    ranks.forEach(Process::destroyForcibly);
                }
                Thread.sleep(200);
            }
        } finally {
            ranks.stream().filter(Process::isAlive).forEach(Process::destroyForcibly);
        }
    }

    /** This JVM's own command for {@code mainClass} with {@code args}: the same java, class path and JVM options. */
    public static List<String> sameJvm(String mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass);
        cmd.addAll(args);
        return cmd;
    }
}
