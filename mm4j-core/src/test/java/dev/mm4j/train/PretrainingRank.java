package dev.mm4j.train;

import dev.mm4j.data.SyntheticPretraining;
import dev.mm4j.train.dist.Rendezvous;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One rank of {@link DataParallelPretrainingTest} in its own JVM
 * ({@code PretrainingRank port rank world synthDir outDir precision maxSteps resume}), and the runs' shared settings:
 * {@link Pretrainer} on a tiny FLAVA with a codebook over the three synthetic sources. Prints {@code loss=} per step
 * this run made (exact double text), then {@code done}.
 */
public final class PretrainingRank {

    /** A tiny FLAVA with a codebook for 32x32 images (PretrainingCommandTest's). */
    static Map<String, Object> tinyModel() {
        Map<String, Object> m = new LinkedHashMap<>();
        Object[] kv = {"image_size", 32, "patch_size", 8, "image_hidden_size", 16, "image_num_attention_heads", 2,
            "image_num_hidden_layers", 1, "image_intermediate_size", 32, "text_hidden_size", 16,
            "text_num_attention_heads", 2, "text_num_hidden_layers", 1, "text_intermediate_size", 32,
            "max_position_embeddings", 32, "multimodal_hidden_size", 16, "multimodal_num_attention_heads", 2,
            "multimodal_num_hidden_layers", 1, "multimodal_intermediate_size", 32, "text_and_image_proj_size", 8,
            "classifier_hidden_sizes", 16, "codebook_image_size", 32, "image_vocab_size", 64, "codebook_n_hid", 8,
            "codebook_n_blk_per_group", 1};
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    /**
     * The run: batch 4 per micro-batch, pairs : texts : images = 1 : 1 : 2, dropout off (each process would draw its
     * own masks), a checkpoint every 2 steps.
     */
    static Pretrainer.Builder builder(Path synth, Path out, String precision, long steps, boolean resume) {
        return Pretrainer.builder().model(tinyModel())
                .pairs(synth.resolve("captions_train.jsonl"), 1)
                .texts(synth.resolve(SyntheticPretraining.TEXTS_FILE), 1)
                .images(synth.resolve(SyntheticPretraining.IMAGES_DIR), 2)
                .outputDir(out).maxSteps(steps).batchSize(4).threads(1).precision(precision).seed(3)
                .learningRate(5e-4).set("dropout", false).set("checkpoint_every", 2).set("log_every", 1)
                .set("pairs_max_length", 24).set("max_length", 24).set("loader_threads", 1)
                .resume(resume).log(new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        int rank = Integer.parseInt(args[1]);
        int world = Integer.parseInt(args[2]);
        Pretrainer.Result r = builder(Path.of(args[3]), Path.of(args[4]), args[5], Long.parseLong(args[6]),
                Boolean.parseBoolean(args[7]))
                .distributed(Rendezvous.local(port, rank, world, Duration.ofSeconds(60))).build().run();
        r.losses().forEach(l -> System.out.println("loss=" + l));
        System.out.println("status=" + r.status());
        System.out.println("done");
    }
}
