package dev.mm4j.search;

import dev.mm4j.inference.Embedder;
import java.util.List;
import java.util.Set;

/**
 * Recall@k of text -> image retrieval: for each query text, the images ranked by cosine similarity (vectors
 * L2-normalised); a query is a hit at k when one of its relevant images is among the first k. Relevant images are
 * those the query describes (its own image, and any other image with the very same caption: two identical signs
 * cannot be told apart).
 */
public final class RetrievalRecall {
    /** Recall@1 and @5 (fractions) over {@code queries} queries. */
    public record Result(double at1, double at5, int queries, int images) {
        @Override
        public String toString() {
            return String.format("R@1 %.1f%%, R@5 %.1f%% (%d text queries over %d images)", 100 * at1, 100 * at5, queries, images);
        }
    }

    private RetrievalRecall() {}

    /** For each query text, the images it describes: those with that very text among their captions. */
    public static List<Set<Integer>> relevant(List<String> queries, List<? extends java.util.Collection<String>> captions) {
        List<Set<Integer>> out = new java.util.ArrayList<>();
        for (String q : queries) {
            Set<Integer> rel = new java.util.HashSet<>();
            for (int i = 0; i < captions.size(); i++) {
                if (captions.get(i).contains(q)) {
                    rel.add(i);
                }
            }
            out.add(rel);
        }
        return out;
    }

    /** Exact (brute-force) ranking: {@code relevant.get(q)} are the image rows relevant to query row q. */
    public static Result exact(float[][] queries, float[][] images, List<Set<Integer>> relevant) {
        int hit1 = 0;
        int hit5 = 0;
        for (int q = 0; q < queries.length; q++) {
            double[] scores = new double[images.length];
            for (int i = 0; i < images.length; i++) {
                scores[i] = Embedder.cosine(queries[q], images[i]);
            }
            int rank = bestRelevantRank(scores, relevant.get(q));
            hit1 += rank < 1 ? 1 : 0;
            hit5 += rank < 5 ? 1 : 0;
        }
        return new Result((double) hit1 / queries.length, (double) hit5 / queries.length, queries.length, images.length);
    }

    /**
     * Recall of rankings returned by a search (e.g. an index's approximate HNSW search): {@code ranked.get(q)} are image
     * rows, best first (5 or more); a query is a hit at k when a relevant image is among its first k.
     */
    public static Result ranked(List<int[]> ranked, List<Set<Integer>> relevant, int images) {
        int hit1 = 0;
        int hit5 = 0;
        for (int q = 0; q < ranked.size(); q++) {
            int[] r = ranked.get(q);
            for (int i = 0; i < Math.min(5, r.length); i++) {
                if (relevant.get(q).contains(r[i])) {
                    hit1 += i < 1 ? 1 : 0;
                    hit5++;
                    break;
                }
            }
        }
        return new Result((double) hit1 / ranked.size(), (double) hit5 / ranked.size(), ranked.size(), images);
    }

    /** The 0-based rank of the best-scored relevant image (ties counted against it). */
    static int bestRelevantRank(double[] scores, Set<Integer> relevant) {
        double best = Double.NEGATIVE_INFINITY;
        for (int i : relevant) {
            best = Math.max(best, scores[i]);
        }
        int rank = 0;
        for (int i = 0; i < scores.length; i++) {
            if (!relevant.contains(i) && scores[i] >= best) {
                rank++;
            }
        }
        return rank;
    }
}
