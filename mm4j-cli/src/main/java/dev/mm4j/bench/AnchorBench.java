package dev.mm4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The reference bench beside ours: runs the anchor scripts of {@code tools/anchors/} (TorchMultimodal's FLAVA on
 * PyTorch eager fp32 / bf16, {@code torch.compile} bf16, PyTorch dynamic int8, ONNX Runtime fp32 / int8; see the README
 * there) with a Python interpreter of the reference environment, and prints one row per setup and mode in the bench's
 * columns (s/step of a train step and of inference, batch 2, full-size FLAVA, random weights), and PyTorch DDP's
 * ({@code ddp_anchor.py}) beside {@code bench --nproc 2}. Only when asked for
 * ({@code bench --anchors PYTHON}): nothing of the product runs Python. A setup the environment cannot run (e.g. no
 * onnxruntime) prints its error instead of a row.
 */
public final class AnchorBench {

    /** One anchor run: the script, its arguments before the text length, and what it measures. */
    private record Setup(String name, String script, List<String> args, boolean train) {}

    private static final List<Setup> SETUPS = List.of(
            new Setup("pytorch eager fp32", "bench_reference.py", List.of(), true),
            new Setup("pytorch eager bf16", "bench_reference.py", List.of(), true),
            new Setup("torch.compile bf16", "bench_anchors.py", List.of("compile-bf16"), true),
            new Setup("pytorch int8 dynamic", "bench_anchors.py", List.of("quant-int8"), false),
            new Setup("onnxruntime fp32", "bench_anchors.py", List.of("ort-fp32"), false),
            new Setup("onnxruntime int8", "bench_anchors.py", List.of("ort-int8"), false));

    /**
     * On a machine without fast bfloat16 products (an AVX2-only CPU, where ours leave bf16 out): the bf16 setups, which
     * would take hours there, give way to {@code torch.compile} fp32, a Python user's best there.
     */
    private static final List<Setup> SETUPS_WITHOUT_BF16 = List.of(SETUPS.get(0),
            new Setup("torch.compile fp32", "bench_anchors.py", List.of("compile-fp32"), true),
            SETUPS.get(3), SETUPS.get(4), SETUPS.get(5));

    private final Path python;
    private final Path scripts;
    private final Path tmm;
    private final int threads;
    private final PrintStream out;

    /**
     * @param python the reference environment's interpreter (e.g. {@code venv/bin/python})
     * @param scripts the folder of the anchor scripts ({@code tools/anchors})
     * @param tmm the folder holding TorchMultimodal's {@code torchmultimodal} package (the scripts' TMM_PATH)
     */
    public AnchorBench(Path python, Path scripts, Path tmm, int threads, PrintStream out) {
        if (!Files.isExecutable(python)) {
            throw new IllegalArgumentException("--anchors: " + python + " is not an executable Python interpreter");
        }
        if (!Files.isRegularFile(scripts.resolve("bench_anchors.py"))) {
            throw new IllegalArgumentException("--anchors-scripts: " + scripts + " holds no bench_anchors.py");
        }
        if (!Files.isDirectory(tmm.resolve("torchmultimodal"))) {
            throw new IllegalArgumentException("--anchors-tmm: " + tmm + " holds no torchmultimodal package");
        }
        this.python = python;
        this.scripts = scripts;
        this.tmm = tmm;
        this.threads = threads;
        this.out = out;
    }

    /**
     * Runs every setup for each mode ({@code tutorial}: text 512, {@code dynamic}: {@code questionTokens}).
     *
     * @param bf16 whether this machine multiplies bfloat16 at speed: else the bf16 setups give way to
     *     {@code torch.compile} fp32 ({@link #SETUPS_WITHOUT_BF16})
     */
    public void run(List<String> modes, int questionTokens, int repeats, boolean skipTrain, boolean bf16) {
        out.printf("%nanchors (%s, %s, %d threads): TorchMultimodal FLAVA, batch 2, random weights, median s/step after warm-up%n",
                python, scripts, threads);
        out.printf("%-9s %-22s %9s %9s %9s %10s%n", "mode", "anchor", "text", "train s", "infer s", "peakRSS");
        for (String mode : modes) {
            int textLen = mode.equals("dynamic") ? questionTokens : 512;
            for (Setup s : bf16 ? SETUPS : SETUPS_WITHOUT_BF16) {
                if (skipTrain && s.train() && s.script().equals("bench_reference.py")) {
                    continue;
                }
                List<String> cmd = new ArrayList<>(List.of(python.toString(), scripts.resolve(s.script()).toString()));
                cmd.addAll(s.args());
                cmd.add(String.valueOf(textLen));
                cmd.add(String.valueOf(Math.max(2, repeats + 1)));
                if (s.script().equals("bench_reference.py")) {
                    cmd.add("2");
                    cmd.add(s.name().endsWith("bf16") ? "bf16" : "fp32");
                }
                try {
                    JsonNode r = last(cmd);
                    double train = r.has("train_step_s") && r.get("train_step_s").isNumber() ? r.get("train_step_s").asDouble()
                            : r.has("train_step_s_min") ? r.get("train_step_s_min").asDouble() : Double.NaN;
                    double infer = r.has("infer_s") ? r.get("infer_s").asDouble() : r.path("infer_batch_s").asDouble(Double.NaN);
                    out.printf("%-9s %-22s %9d %9s %9s %9.2fG%s%n", mode, s.name(), textLen, fmt(train), fmt(infer),
                            r.path("peak_rss_mb").asDouble() * (1 << 20) / 1e9, // ru_maxrss / 1024: MiB
                            r.has("max_abs_vs_eager") ? "  logits max |diff| vs eager " + r.get("max_abs_vs_eager").asText() : "");
                } catch (IOException e) {
                    out.printf("%-9s %-22s %9d  not measured: %s%n", mode, s.name(), textLen, e.getMessage());
                }
            }
        }
        out.println(skipTrain ? "(--skip-train: the eager rows, whose script always trains, are left out)"
                : "(bench_reference.py's train figure is its fastest step after the first; its inference a single call)");
        if (!bf16) {
            out.println("(no fast bfloat16 products here: the bf16 anchors left out, torch.compile in fp32 instead)");
        }
    }

    private static String fmt(double v) {
        return Double.isNaN(v) ? "-" : String.format("%.3f", v);
    }

    /**
     * PyTorch DDP beside {@code bench --nproc 2}: {@code tools/anchors/ddp_anchor.py} (2 processes, gloo on 127.0.0.1,
     * {@code OMP_NUM_THREADS=1} each) with {@code args} ({@code train STEPS BATCH fp32|bf16 full|tiny} or
     * {@code allreduce FLOATS ITERS}).
     *
     * @return each rank's JSON record, by rank
     * @throws IOException naming the exit code and the last line when the script fails
     */
    public List<JsonNode> ddp(List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(python.toString(), scripts.resolve("ddp_anchor.py").toString()));
        cmd.addAll(args);
        List<JsonNode> ranks = new ArrayList<>();
        for (String line : jsonLines(cmd, 1)) {
            JsonNode r = new ObjectMapper().readTree(line);
            int rank = r.path("rank").asInt();
            while (ranks.size() <= rank) {
                ranks.add(null);
            }
            ranks.set(rank, r);
        }
        if (ranks.isEmpty() || ranks.contains(null)) {
            throw new IOException("ddp_anchor.py " + String.join(" ", args) + ": not every rank printed its result");
        }
        return ranks;
    }

    /** Runs {@code cmd} and returns its last JSON line (an error naming the exit code and last line otherwise). */
    private JsonNode last(List<String> cmd) throws IOException {
        List<String> lines = jsonLines(cmd, threads);
        return new ObjectMapper().readTree(lines.get(lines.size() - 1));
    }

    /** Runs {@code cmd} with {@code ompThreads} and returns its JSON lines (at least one, else an error). */
    private List<String> jsonLines(List<String> cmd, int ompThreads) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.put("TMM_PATH", tmm.toString());
        env.put("OMP_NUM_THREADS", String.valueOf(ompThreads));
        Process p = pb.start();
        List<String> json = new ArrayList<>();
        String lastLine = "";
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (!line.isBlank()) {
                    lastLine = line.strip();
                }
                if (line.startsWith("{")) {
                    json.add(line);
                }
            }
        }
        int rc;
        try {
            rc = p.waitFor();
        } catch (InterruptedException e) {
            p.destroy();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        }
        if (rc != 0 || json.isEmpty()) {
            throw new IOException("exit " + rc + ": " + lastLine);
        }
        return json;
    }
}
