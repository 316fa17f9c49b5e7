/**
 * Training, one loop for every task: {@link dev.mm4j.train.TrainingLoop} and {@link dev.mm4j.train.TrainingStep} over
 * any {@link dev.mm4j.flava.LossModel} (accumulation, clipping, updates during the backward pass, the
 * {@link dev.mm4j.train.GradientSync} hook, checkpoints and exact resume, listeners). Fine-tuning for classification: {@link dev.mm4j.train.Finetuner} (built with {@code Finetuner.builder()}, cancellable, resumable) over
 * {@link dev.mm4j.train.FinetuneSettings} and {@link dev.mm4j.train.Preset}s, reporting to
 * {@link dev.mm4j.train.TrainingListener}s; the AdamW optimizer, learning-rate schedules and the checkpoint store.
 */
package dev.mm4j.train;
