package dev.mm4j.data;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens a TextVQA split from whatever is on disk:
 *
 * <ul>
 *   <li>a {@code .json} file (official format; images in {@code train_images/} or {@code test_images/}
 *       beside it, chosen by the split named in the file name, else by {@code split});
 *   <li>a {@code .parquet} file (Hugging Face schema; read by module mm4j-parquet, a {@link DatasetFormat});
 *   <li>a folder holding {@code TextVQA_0.5.1_<split>.json} (official layout);
 *   <li>a folder holding parquet shards {@code <split>-*.parquet}, directly or under {@code data/}
 *       (the hub's layout), where the hub calls val "validation";
 *   <li>a {@code .jsonl} or {@code .csv} manifest of the caller's own data ({@link VqaManifestReader}), or a folder
 *       holding {@code <split>.jsonl} / {@code <split>.csv}.
 * </ul>
 *
 * Split names: train, val | validation, test. When nothing matches, the IOException lists every
 * place that was looked at.
 */
public final class TextVqaDatasets {
    private static final Logger LOG = LoggerFactory.getLogger(TextVqaDatasets.class);
    private static final Pattern OFFICIAL_NAME = Pattern.compile("(?i)TextVQA_[^_]+_(train|val|test)\\.json");

    private TextVqaDatasets() {}

    /**
     * Opens {@code split} of the dataset at {@code path}.
     *
     * @param split train, val, validation or test; may be null when {@code path} is a file
     */
    public static VqaDataset open(Path path, String split) throws IOException {
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "no TextVQA dataset here: the path does not exist");
        }
        TextVqaSplit wanted = split == null ? null : TextVqaSplit.parse(split);
        String name = path.getFileName() == null ? "" : path.getFileName().toString();
        String lower = name.toLowerCase(Locale.ROOT);
        if (Files.isRegularFile(path)) {
            if (lower.endsWith(".json")) {
                TextVqaSplit s = splitOfJsonName(name);
                if (s == null) {
                    s = wanted != null ? wanted : TextVqaSplit.TRAIN;
                } else if (wanted != null && wanted != s) {
                    LOG.warn("{} is the {} split's file; --split {} ignored for it", path, s.officialName(), split);
                }
                return json(path, s);
            }
            if (lower.endsWith(".parquet")) {
                return DatasetFormat.forExtension("parquet").open(List.of(path));
            }
            if (VqaManifestReader.Format.of(path) != null) {
                return new VqaManifestReader(path);
            }
            throw new IOException(path + " is neither a .json (official TextVQA), a .parquet (Hugging Face) nor a .jsonl / "
                    + ".csv (manifest) file");
        }
        if (!Files.isDirectory(path)) {
            throw new IOException(path + " is neither a file nor a folder");
        }
        if (wanted == null) {
            throw new IllegalArgumentException(path + " is a folder: say which split to read (train, val, test)");
        }
        List<String> lookedFor = new ArrayList<>();

        Path official = path.resolve(wanted.officialJsonName());
        lookedFor.add(official.toString());
        if (Files.isRegularFile(official)) {
            return json(official, wanted);
        }
        List<Path> otherVersions = glob(path, "TextVQA_*_" + wanted.officialName() + ".json");
        lookedFor.add(path.resolve("TextVQA_*_" + wanted.officialName() + ".json").toString());
        if (otherVersions.size() == 1) {
            return json(otherVersions.get(0), wanted);
        }

        List<String> prefixes = wanted.hubName().equals(wanted.officialName())
                ? List.of(wanted.hubName()) : List.of(wanted.hubName(), wanted.officialName());
        for (String prefix : prefixes) {
            for (String ext : List.of(".jsonl", ".csv")) {
                Path manifest = path.resolve(prefix + ext);
                lookedFor.add(manifest.toString());
                if (Files.isRegularFile(manifest)) {
                    return new VqaManifestReader(manifest);
                }
            }
        }
        for (Path dir : List.of(path, path.resolve("data"))) {
            for (String prefix : prefixes) {
                String pattern = prefix + "-*.parquet";
                lookedFor.add(dir.resolve(pattern).toString());
                List<Path> shards = Files.isDirectory(dir) ? glob(dir, pattern) : List.of();
                if (!shards.isEmpty()) {
                    return DatasetFormat.forExtension("parquet").open(shards);
                }
            }
        }
        // the hub's parquet API layout, as `mm4j download` stores it: <config>/<split>/N.parquet
        List<Path> splitDirs = new ArrayList<>();
        for (String prefix : prefixes) {
            splitDirs.add(path.resolve(prefix));
            try (DirectoryStream<Path> configs = Files.newDirectoryStream(path, Files::isDirectory)) {
                for (Path config : configs) {
                    splitDirs.add(config.resolve(prefix));
                }
            }
        }
        for (Path dir : splitDirs) {
            lookedFor.add(dir.resolve("*.parquet").toString());
            List<Path> shards = Files.isDirectory(dir) ? glob(dir, "*.parquet") : List.of();
            if (!shards.isEmpty()) {
                return DatasetFormat.forExtension("parquet").open(shards);
            }
        }
        throw new IOException("no TextVQA " + wanted.officialName() + " split in " + path + "; looked for:\n  "
                + String.join("\n  ", lookedFor) + "\n  found there: " + listing(path));
    }

    /** The split named by an official file name ({@code TextVQA_0.5.1_val.json} → VAL), or null. */
    static TextVqaSplit splitOfJsonName(String fileName) {
        Matcher m = OFFICIAL_NAME.matcher(fileName);
        return m.matches() ? TextVqaSplit.parse(m.group(1)) : null;
    }

    private static VqaDataset json(Path file, TextVqaSplit split) {
        Path images = TextVqaJsonReader.defaultImagesDir(file, split);
        if (!Files.isDirectory(images)) {
            LOG.warn("{}: image folder {} does not exist; reading images will fail", file, images);
        }
        return new TextVqaJsonReader(file, images);
    }

    private static List<Path> glob(Path dir, String pattern) throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, pattern)) {
            for (Path p : ds) {
                if (Files.isRegularFile(p)) {
                    out.add(p);
                }
            }
        }
        out.sort(null);
        return out;
    }

    private static String listing(Path dir) {
        List<String> names = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                names.add(p.getFileName() + (Files.isDirectory(p) ? "/" : ""));
            }
        } catch (IOException e) {
            return "(cannot list: " + e.getMessage() + ")";
        }
        names.sort(null);
        if (names.isEmpty()) {
            return "(empty folder)";
        }
        return names.size() > 20 ? String.join(", ", names.subList(0, 20)) + ", ... (" + names.size() + " entries)"
                : String.join(", ", names);
    }
}
