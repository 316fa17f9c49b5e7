/**
 * Multimodal search on FLAVA's contrastive embeddings: {@link dev.mm4j.search.Embedder} (images and texts to
 * L2-normalised vectors from any checkpoint the project loads), {@link dev.mm4j.search.ZeroShotClassifier}
 * (labels from prompts) and the Lucene image index ({@link dev.mm4j.search.ImageIndex}). Every Lucene import of the
 * project is in this package, so that it can move into a module of its own.
 */
package dev.mm4j.search;
