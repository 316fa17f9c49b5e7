package dev.mm4j.report;

import java.util.ArrayList;
import java.util.List;

/** A table of text cells printed in aligned columns: the first column left-aligned, the others right-aligned. */
public final class TextTable {
    private TextTable() {}

    /** The lines of the table (header, a rule, the rows), each starting with {@code indent}. */
    public static List<String> lines(String indent, List<String> header, List<List<String>> rows) {
        int cols = header.size();
        int[] width = new int[cols];
        List<List<String>> all = new ArrayList<>();
        all.add(header);
        all.addAll(rows);
        for (List<String> r : all) {
            if (r.size() != cols) {
                throw new IllegalArgumentException("row has " + r.size() + " cells, the header " + cols + ": " + r);
            }
            for (int c = 0; c < cols; c++) {
                width[c] = Math.max(width[c], r.get(c).length());
            }
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i < all.size(); i++) {
            out.add(indent + line(all.get(i), width));
            if (i == 0) {
                List<String> rule = new ArrayList<>();
                for (int w : width) {
                    rule.add("-".repeat(w));
                }
                out.add(indent + line(rule, width));
            }
        }
        return out;
    }

    /** {@link #lines} joined with newlines, ending with one. */
    public static String format(String indent, List<String> header, List<List<String>> rows) {
        return String.join("\n", lines(indent, header, rows)) + "\n";
    }

    private static String line(List<String> cells, int[] width) {
        StringBuilder sb = new StringBuilder();
        for (int c = 0; c < cells.size(); c++) {
            String v = cells.get(c);
            String pad = " ".repeat(width[c] - v.length());
            if (c > 0) {
                sb.append("  ").append(pad).append(v);
            } else {
                sb.append(v).append(pad);
            }
        }
        return sb.toString().stripTrailing();
    }
}
