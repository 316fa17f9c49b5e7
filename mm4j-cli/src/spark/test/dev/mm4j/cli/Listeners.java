package dev.mm4j.cli;

import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The TCP sockets this JVM and the processes below it listen on, from Linux's {@code /proc/net/tcp}, {@code tcp6}
 * and {@code /proc/PID/fd}; sampled by a background thread while a test runs, so listeners that come and go
 * (executor JVMs, a session's ports) are seen too.
 */
final class Listeners implements AutoCloseable {
    /** Every listener seen, as "address:port (pid N)", with its address. */
    final Map<String, InetAddress> seen = new TreeMap<>();
    private final Thread thread;
    private volatile boolean stopping;

    Listeners() {
        thread = new Thread(() -> {
            while (!stopping) {
                sample();
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "listener sampler");
        thread.setDaemon(true);
        thread.start();
    }

    /** The listeners not on a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
    synchronized Set<String> outsideLoopback() {
        Set<String> out = new TreeSet<>();
        seen.forEach((listener, address) -> {
            if (!address.isLoopbackAddress()) {
                out.add(listener);
            }
        });
        return out;
    }

    @Override
    public void close() throws InterruptedException {
        stopping = true;
        thread.join(5_000);
        sample();
    }

    synchronized void sample() {
        try {
            Map<String, Long> owners = new HashMap<>();
            List<ProcessHandle> processes = Stream.concat(Stream.of(ProcessHandle.current()), ProcessHandle.current().descendants()).toList();
            for (ProcessHandle p : processes) {
                try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(p.pid()), "fd"))) {
                    for (Path fd : fds.toList()) {
                        try {
                            String target = Files.readSymbolicLink(fd).toString();
                            if (target.startsWith("socket:[")) {
                                owners.put(target.substring(8, target.length() - 1), p.pid());
                            }
                        } catch (IOException e) {
                            // closed meanwhile
                        }
                    }
                } catch (IOException e) {
                    // the process ended meanwhile
                }
            }
            for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
                List<String> lines = Files.readAllLines(Path.of(table));
                for (String line : lines.subList(1, lines.size())) {
                    String[] f = line.trim().split("\\s+");
                    Long pid = owners.get(f[9]);
                    if (f[3].equals("0A") && pid != null) { // 0A = LISTEN
                        String[] hostPort = f[1].split(":");
                        InetAddress a = address(hostPort[0]);
                        String host = a instanceof Inet6Address ? "[" + a.getHostAddress() + "]" : a.getHostAddress();
                        seen.put(host + ":" + Integer.parseInt(hostPort[1], 16) + " (pid " + pid + ")", a);
                    }
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** An address of /proc/net/tcp*: 4-byte words in hex, each in the machine's (little-endian) byte order. */
    static InetAddress address(String hex) throws UnknownHostException {
        byte[] b = new byte[hex.length() / 2];
        for (int w = 0; w < b.length / 4; w++) {
            for (int i = 0; i < 4; i++) {
                b[w * 4 + i] = (byte) Integer.parseInt(hex.substring(w * 8 + (3 - i) * 2, w * 8 + (3 - i) * 2 + 2), 16);
            }
        }
        return InetAddress.getByAddress(b); // an IPv4-mapped IPv6 address comes back as the IPv4 one
    }
}
