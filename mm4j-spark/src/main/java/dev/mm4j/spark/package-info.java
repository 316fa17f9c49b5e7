/**
 * Batch prediction on Apache Spark ({@code batch-predict}, {@code bench-spark}): a split as a DataFrame of questions,
 * one bundle per executor, answers and accuracy equal to single-process evaluation. Built only with {@code -Pspark}.
 */
package dev.mm4j.spark;
