/**
 * Collectives for data-parallel training on libtorch's own c10d: {@link dev.mm4j.train.dist.ProcessGroup} (a
 * {@code TCPStore} served by rank 0 and a {@code ProcessGroupGloo}, inside the libtorch DJL has loaded, through the
 * native part built from {@code src/main/native}), {@link dev.mm4j.train.dist.Rendezvous} (where the ranks meet; also
 * from torchrun's environment variables) and {@link dev.mm4j.train.dist.Launcher} (N local processes, like torchrun).
 * Nothing here is loaded unless distributed training is asked for. The gradient averaging itself is
 * {@link dev.mm4j.train.DataParallelSync}.
 */
package dev.mm4j.train.dist;
