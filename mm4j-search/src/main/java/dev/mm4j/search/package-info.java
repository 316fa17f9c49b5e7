/**
 * Multimodal search on FLAVA's contrastive embeddings (mm4j-inference's {@link dev.mm4j.inference.Embedder}):
 * retrieval fine-tuning and the Lucene image index ({@link dev.mm4j.search.ImageIndex}). Every Lucene import of the project is in this package, so that a consumer
 * that only predicts or embeds does not need Lucene.
 */
package dev.mm4j.search;
