/**
 * VQA data: TextVQA's official JSON and Hugging Face parquet layouts, JSON Lines / CSV manifests of your own data
 * and {@link dev.mm4j.data.VqaSource} for a store of your own, all read as a {@link dev.mm4j.data.VqaDataset} of
 * {@link dev.mm4j.data.VqaSample}s ({@link dev.mm4j.data.TextVqaDatasets#open} tells the format). Also the answer
 * vocabulary, the image transform, the question tokenizer, the batching {@link dev.mm4j.data.DataLoader} and the
 * synthetic TextVQA generator. Bad records are skipped and counted, never fatal.
 *
 * <p>FLAVA pretraining inputs, as TorchMultimodal's example makes them: {@link dev.mm4j.data.PretrainingSource}s
 * (image-text pairs, texts, image folders) mixed per batch by {@link dev.mm4j.data.PretrainingLoader} into
 * {@link dev.mm4j.data.PretrainingBatch}es, with BERT masking ({@link dev.mm4j.data.MlmMasking}), BEiT block
 * masking ({@link dev.mm4j.data.BlockMasking}), the two-way image transform
 * ({@link dev.mm4j.data.PretrainingImageTransform}, Pillow's resampling in {@link dev.mm4j.data.PillowResize}),
 * ITM negatives ({@link dev.mm4j.data.ItmNegatives}) and the demo's synthetic sources
 * ({@link dev.mm4j.data.SyntheticPretraining}).
 */
package dev.mm4j.data;
