package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.jni.JniUtils;
import dev.mm4j.nn.Init;
import dev.mm4j.nn.Module;
import dev.mm4j.nn.Parameter;
import dev.mm4j.nn.Precision;
import dev.mm4j.nn.TorchOps;
import java.util.ArrayList;
import java.util.List;

/**
 * FLAVA's image codebook, TorchMultimodal's {@code DalleVAEEncoder}: OpenAI's DALL-E dVAE encoder ({@code encoder},
 * a {@link DalleEncoder}) and the argmax over its logits: an image (B, 3, S, S) whose pixels went through the
 * logit-Laplace map ({@link #mapPixels}) to a grid of tokens (B, S/8, S/8) in [0, vocab). FLAVA pretraining takes
 * those of the masked patches as the MIM targets (S = 112 gives FLAVA's 14 x 14 patch grid).
 *
 * <p>It is frozen: it runs without recording gradients, whatever the caller records (its parameters get none),
 * and has no dropout or batch statistics, so train and eval mode are the same. The network runs as one call of the op
 * library ({@code nn.TorchOps#dalleEncoder}): in float32, or under bf16 in bfloat16 throughout as
 * {@code torch.autocast} runs the reference's (the tokens are then those of the autocast reference).
 */
public final class DalleVaeEncoder extends Module {
    /** {@code LOGIT_LAPLACE_EPS} of TorchMultimodal's FLAVA transform. */
    public static final float LOGIT_LAPLACE_EPS = 0.1f;

    private final DalleEncoder encoder;
    private final int imageSize;

    public DalleVaeEncoder(FlavaConfig c) {
        this.encoder = child("encoder", new DalleEncoder(c.codebookGroupCount, c.codebookNHid, c.codebookNBlkPerGroup,
                c.numChannels, c.imageVocabSize));
        this.imageSize = c.codebookImageSize;
    }

    /** The logit-Laplace pixel map: {@code (1 - 2 eps) x + eps} for pixels x in [0, 1] (TorchMultimodal's {@code map_pixels}). */
    public static NDArray mapPixels(NDArray x) {
        return x.mul(1 - 2 * LOGIT_LAPLACE_EPS).add(LOGIT_LAPLACE_EPS);
    }

    /** {@code get_codebook_indices}: images (B, 3, S, S), already mapped, to tokens (B, S/8, S/8) int64. */
    public NDArray forward(NDArray images) {
        long[] s = images.getShape().getShape();
        if (s.length != 4 || s[2] != imageSize || s[3] != imageSize) {
            throw new IllegalArgumentException("codebook input " + images.getShape() + " is not (B, C, " + imageSize
                    + ", " + imageSize + ") (codebook_image_size " + imageSize + ")");
        }
        boolean recording = JniUtils.isGradMode();
        JniUtils.setGradMode(false); // frozen: torch.no_grad()
        try {
            return encoder.forward(images).argMax(1);
        } finally {
            JniUtils.setGradMode(recording);
        }
    }

    /** {@code get_codebook_probs}: the softmax over the token logits, (B, vocab, S/8, S/8). */
    public NDArray probabilities(NDArray images) {
        boolean recording = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try {
            return encoder.forward(images).softmax(1);
        } finally {
            JniUtils.setGradMode(recording);
        }
    }

    /** {@code DalleEncoder}: {@code blocks} = input conv, four groups of residual blocks (max-pooled after three), output. */
    public static final class DalleEncoder extends Module {
        private final Blocks blocks;
        private final int inputChannels;

        DalleEncoder(int groupCount, int nHid, int nBlkPerGroup, int inputChannels, int vocabSize) {
            this.blocks = child("blocks", new Blocks(groupCount, nHid, nBlkPerGroup, inputChannels, vocabSize));
            this.inputChannels = inputChannels;
        }

        /** Images (B, C, S, S) to token logits (B, vocab, S/8, S/8). */
        public NDArray forward(NDArray x) {
            if (x.getShape().dimension() != 4) {
                throw new IllegalArgumentException("input shape " + x.getShape() + " is not 4d");
            }
            if (x.getShape().get(1) != inputChannels) {
                throw new IllegalArgumentException("input has " + x.getShape().get(1)
                        + " channels but model built for " + inputChannels);
            }
            return blocks.forward(x, precision());
        }
    }

    /** {@code blocks}: {@code input}, {@code group_1} .. {@code group_4}, {@code output}. */
    static final class Blocks extends Module {
        private final DalleConv2d input;
        private final Group[] groups = new Group[4];
        private final Output output;

        Blocks(int groupCount, int nHid, int nBlkPerGroup, int inputChannels, int vocabSize) {
            int nLayers = groupCount * nBlkPerGroup;
            this.input = child("input", new DalleConv2d(inputChannels, nHid, 7));
            int[] widths = {nHid, nHid, 2 * nHid, 4 * nHid, 8 * nHid};
            for (int g = 0; g < 4; g++) {
                groups[g] = child("group_" + (g + 1),
                        new Group(nLayers, nBlkPerGroup, widths[g], widths[g + 1]));
            }
            this.output = child("output", new Output(8 * nHid, vocabSize));
        }

        /**
         * The whole network in one call of the op library ({@code nn.TorchOps#dalleEncoder}), the convolutions in
         * {@code precision} as autocast runs them; the weights in this module's order.
         */
        NDArray forward(NDArray x, Precision precision) {
            List<NDArray> ws = new ArrayList<>();
            List<Long> idPaths = new ArrayList<>();
            input.addTo(ws);
            for (Group g : groups) {
                for (Block b : g.blocks) {
                    idPaths.add(b.idPath != null ? 1L : 0L);
                    if (b.idPath != null) {
                        b.idPath.addTo(ws);
                    }
                    for (DalleConv2d c : b.resPath.convs) {
                        c.addTo(ws);
                    }
                }
            }
            output.conv.addTo(ws);
            return TorchOps.on(x).dalleEncoder(precision, x, ws, idPaths.stream().mapToLong(Long::longValue).toArray(),
                    groups[0].blocks.length, groups[0].blocks[0].postGain);
        }
    }

    /** {@code group_i}: {@code block_1} .. {@code block_n}, then a 2x2 max pool (not after the last group). */
    static final class Group extends Module {
        private final Block[] blocks;

        Group(int nLayers, int nBlk, int nIn, int nOut) {
            this.blocks = new Block[nBlk];
            for (int i = 0; i < nBlk; i++) {
                blocks[i] = child("block_" + (i + 1), new Block(i == 0 ? nIn : nOut, nOut, nLayers));
            }
        }
    }

    /**
     * {@code DalleEncoderBlock}: {@code id_path(x) + post_gain * res_path(x)}, {@code id_path} a 1x1 conv where the
     * width changes (else the identity), {@code res_path} relu-conv3-relu-conv3-relu-conv3-relu-conv1 at a quarter of
     * the output width, {@code post_gain} = 1 / n_layers^2.
     */
    static final class Block extends Module {
        private final DalleConv2d idPath;
        private final ResPath resPath;
        private final float postGain;

        Block(int nIn, int nOut, int nLayers) {
            this.idPath = nIn != nOut ? child("id_path", new DalleConv2d(nIn, nOut, 1)) : null;
            this.resPath = child("res_path", new ResPath(nIn, nOut));
            this.postGain = (float) (1.0 / ((double) nLayers * nLayers));
        }

    }

    /** {@code res_path}: {@code conv_1} .. {@code conv_4}, each after a ReLU. */
    static final class ResPath extends Module {
        private final DalleConv2d[] convs = new DalleConv2d[4];

        ResPath(int nIn, int nOut) {
            int nHid = nOut / 4;
            convs[0] = child("conv_1", new DalleConv2d(nIn, nHid, 3));
            convs[1] = child("conv_2", new DalleConv2d(nHid, nHid, 3));
            convs[2] = child("conv_3", new DalleConv2d(nHid, nHid, 3));
            convs[3] = child("conv_4", new DalleConv2d(nHid, nOut, 1));
        }
    }

    /** {@code output}: ReLU then {@code conv}, a 1x1 conv to the token logits. */
    static final class Output extends Module {
        private final DalleConv2d conv;

        Output(int nIn, int vocab) {
            this.conv = child("conv", new DalleConv2d(nIn, vocab, 1));
        }
    }

    /** {@code DalleConv2d}: weight {@code w} (out, in, k, k) ~ N(0, 1/sqrt(in k^2)), bias {@code b} 0, padding (k-1)/2. */
    static final class DalleConv2d extends Module {
        private final Parameter w;
        private final Parameter b;

        DalleConv2d(int nIn, int nOut, int kw) {
            this.w = parameter("w", Init.normal(1 / Math.sqrt((double) nIn * kw * kw)), nOut, nIn, kw, kw);
            this.b = parameter("b", Init.zeros(), nOut);
        }

        /** Adds its weight and bias, in that order. */
        void addTo(List<NDArray> ws) {
            ws.add(w.array());
            ws.add(b.array());
        }
    }
}
