/**
 * Fine-tuning: {@link dev.mm4j.train.Finetuner} (built with {@code Finetuner.builder()}, cancellable, resumable) over
 * {@link dev.mm4j.train.FinetuneSettings} and {@link dev.mm4j.train.Preset}s, reporting to
 * {@link dev.mm4j.train.TrainingListener}s; the AdamW optimizer, learning-rate schedules and the checkpoint store.
 */
package dev.mm4j.train;
