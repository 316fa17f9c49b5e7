package dev.mm4j.inference;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import dev.mm4j.checkpoint.ModelBundle;
import dev.mm4j.data.AnswerVocab;
import dev.mm4j.data.Padding;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.ImageIO;

/** A tiny FLAVA VQA bundle with random weights and generated images, for the tests of VqaModel and the server. */
public final class TinyBundle {
    private TinyBundle() {}

    public static FlavaConfig config() throws Exception {
        return FlavaConfig.fromJson("{\"image_size\":32,\"patch_size\":8,\"image_hidden_size\":64,\"image_num_attention_heads\":4,"
                + "\"image_num_hidden_layers\":2,\"image_intermediate_size\":128,\"text_hidden_size\":64,\"text_num_attention_heads\":4,"
                + "\"text_num_hidden_layers\":2,\"text_intermediate_size\":128,\"vocab_size\":30522,\"max_position_embeddings\":16,"
                + "\"multimodal_hidden_size\":64,\"multimodal_num_attention_heads\":4,\"multimodal_num_hidden_layers\":2,"
                + "\"multimodal_intermediate_size\":128,\"text_and_image_proj_size\":16,\"num_classes\":9,\"classifier_hidden_sizes\":64}");
    }

    /** Writes the bundle: 9 answers, max length 16, the given padding. */
    public static Path write(Path dir, Padding padding) throws Exception {
        FlavaConfig c = config();
        c.maskTextPaddingInMultimodal = padding.masksTextInMultimodal();
        Engine.getInstance().setRandomSeed(3);
        ModelBundle.Info info = new ModelBundle.Info();
        info.padding = padding;
        info.maxLength = 16;
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification model = FlavaForClassification.create(c, m);
            ModelBundle.write(dir, model, AnswerVocab.fromText("stop\nexit\nopen\nsale\nred\nblue\n42\nyes\nno\n", "tiny"), info, null);
        }
        return dir;
    }

    /** A PNG of {@code w x h} with a coloured box and a word; {@code seed} makes it unique. */
    public static byte[] png(int seed, int w, int h) throws Exception {
        Random r = new Random(seed);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(new Color(r.nextInt(0xFFFFFF)));
        g.fillRect(0, 0, w, h);
        g.setColor(new Color(r.nextInt(0xFFFFFF)));
        g.fillRect(r.nextInt(w / 2), r.nextInt(h / 2), w / 3, h / 3);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, Math.max(10, h / 5)));
        g.drawString("STOP" + seed, w / 10, h / 2);
        g.dispose();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        return out.toByteArray();
    }
}
