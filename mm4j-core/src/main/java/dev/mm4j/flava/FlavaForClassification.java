package dev.mm4j.flava;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.training.GradientCollector;
import dev.mm4j.data.Batch;
import dev.mm4j.nn.Activation;
import dev.mm4j.nn.Linear;
import dev.mm4j.nn.Mlp;
import dev.mm4j.nn.Parameter;
import java.util.Collection;
import java.util.function.Consumer;

/**
 * FLAVA with a classification head: an MLP on token 0 of the multimodal encoder's output (or of the
 * image/text encoder's output for unimodal heads), trained with mean cross-entropy. Parameter names
 * are {@code model.*} and {@code classifier.model.*}, as in TorchMultimodal's state dict.
 */
public final class FlavaForClassification extends FlavaWithHead implements LossModel<Batch> {
    private final Mlp classifier;

    public FlavaForClassification(FlavaConfig config) {
        super(config);
        this.classifier = child("classifier", new Mlp(config.classifierInputDim(), config.numClasses,
                config.classifierHiddenSizes.stream().map(Integer::longValue).toList(), Activation.RELU,
                config.classifierDropout, Linear::torchDefault));
        setPrecision(config.precision);
    }

    /** Builds the model and allocates its parameters, randomly initialized, on {@code manager}'s device. */
    public static FlavaForClassification create(FlavaConfig config, NDManager manager) {
        return allocated(new FlavaForClassification(config), manager);
    }

    /**
     * How many of the multimodal encoder's output tokens the head reads: its CLS token alone. The encoder's last layer
     * runs for that token only (its query, attention output and MLP; every token is still a key): the same logits,
     * about a sixth of that layer's work (TorchMultimodal computes every token and keeps row 0).
     */
    static final int HEAD_TOKENS = 1;

    /**
     * Logits, the loss when labels are given, and the encoders' outputs: the image and text encoders' every token,
     * the multimodal encoder's CLS token only ({@link #HEAD_TOKENS}; {@link FlavaModel#forward} gives them all).
     */
    public record Output(NDArray logits, NDArray loss, FlavaOutput flava) {}

    /**
     * @param labels (B) int64 class ids, or null for no loss
     * @param required MM (default when null), IMAGE or TEXT
     */
    public Output forward(NDArray image, NDArray text, NDArray labels, RequiredEmbedding required) {
        FlavaOutput out = model.forward(image, text, required, HEAD_TOKENS);
        EncoderOutput head = required == RequiredEmbedding.IMAGE ? out.image()
                : required == RequiredEmbedding.TEXT ? out.text() : out.multimodal();
        NDArray logits = classifier.forward(head.lastHiddenState().get(new NDIndex(":, 0")));
        NDArray loss = labels == null ? null : crossEntropy(logits, labels);
        return new Output(logits, loss, out);
    }

    /**
     * Inference from an image already encoded ({@link FlavaModel#encodeImage}, e.g. cached): the
     * multimodal head's logits without running the image encoder again.
     */
    public Output forward(EncoderOutput image, NDArray text) {
        FlavaOutput out = model.forward(image, text, HEAD_TOKENS);
        return new Output(classifier.forward(out.multimodal().lastHiddenState().get(new NDIndex(":, 0"))), null, out);
    }

    /**
     * The backward pass of {@code loss} from this model's last forward, inside {@code gc}: gradients of every
     * parameter, including the layers that ran checkpointed ({@link FlavaConfig#activationCheckpointing}).
     */
    public void backward(GradientCollector gc, NDArray loss) {
        backward(gc, loss, params -> {});
    }

    /**
     * The same backward pass; {@code layerDone} gets the parameters of each layer that ran checkpointed as soon as
     * their gradients are complete, before the rest of the backward pass (see {@link FlavaModel#backward}).
     */
    @Override
    public void backward(GradientCollector gc, NDArray loss, Consumer<Collection<Parameter>> layerDone) {
        model.backward(loss, layerDone);
    }

    /**
     * The training loss of a labelled host batch: mean cross-entropy of the multimodal head (what
     * {@link #forward(NDArray, NDArray, NDArray)} gives), its inputs made in {@code step}.
     */
    @Override
    public Loss forward(ModelStep step, Batch batch) {
        ModelStep.Inputs in = step.inputs(batch);
        return Loss.of(forward(in.image(), in.text(), in.labels()).loss());
    }

    /**
     * A labelled host batch of images, texts or both (TorchMultimodal's classification data modules with
     * {@code datasets.selected} image, text or both); a missing input is null.
     *
     * @param images {@code size*3*height*width} floats in [0, 1], NCHW, or null
     * @param inputIds {@code size*seqLen} token ids (0 = padding), or null
     * @param labels class ids, or null (inference)
     * @param required the head that reads the batch; null picks it from the inputs as TorchMultimodal does (mm when
     *     both are given, else the one given)
     */
    public record Examples(float[] images, int height, int width, long[] inputIds, int seqLen, long[] labels,
            RequiredEmbedding required, int size, int epoch, int index) {
        public RequiredEmbedding head() {
            return required != null ? required : images != null && inputIds != null ? RequiredEmbedding.MM
                    : images != null ? RequiredEmbedding.IMAGE : RequiredEmbedding.TEXT;
        }
    }

    /** Logits (and the loss when the batch has labels) of a host batch, its inputs made in {@code step}. */
    public Output forward(ModelStep step, Examples b) {
        RequiredEmbedding head = b.head();
        NDArray image = b.images() == null || head == RequiredEmbedding.TEXT ? null
                : step.images(b.images(), b.size(), b.height(), b.width());
        NDArray text = b.inputIds() == null || head == RequiredEmbedding.IMAGE ? null
                : step.tokens(b.inputIds(), b.size(), b.seqLen());
        return forward(image, text, b.labels() == null ? null : step.labels(b.labels()), head);
    }

    /** This model trained on {@link Examples} (the same weights; for {@code train.TrainingLoop}). */
    public LossModel<Examples> onExamples() {
        FlavaForClassification self = this;
        return new LossModel<>() {
            @Override
            public Loss forward(ModelStep step, Examples batch) {
                return Loss.of(self.forward(step, batch).loss());
            }

            @Override
            public void backward(GradientCollector gc, NDArray loss, Consumer<Collection<Parameter>> layerDone) {
                self.backward(gc, loss, layerDone);
            }

            @Override
            public void layerByLayer(boolean on) {
                self.layerByLayer(on);
            }

            @Override
            public void setTraining(boolean training) {
                self.setTraining(training);
            }
        };
    }

    public Output forward(NDArray image, NDArray text, NDArray labels) {
        return forward(image, text, labels, RequiredEmbedding.MM);
    }

    /** Mean cross-entropy of logits (B, C) against class ids (B). */
    public static NDArray crossEntropy(NDArray logits, NDArray labels) {
        NDArray logp = logits.logSoftmax(-1);
        NDArray picked = logp.gather(labels.reshape(-1, 1), 1);
        return picked.mean().neg();
    }
}
