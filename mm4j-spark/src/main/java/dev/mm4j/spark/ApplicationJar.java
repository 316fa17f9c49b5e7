package dev.mm4j.spark;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import org.apache.spark.SparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The jar that carries this application's code to executors in other JVMs (a cluster, or {@code local-cluster}),
 * which bring Spark, Scala and Hadoop themselves:
 *
 * <ul>
 *   <li>run from the fat jar {@code target/mm4j-spark.jar} (Spark inside, 443 MB): the thin application jar built
 *       next to it, {@value #THIN} (the project and its non-Spark dependencies: DJL, the bundled libtorch,
 *       tokenizers, ...); the fat jar itself, with a warning, when there is none;
 *   <li>run from a jar without Spark (spark-submit's application jar): that jar;
 *   <li>run from class folders (tests, an IDE, a multi-module reactor build): one jar of every class folder on
 *       the class path (each module's {@code target/classes}; the first of two equal entries wins, as on the class
 *       path), made once per JVM in a temp file; the jar dependencies must then be on the executors' class path
 *       already (e.g. in the workers' SPARK_HOME/jars).
 * </ul>
 */
public final class ApplicationJar {
    private ApplicationJar() {}

    private static final Logger LOG = LoggerFactory.getLogger(ApplicationJar.class);

    /** The file name of the thin application jar, next to the fat one. */
    public static final String THIN = "mm4j-spark-app.jar";

    private static Path assembled;

    /** The jar to ship for the code of {@link BatchPredictJob}, where it is running from now. */
    public static synchronized Path forExecutors() {
        Path code = location(BatchPredictJob.class);
        if (Files.isDirectory(code)) {
            if (assembled == null) {
                assembled = jarOf(classFolders());
            }
            return assembled;
        }
        if (!code.equals(location(SparkContext.class))) {
            return code;
        }
        Path thin = code.resolveSibling(THIN);
        if (Files.isRegularFile(thin)) {
            return thin;
        }
        LOG.warn("{} not found next to {}: the executors get the whole jar, Spark included ({} MB); "
                + "mvn -Pspark package builds both", thin, code, size(code) >> 20);
        return code;
    }

    /** The jar file or class folder {@code c} was loaded from. */
    static Path location(Class<?> c) {
        try {
            return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toAbsolutePath().normalize();
        } catch (URISyntaxException | RuntimeException e) {
            throw new IllegalStateException("cannot tell where " + c.getName() + " was loaded from: " + e, e);
        }
    }

    /** The class folders on this JVM's class path, in class-path order (test classes left out: executors run product code). */
    static List<Path> classFolders() {
        List<Path> dirs = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path", "").split(File.pathSeparator)) {
            if (!entry.isEmpty() && Files.isDirectory(Path.of(entry)) && !Path.of(entry).endsWith("test-classes")) {
                dirs.add(Path.of(entry).toAbsolutePath().normalize());
            }
        }
        return dirs;
    }

    /** A jar (in a temp file, deleted when the JVM exits) of the class folders {@code dirs}; the first of equal entries wins. */
    static Path jarOf(List<Path> dirs) {
        try {
            Path jar = Files.createTempFile("mm4j-spark-classes-", ".jar");
            jar.toFile().deleteOnExit();
            Set<String> names = new HashSet<>();
            try (OutputStream os = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(os)) {
                for (Path dir : dirs) {
                    List<Path> files;
                    try (Stream<Path> s = Files.walk(dir)) {
                        files = s.filter(Files::isRegularFile).sorted().toList();
                    }
                    for (Path f : files) {
                        String name = dir.relativize(f).toString().replace('\\', '/');
                        if (names.add(name)) {
                            out.putNextEntry(new JarEntry(name));
                            Files.copy(f, out);
                            out.closeEntry();
                        }
                    }
                }
            }
            LOG.info("class folders {} packed for the executors into {} ({} files, {} KB)", dirs, jar, names.size(), size(jar) >> 10);
            return jar;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot pack " + dirs + " into a jar for the executors: " + e.getMessage(), e);
        }
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return -1;
        }
    }
}
