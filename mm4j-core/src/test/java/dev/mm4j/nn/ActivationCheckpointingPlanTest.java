package dev.mm4j.nn;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.engine.Engine;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link ActivationCheckpointing#plan}: which bf16 encoders a forward pass recomputes, decided over the whole model. */
class ActivationCheckpointingPlanTest {

    /**
     * The plan over the whole model (full-size FLAVA's encoders, here 12 layers each, batch 2): the tutorial's text
     * (512 tokens over 24 keys) saves more in bf16 than the image encoder's weight copies cost, although the image
     * encoder alone would be recomputed; the multimodal input (710 tokens), whose explicit attention keeps its
     * probabilities, keeps the most more and is recomputed; dynamic padding's short questions (24 tokens) save
     * nothing to set against the copies, so every encoder is recomputed, the text encoder's copies outweighing their
     * activations most; pretraining's stacked image (4 x 197 tokens) keeps its activations beside a recomputed text
     * (4 x 77) and multimodal encoder (2 x 275), as each alone decides. Float32 encoders are never recomputed.
     */
    @Test
    void bf16RecomputesOverTheWholeModelOnlyWhatItsWeightCopiesMakeOutweighFloat32() {
        ActivationCheckpointing ac = new ActivationCheckpointing(false);
        TransformerEncoder image = encoder(ac, Precision.BF16);
        TransformerEncoder text = encoder(ac, Precision.BF16);
        TransformerEncoder mm = encoder(ac, Precision.BF16);
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            ac.plan(List.of(image.run(2, 197, 197), text.run(2, 512, 24), mm.run(2, 710, 710)));
            assertEquals(List.of(false, false, true), recomputed(ac, image, text, mm));
            ac.clear(); // outside a plan each encoder decides alone: the image encoder is recomputed
            assertTrue(ac.checkpoints(image, Precision.BF16, 2, 197, 197));
            ac.plan(List.of(image.run(2, 197, 197), text.run(2, 24, 24), mm.run(2, 222, 222)));
            assertEquals(List.of(true, true, true), recomputed(ac, image, text, mm));
            ac.plan(List.of(image.run(4, 197, 197), text.run(4, 77, 77), mm.run(2, 275, 275)));
            assertEquals(List.of(false, true, true), recomputed(ac, image, text, mm));
            TransformerEncoder fp32 = encoder(ac, Precision.FP32);
            ac.plan(List.of(fp32.run(2, 24, 24)));
            assertFalse(ac.checkpoints(fp32, Precision.FP32, 2, 24, 24));
        }
    }

    /**
     * Recorded layer by layer (as the training step records), bf16 layers that keep their activations share their
     * weight copies ({@link SharedBf16Copies}) and keep less than float32 would: no plan, no bf16 layer recomputed,
     * not even on dynamic padding's short questions; every layer still recomputes when asked for.
     */
    @Test
    void layerByLayerBf16RecomputesNothingByItself() {
        ActivationCheckpointing ac = new ActivationCheckpointing(false);
        ac.layerByLayer(true);
        TransformerEncoder text = encoder(ac, Precision.BF16);
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            assertFalse(ac.plans(Precision.BF16));
            assertFalse(ac.checkpoints(text, Precision.BF16, 2, 24, 24));
            ac.layerByLayer(false);
            assertTrue(ac.plans(Precision.BF16));
            assertTrue(ac.checkpoints(text, Precision.BF16, 2, 24, 24));
            ActivationCheckpointing every = new ActivationCheckpointing(true);
            every.layerByLayer(true);
            assertTrue(every.checkpoints(encoder(every, Precision.BF16), Precision.BF16, 2, 24, 24));
        }
    }

    private static TransformerEncoder encoder(ActivationCheckpointing ac, Precision precision) {
        TransformerEncoder e = new TransformerEncoder(12, 768, 12, 3072, Activation.GELU, 1e-12, 0.02, ac);
        e.setPrecision(precision);
        return e;
    }

    private static List<Boolean> recomputed(ActivationCheckpointing ac, TransformerEncoder... encoders) {
        List<Boolean> r = new ArrayList<>();
        for (TransformerEncoder e : encoders) {
            r.add(ac.checkpoints(e, e.precision(), 0, 0, 0));
        }
        return r;
    }
}
