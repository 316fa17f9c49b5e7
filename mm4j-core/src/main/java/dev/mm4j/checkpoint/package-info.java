/**
 * Reading and writing model checkpoints without Python.
 *
 * <ul>
 *   <li>{@link dev.mm4j.checkpoint.Checkpoints#read(java.nio.file.Path)}: a {@code torch.save} zip archive (or a
 *       legacy pre-1.6 file), or a safetensors file, told apart by its first bytes ({@link dev.mm4j.checkpoint.CheckpointFormat}).</li>
 *   <li>{@link dev.mm4j.checkpoint.TorchCheckpoints}: a restricted unpickler (allow-listed globals only, never
 *       executes anything) over memory-mapped storages; views, offsets and non-contiguous strides are
 *       materialized row-major; float16/bfloat16/float64 load as float32, integer/bool as int64; every
 *       storage size and tensor extent is checked before anything is allocated.</li>
 *   <li>{@link dev.mm4j.checkpoint.SafeTensors}: validated reading; atomic writing of
 *       {@link dev.mm4j.checkpoint.HostTensor}s or DJL {@code NDArray}s.</li>
 *   <li>{@link dev.mm4j.checkpoint.DjlTensors}: host tensors to {@code NDArray}s on a manager's device.</li>
 *   <li>Sharded checkpoints ({@code *.index.json}) and model folders: {@link dev.mm4j.checkpoint.Checkpoints}.</li>
 *   <li>{@link dev.mm4j.checkpoint.PretrainedCheckpoint}: pretrained FLAVA in TorchMultimodal's names, whichever
 *       layout the file has; Hugging Face transformers' names are mapped by
 *       {@link dev.mm4j.checkpoint.HfFlavaLayout}, with a load report of what was mapped, ignored and missing.</li>
 * </ul>
 *
 * <pre>{@code
 * try (StateDict sd = Checkpoints.read(Path.of("flava.pt"));
 *      NDManager m = NDManager.newBaseManager(device)) {
 *     NDArray w = DjlTensors.toNDArray(sd.get("classifier.model.3.weight"), m);
 * }
 * }</pre>
 * All failures are {@link dev.mm4j.checkpoint.CheckpointException}s (an {@code IOException}) whose message
 * starts with the file and names the problem.
 */
package dev.mm4j.checkpoint;
