"""PyTorch DDP anchor for mm4j's data-parallel training (issue 30): the same work in PyTorch, side by side.

Not part of the product (no Python on its build or run path); a cross-check with the local PyTorch venv.

usage:
  python tools/anchors/ddp_anchor.py allreduce FLOATS [ITERS]
      2 processes (gloo, 127.0.0.1, 1 intra-op thread each) all-reduce a float32 tensor of FLOATS in place:
      best and mean seconds and GB/s, as dev.mm4j.train.dist.C10dRank's bench mode prints for mm4j.
  TMM_PATH=... python tools/anchors/ddp_anchor.py train [STEPS] [BATCH] [fp32|bf16] [full|tiny]
      2 processes of TorchMultimodal's FLAVA for classification (3997 classes, random weights) wrapped in
      DistributedDataParallel (gloo), AdamW, batch BATCH per rank, the question padded to 24 tokens; s/step per
      rank (the anchor for `mm4j finetune --nproc 2 --threads 1`). `tiny` shrinks the model to check the script.
Prints one JSON line per rank (with its peak RSS). `mm4j bench --nproc 2 --anchors PYTHON` runs both modes and prints
their rows beside mm4j's.
"""
import json
import os
import resource
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(rank, world, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def emit(record):
    """One JSON line in one write (the ranks share stdout: lines must not interleave)."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def allreduce(rank, world, port, n, iters):
    setup(rank, world, port)
    t = torch.zeros(n, dtype=torch.float32)
    dist.all_reduce(t)  # warm-up
    times = []
    for _ in range(iters):
        s = time.time()
        dist.all_reduce(t)
        times.append(time.time() - s)
    gb = n * 4 / 1e9
    emit({"rank": rank, "impl": "torch " + torch.__version__ + " gloo", "floats": n, "gb": round(gb, 3),
                      "best_s": round(min(times), 3), "mean_s": round(sum(times) / len(times), 3),
                      "gb_per_s_best": round(gb / min(times), 2),
                      "gb_per_s_mean": round(gb / (sum(times) / len(times)), 2), "peak_rss_mb": peak_rss_mb()})
    dist.destroy_process_group()


def tmm_on_path():
    """TorchMultimodal from TMM_PATH, with refenv's stand-ins for iopath and torchvision where they are missing."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import refenv
    refenv.setup()


def train(rank, world, port, steps, batch, precision, size):
    tmm_on_path()
    from torchmultimodal.models.flava.model import flava_model_for_classification
    import contextlib
    setup(rank, world, port)
    torch.manual_seed(0)
    kwargs = {}
    if size == "tiny":
        kwargs = dict(text_hidden_size=32, text_num_hidden_layers=1, text_num_attention_heads=2,
                      text_intermediate_size=64, image_hidden_size=32, image_num_hidden_layers=1,
                      image_num_attention_heads=2, image_intermediate_size=64, multimodal_hidden_size=32,
                      multimodal_num_hidden_layers=1, multimodal_num_attention_heads=2,
                      multimodal_intermediate_size=64, classifier_in_dim=32, classifier_hidden_sizes=32)
    model = flava_model_for_classification(num_classes=3997, pretrained=False, **kwargs)
    # FLAVA for classification leaves some parameters without a gradient (as mm4j's DataParallelSync does, DDP
    # must skip them)
    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    opt = torch.optim.AdamW(ddp.parameters())
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    g = torch.Generator().manual_seed(rank)
    image = torch.rand(batch, 3, 224, 224, generator=g)
    text = torch.zeros(batch, 24, dtype=torch.long)
    text[:, :12] = torch.randint(1000, 20000, (batch, 12), generator=g)
    text[:, 0] = 101
    labels = torch.randint(0, 3997, (batch,), generator=g)
    ddp.train()
    times = []
    for _ in range(steps):
        s = time.time()
        opt.zero_grad()
        with cast():
            out = ddp(text=text, image=image, labels=labels)
        out.loss.backward()
        opt.step()
        times.append(time.time() - s)
    params = sum(p.numel() for p in model.parameters())
    emit({"rank": rank, "impl": "torch " + torch.__version__ + " DDP gloo", "size": size,
                      "parameters": params, "precision": precision, "batch_per_rank": batch, "threads": 1,
                      "step_s": [round(x, 3) for x in times],
                      "step_s_min_after_first": round(min(times[1:] or times), 3),
                      "step_s_median_after_first": round(sorted(times[1:] or times)[len(times[1:] or times) // 2], 3),
                      "peak_rss_mb": peak_rss_mb()})
    dist.destroy_process_group()


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "allreduce"
    port = free_port()
    if what == "allreduce":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 245_000_000
        iters = int(sys.argv[3]) if len(sys.argv) > 3 else 3
        mp.spawn(allreduce, args=(2, port, n, iters), nprocs=2)
    elif what == "train":
        steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
        batch = int(sys.argv[3]) if len(sys.argv) > 3 else 2
        precision = sys.argv[4] if len(sys.argv) > 4 else "fp32"
        size = sys.argv[5] if len(sys.argv) > 5 else "full"
        mp.spawn(train, args=(2, port, steps, batch, precision, size), nprocs=2)
    else:
        sys.exit("usage: ddp_anchor.py allreduce FLOATS [ITERS] | train [STEPS] [BATCH] [fp32|bf16] [full|tiny]")


if __name__ == "__main__":
    main()
