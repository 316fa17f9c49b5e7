package dev.mm4j.inference;

/** One of a model's top answers to a question, with the probability the model gives it. */
public record Answer(String answer, double probability) {}
