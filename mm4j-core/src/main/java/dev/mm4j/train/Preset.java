package dev.mm4j.train;

/** The named starting points of a fine-tuning run ({@code --preset}); see {@link FinetuneSettings#preset(String)}. */
public enum Preset {
    /** FinetuneSettings' own defaults. */
    DEFAULT("default"),
    /** The TorchMultimodal tutorial: batch 2, AdamW lr 1e-3 with PyTorch's defaults, 3 steps, no validation. */
    TUTORIAL("tutorial"),
    /** TorchMultimodal's FLAVA fine-tuning defaults: lr 1e-5, betas 0.9/0.98, warmup and linear decay. */
    TORCHMULTIMODAL("torchmultimodal"),
    /** The demo's small FLAVA trained from scratch (what {@code mm4j demo} runs). */
    DEMO("demo"),
    /** The demo's small FLAVA trained from scratch for retrieval (contrastive) on the demo's captions. */
    DEMO_RETRIEVAL("demo-retrieval"),
    /** TorchMultimodal's FLAVA example on GLUE QNLI (configs/finetuning/qnli.yaml): text head, batch 32, lr 1e-5. */
    QNLI("qnli"),
    /** TorchMultimodal's FLAVA example on RenderedSST2 (configs/finetuning/rendered_sst2.yaml): image head, batch 32. */
    RENDERED_SST2("rendered_sst2"),
    /** The demo's small FLAVA pretrained from scratch on a mix of sources ({@code mm4j demo --task pretraining}). */
    DEMO_PRETRAINING("demo-pretraining");

    private final String key;

    Preset(String key) {
        this.key = key;
    }

    /** The name {@code --preset} takes. */
    public String key() {
        return key;
    }

    /** A fresh copy of this preset's settings. */
    public FinetuneSettings settings() {
        return FinetuneSettings.preset(key);
    }
}
