package dev.mm4j.download;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Where a URL is kept in the cache folder: the one rule every download and every lookup (the {@code download}
 * command, {@code finetune --checkpoint URL}, hub repositories) goes through, so a file fetched once is found
 * again, offline too. The cache mirrors the URL, {@code <host>[_<port>]/<path>}:
 * <pre>
 * https://download.pytorch.org/models/multimodal/flava/x.pt  → download.pytorch.org/models/multimodal/flava/x.pt
 * http://dl.fbaipublicfiles.com/pythia/data/vocab.tar.gz       → dl.fbaipublicfiles.com/pythia/data/vocab.tar.gz
 * </pre>
 * except that Hugging Face hub files get short folders, one per repository and revision (a model's is a folder
 * {@code from_pretrained} could read):
 * <pre>
 * https://huggingface.co/ORG/NAME/resolve/REV/FILE                      → hf/ORG/NAME/REV/FILE
 * https://huggingface.co/datasets/ORG/NAME/resolve/REV/FILE             → hf/datasets/ORG/NAME/REV/FILE
 * https://huggingface.co/api/datasets/ORG/NAME/parquet/CONFIG/SPLIT/N.parquet
 *                                                           → hf/datasets/ORG/NAME/parquet/CONFIG/SPLIT/N.parquet
 * </pre>
 * The logical URL decides, not the server a file is actually fetched from ({@code --base-url} mirrors).
 */
public final class CacheLayout {
    public static final String HUB_HOST = "huggingface.co";

    private CacheLayout() {}

    /** The path under the cache folder for {@code url}; rejects URLs that are not plain http(s) file URLs. */
    public static String pathOf(URI url) {
        String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https") || url.getHost() == null) {
            throw new IllegalArgumentException("not an http(s) URL: " + url);
        }
        if (url.getRawQuery() != null || url.getRawFragment() != null) {
            throw new IllegalArgumentException("cannot cache a URL with a query or fragment: " + url);
        }
        List<String> segs = segments(url);
        if (segs.isEmpty()) {
            throw new IllegalArgumentException("no file in " + url);
        }
        String host = url.getHost().toLowerCase(Locale.ROOT);
        if (host.equals(HUB_HOST)) {
            String hub = hubPath(segs);
            if (hub != null) {
                return hub;
            }
        }
        return host + (url.getPort() >= 0 ? "_" + url.getPort() : "") + "/" + String.join("/", segs);
    }

    /** The cache folder of a hub model repository at a revision ({@code hf/ORG/NAME/REV}). */
    public static String hubModelFolder(String repo, String revision) {
        return pathOf(HubRepository.fileUrl(HubRepository.HUB, repo, revision, "x")).replaceFirst("/x$", "");
    }

    private static String hubPath(List<String> s) {
        int n = s.size();
        if (n >= 5 && !s.get(0).equals("api") && !s.get(0).equals("datasets") && s.get(2).equals("resolve")) {
            return "hf/" + s.get(0) + "/" + s.get(1) + "/" + String.join("/", s.subList(3, n));
        }
        if (n >= 6 && s.get(0).equals("datasets") && s.get(3).equals("resolve")) {
            return "hf/datasets/" + s.get(1) + "/" + s.get(2) + "/" + String.join("/", s.subList(4, n));
        }
        if (n >= 6 && s.get(0).equals("api") && s.get(1).equals("datasets") && s.get(4).equals("parquet")) {
            return "hf/datasets/" + s.get(2) + "/" + s.get(3) + "/" + String.join("/", s.subList(4, n));
        }
        return null;
    }

    /** Percent-decoded path segments; a decoded '/' or '\' stays encoded, '.' and '..' are refused. */
    private static List<String> segments(URI url) {
        String raw = url.getRawPath() == null ? "" : url.getRawPath();
        List<String> out = new ArrayList<>();
        for (String r : raw.split("/")) {
            if (r.isEmpty()) continue;
            String d = URLDecoder.decode(r.replace("+", "%2B"), StandardCharsets.UTF_8)
                    .replace("/", "%2F").replace("\\", "%5C");
            if (d.equals(".") || d.equals("..")) {
                throw new IllegalArgumentException("'" + d + "' in the path of " + url);
            }
            out.add(d);
        }
        return out;
    }
}
