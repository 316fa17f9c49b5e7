/**
 * VQA data: TextVQA's official JSON and Hugging Face parquet layouts, JSON Lines / CSV manifests of your own data
 * and {@link dev.mm4j.data.VqaSource} for a store of your own, all read as a {@link dev.mm4j.data.VqaDataset} of
 * {@link dev.mm4j.data.VqaSample}s ({@link dev.mm4j.data.TextVqaDatasets#open} tells the format). Also the answer
 * vocabulary, the image transform, the question tokenizer, the batching {@link dev.mm4j.data.DataLoader} and the
 * synthetic TextVQA generator. Bad records are skipped and counted, never fatal.
 */
package dev.mm4j.data;
