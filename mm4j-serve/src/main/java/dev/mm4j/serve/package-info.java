/**
 * Serving over HTTP: {@link dev.mm4j.serve.ModelServer} (JSON API, web page, health, metrics, batching) around
 * mm4j-inference's {@link dev.mm4j.inference.VqaModel} and {@link dev.mm4j.inference.Embedder}, with image search
 * over a mm4j-search index.
 */
package dev.mm4j.serve;
