package dev.mm4j.train.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * One rank of {@link ProcessGroupTest}, in its own JVM: {@code C10dRank port rank world timeoutSeconds mode}.
 * Prints {@code key=value} lines. Modes: {@code sum} (all-reduces a float32 and an int64 DJL array, prints them and the
 * libtorch copies mapped), {@code stall} (rank 0 all-reduces until it fails and prints how long it took; the other
 * ranks print ready and sleep, to be killed), {@code bench:FLOATS:ITERATIONS} (times an in-place all-reduce).
 */
public final class C10dRank {
    /** This process's listening TCP sockets' local addresses, as /proc/net/tcp{,6} write them (hex ip:port). */
    static List<String> listening() throws java.io.IOException {
        java.util.Set<String> inodes = new java.util.HashSet<>();
        try (java.nio.file.DirectoryStream<java.nio.file.Path> fds =
                java.nio.file.Files.newDirectoryStream(java.nio.file.Paths.get("/proc/self/fd"))) {
            for (java.nio.file.Path fd : fds) {
                try {
                    String link = java.nio.file.Files.readSymbolicLink(fd).toString();
                    if (link.startsWith("socket:[")) {
                        inodes.add(link.substring(8, link.length() - 1));
                    }
                } catch (java.io.IOException ignored) {
                    // closed meanwhile
                }
            }
        }
        List<String> out = new java.util.ArrayList<>();
        for (String table : List.of("/proc/self/net/tcp", "/proc/self/net/tcp6")) {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Paths.get(table))) {
                String[] f = line.trim().split("\\s+");
                if (f.length > 9 && f[3].equals("0A") && inodes.contains(f[9])) { // 0A: LISTEN
                    out.add(f[1]);
                }
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        int rank = Integer.parseInt(args[1]);
        int world = Integer.parseInt(args[2]);
        Duration timeout = Duration.ofSeconds(Long.parseLong(args[3]));
        String mode = args[4];
        try (NDManager m = NDManager.newBaseManager();
                ProcessGroup pg = ProcessGroup.open(Rendezvous.local(port, rank, world, timeout))) {
            System.out.println("libtorch=" + String.join(",", C10d.mappedLibtorch()));
            System.out.println("listening=" + String.join(",", listening()));
            NDArray f = m.arange(0f, 6f).mul(m.full(new Shape(), rank + 1, DataType.FLOAT32));
            NDArray g = m.arange(0, 5, 1, DataType.INT64).add(m.full(new Shape(), 10L * rank, DataType.INT64));
            pg.allReduceSum(List.of(f, g));
            System.out.println("fp32=" + Arrays.toString(f.toFloatArray()));
            System.out.println("int64=" + Arrays.toString(g.toLongArray()));
            System.out.flush();
            if (mode.startsWith("bench:")) { // bench:FLOATS:ITERATIONS, in place, best and mean seconds
                String[] b = mode.split(":");
                long n = Long.parseLong(b[1]);
                int iters = Integer.parseInt(b[2]);
                try (NDArray big = m.zeros(new Shape(n), DataType.FLOAT32)) {
                    pg.allReduceSum(List.of(big)); // warm-up
                    double best = Double.MAX_VALUE;
                    double sum = 0;
                    for (int i = 0; i < iters; i++) {
                        long t = System.nanoTime();
                        pg.allReduceSum(List.of(big));
                        double sec = (System.nanoTime() - t) / 1e9;
                        best = Math.min(best, sec);
                        sum += sec;
                    }
                    System.out.printf("bench=%d floats (%.3f GB): best %.3f s, mean %.3f s over %d: %.2f GB/s (best)%n",
                            n, n * 4 / 1e9, best, sum / iters, iters, n * 4 / 1e9 / best);
                }
            }
            if (mode.equals("stall")) {
                if (rank != 0) {
                    System.out.println("ready");
                    System.out.flush();
                    Thread.sleep(600_000);
                }
                long t0 = System.nanoTime();
                try {
                    for (int i = 0; ; i++) {
                        pg.allReduceSum(List.of(f));
                    }
                } catch (IllegalStateException e) {
                    System.out.println("failedAfterMs=" + (System.nanoTime() - t0) / 1_000_000);
                    System.out.println("error=" + e.getMessage().replace('\n', ' '));
                    System.out.flush();
                    System.exit(3);
                }
            }
        }
        System.out.println("done");
    }
}
