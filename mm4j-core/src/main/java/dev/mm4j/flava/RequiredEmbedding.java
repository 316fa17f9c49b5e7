package dev.mm4j.flava;

/** Which encoder's output the head reads (TorchMultimodal's {@code required_embedding}). */
public enum RequiredEmbedding {
    IMAGE,
    TEXT,
    MM
}
