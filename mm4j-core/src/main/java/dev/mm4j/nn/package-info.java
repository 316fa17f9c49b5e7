/**
 * The small neural-network blocks FLAVA is built from ({@link dev.mm4j.nn.Linear}, {@link dev.mm4j.nn.LayerNorm},
 * {@link dev.mm4j.nn.MultiHeadAttention}, {@link dev.mm4j.nn.TransformerEncoder}, ...) over DJL NDArrays, with
 * PyTorch's parameter names and initialization.
 */
package dev.mm4j.nn;
