/**
 * Prediction from Java, without a server: {@link dev.mm4j.inference.VqaModel} answers questions about images with
 * a fine-tuned model bundle (thread-safe, image-encoder cache, batches), and {@link dev.mm4j.inference.Embedder}
 * turns images and texts into L2-normalised vectors (the embedding API of a search client), which {@link dev.mm4j.inference.ZeroShotClassifier} scores
 * against prompts made from labels. This package needs
 * only mm4j-core: the HTTP server is mm4j-serve's, the Lucene index mm4j-search's.
 */
package dev.mm4j.inference;
