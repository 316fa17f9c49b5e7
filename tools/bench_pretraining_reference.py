"""Times TorchMultimodal's full-size pretraining step on PyTorch eager, the anchor of `mm4j bench --task pretraining`.

usage: OMP_NUM_THREADS=2 TMM_PATH=/work/tmm /work/pyref/venv/bin/python tools/bench_pretraining_reference.py \
           [fp32|bf16] [BATCH=2] [TEXT_LEN=77] [STEPS=4]

FLAVAForPreTraining as flava_model_for_pretraining(codebook_image_size=112) builds it (random weights: the DALL-E
codebook is built with pretrained=False, as nothing is downloaded), the codebook frozen, AdamW over the rest, train
mode; a batch of image-text pairs as the VL data gives it (the same shapes as the Java bench's: image 224, codebook
input 112, 75 of 196 patches masked, captions of 20-30 tokens padded to TEXT_LEN with 15% masked, ITM labels),
its four losses (ITM, MMM text, MMM image, global contrastive). bf16 = torch.autocast("cpu", dtype=torch.bfloat16).
The first step is the warm-up; prints one JSON line per step, then a summary line (train_step_s_median over the steps
after the first; peak RSS as peak_rss_mb in MiB, ru_maxrss / 1024, and peak_rss_gb in 10^9 bytes, the unit of the Java
bench's "G").
Not on any build or run path.
"""
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flava_pretraining_names import stub_iopath, stub_torchvision  # noqa: E402

sys.path.insert(0, os.environ.get("TMM_PATH", "/work/tmm"))
stub_iopath()
stub_torchvision()
import contextlib  # noqa: E402

import torch  # noqa: E402
from torchmultimodal.models.flava import model as fm  # noqa: E402
from torchmultimodal.modules.losses.flava import FLAVAPretrainingLoss  # noqa: E402


def main():
    precision = sys.argv[1] if len(sys.argv) > 1 else "fp32"
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    text_len = int(sys.argv[3]) if len(sys.argv) > 3 else 77
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    torch.manual_seed(0)
    t0 = time.time()
    model = fm.FLAVAForPreTraining(model=fm.flava_model(), image_codebook=fm.DalleVAEEncoder(image_size=112, pretrained=False),
                                   loss=FLAVAPretrainingLoss(hidden_size=768))
    model.image_codebook.requires_grad_(False)
    build_s = time.time() - t0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, 224, 224, generator=g) * 4 - 2
    image_for_codebook = 0.1 + 0.8 * torch.rand(batch, 3, 112, 112, generator=g)
    mask = torch.zeros(batch, 196, dtype=torch.long)
    for b in range(batch):  # 75 patches as block masking gives them (their places do not change the cost)
        mask[b, torch.randperm(196, generator=g)[:75]] = 1
    text = torch.zeros(batch, text_len, dtype=torch.long)
    text_masked = torch.zeros(batch, text_len, dtype=torch.long)
    mlm_labels = torch.full((batch, text_len), -1, dtype=torch.long)
    for b in range(batch):
        n = min(text_len, 20 + int(torch.randint(0, 11, (1,), generator=g)))
        ids = torch.randint(1000, 30522, (n,), generator=g)
        ids[0], ids[-1] = 101, 102
        text[b, :n] = ids
        text_masked[b, :n] = ids
        picked = (torch.rand(n, generator=g) < 0.15)
        picked[0] = picked[-1] = False
        picked[1] = True
        text_masked[b, :n][picked] = 103
        mlm_labels[b, :n][picked] = ids[picked]
    itm_labels = torch.tensor([1 if b % 2 == 0 else 0 for b in range(batch)])
    model.train()
    times = []
    for i in range(steps):
        t = time.time()
        opt.zero_grad()
        with cast():
            out = model(image=image, text=text, image_for_codebook=image_for_codebook, image_patches_mask=mask,
                        text_masked=text_masked, itm_labels=itm_labels, mlm_labels=mlm_labels)
            losses = [v for v in vars(out.losses).values() if v is not None]
            loss = sum(losses)
        loss.backward()
        opt.step()
        times.append(time.time() - t)
        print(json.dumps({"step": i, "s": round(times[-1], 3), "loss": float(loss.detach()), "losses": len(losses)}), flush=True)
    timed = times[1:] or times
    print(json.dumps({
        "impl": "torchmultimodal FLAVAForPreTraining, torch " + torch.__version__, "precision": precision,
        "threads": torch.get_num_threads(), "batch": batch, "text_len": text_len, "build_s": round(build_s, 2),
        "train_step_s": [round(x, 3) for x in times], "train_step_s_median": round(statistics.median(timed), 3),
        "train_step_s_min": round(min(timed), 3),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2),
    }))


if __name__ == "__main__":
    main()
