package dev.mm4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.data.Padding;
import dev.mm4j.inference.TinyBundle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --precision int8 on the embedding commands: the same labels as fp32, probabilities within 2 points. */
class Int8CommandsTest {
    @TempDir Path tmp;

    @Test
    void classifyInInt8GivesFp32sLabelsAndCloseProbabilities() throws Exception {
        Path model = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path image = Files.write(tmp.resolve("sign.png"), TinyBundle.png(1, 64, 48));
        String labels = "stop,open,closed";
        HuggingFaceFoldersTest.Run fp = HuggingFaceFoldersTest.run("classify", "--model", model.toString(), "--labels", labels,
                image.toString());
        HuggingFaceFoldersTest.Run q = HuggingFaceFoldersTest.run("classify", "--model", model.toString(), "--labels", labels,
                "--precision", "int8", image.toString());
        assertEquals(0, fp.rc(), fp.err());
        assertEquals(0, q.rc(), q.err());
        List<String> a = fp.out().lines().toList();
        List<String> b = q.out().lines().toList();
        assertEquals(4, a.size(), fp.out());
        assertEquals(a.size(), b.size(), q.out());
        java.util.Map<String, Double> px = percentages(a);
        java.util.Map<String, Double> py = percentages(b);
        assertEquals(px.keySet(), py.keySet(), q.out());
        px.forEach((label, p) -> assertEquals(p, py.get(label), 2.0, "percentage points, " + label));
    }

    /** label -> percentage from classify's lines after the image's. */
    private static java.util.Map<String, Double> percentages(List<String> lines) {
        java.util.Map<String, Double> m = new java.util.TreeMap<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.trim().split("\\s+");
            m.put(f[0], Double.parseDouble(f[1].replace("%", "")));
        }
        return m;
    }
}
