/**
 * Scoring: the official VQA accuracy ({@link dev.mm4j.eval.VqaAccuracy}), a model evaluated on a split
 * ({@link dev.mm4j.eval.Evaluator}, {@link dev.mm4j.eval.BundleEvaluation}), accuracy by question type and the
 * predictions file.
 */
package dev.mm4j.eval;
