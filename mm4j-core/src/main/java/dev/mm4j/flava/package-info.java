/**
 * FLAVA as in the paper and TorchMultimodal: {@link dev.mm4j.flava.ImageEncoder}, {@link dev.mm4j.flava.TextEncoder},
 * {@link dev.mm4j.flava.MultimodalEncoder}, {@link dev.mm4j.flava.FlavaModel} and
 * {@link dev.mm4j.flava.FlavaForClassification} (the fine-tuning model), configured by
 * {@link dev.mm4j.flava.FlavaConfig}; {@link dev.mm4j.flava.ModelStep} owns one step's native memory.
 */
package dev.mm4j.flava;
