/**
 * Answering questions with a fine-tuned model: {@link dev.mm4j.serve.VqaModel} from Java (thread-safe, image cache),
 * and {@link dev.mm4j.serve.VqaServer} over HTTP (JSON API, web page, health, metrics, batching).
 */
package dev.mm4j.serve;
