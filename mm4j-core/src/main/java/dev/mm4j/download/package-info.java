/**
 * Downloads into the local cache (resumable, verified): the tutorial's checkpoint, answer vocabulary and TextVQA
 * shards ({@link dev.mm4j.download.Sources}), Hugging Face model repositories ({@link dev.mm4j.download.HubRepository}),
 * and the resolution of a {@code --checkpoint} value to pretrained weights ({@link dev.mm4j.download.PretrainedWeights}).
 */
package dev.mm4j.download;
