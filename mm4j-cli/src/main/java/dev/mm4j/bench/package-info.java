/**
 * Benchmarks behind the {@code bench*} commands: full-size FLAVA train and inference steps against the matmul peak
 * ({@link dev.mm4j.bench.TrainBench}), checkpoint loading ({@link dev.mm4j.bench.LoadBench}), the data loader
 * ({@link dev.mm4j.bench.LoaderBench}) and the HTTP service under load ({@link dev.mm4j.bench.ServeBench}). Each
 * prints its figures; none is a test.
 */
package dev.mm4j.bench;
