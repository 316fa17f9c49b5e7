"""A second FLAVA pretraining fixture in the schema of fixtures/flava-tiny/pretraining.{pt,json} (other sizes: hidden
20, image 48 / patch 12, codebook 32 with two blocks a group and 50 tokens, batch 4 with text padding and two
matching pairs of four), computed by TorchMultimodal, to run FlavaPretrainingParityTest on a configuration other
than the shared fixture's:

    /work/pyref/venv/bin/python tools/flava_pretraining_fixture.py /tmp/out [seed]
    cp /tmp/out/pretraining.* mm4j-core/src/test/resources/fixtures/flava-tiny/   # then restore the shared ones

Not on any build or run path; never commit its output over the shared fixture.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flava_pretraining_names import stub_iopath, stub_torchvision  # noqa: E402

sys.path.insert(0, os.environ.get("TMM_PATH", "/work/tmm"))
stub_iopath()
stub_torchvision()
import torch  # noqa: E402
from torchmultimodal.models.flava import model as fm  # noqa: E402
from torchmultimodal.modules.losses.flava import FLAVAPretrainingLoss  # noqa: E402

torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
cfg = dict(image_hidden_size=20, image_num_attention_heads=2, image_num_hidden_layers=1, image_intermediate_size=40,
           image_size=48, patch_size=12, text_hidden_size=20, text_num_attention_heads=2, text_num_hidden_layers=2,
           text_intermediate_size=32, vocab_size=90, max_position_embeddings=20, multimodal_hidden_size=20,
           multimodal_num_attention_heads=2, multimodal_num_hidden_layers=1, multimodal_intermediate_size=36,
           text_and_image_proj_size=12)
cb = dict(image_size=32, group_count=4, n_hid=8, n_blk_per_group=2, vocab_size=50)
model = fm.flava_model(**cfg)
enc = fm.DalleVAEEncoder.__new__(fm.DalleVAEEncoder); torch.nn.Module.__init__(enc)
enc.image_size = cb["image_size"]; enc.encoder = fm.DalleEncoder(group_count=4, n_hid=8, n_blk_per_group=2, vocab_size=50)
loss = FLAVAPretrainingLoss(hidden_size=cfg["multimodal_hidden_size"], text_vocab_size=cfg["vocab_size"], image_vocab_size=50)
m = fm.FLAVAForPreTraining(model, enc, loss)
with torch.no_grad():
    for n, p in m.named_parameters():
        if n.endswith("logit_scale"): p.fill_(math.log(1 / 0.07))
        elif "norm" in n and n.endswith("weight"): p.copy_(1 + 0.1 * torch.randn_like(p))
        else: p.copy_(0.1 * torch.randn_like(p))
m.eval()
B, L, P = 4, 9, (48 // 12) ** 2
image = torch.rand(B, 3, 48, 48); ifc = 0.1 + 0.8 * torch.rand(B, 3, 32, 32)
text = torch.randint(5, 90, (B, L)); text[:, 0] = 2; text[1, 6:] = 0; text[3, 4:] = 0
mlm = torch.full((B, L), -1); tm = text.clone()
for b, t in [(0, 2), (0, 5), (1, 1), (1, 3), (2, 4), (2, 7), (3, 2)]:
    mlm[b, t] = text[b, t]; tm[b, t] = 3
pm = (torch.rand(B, P) < 0.4).long(); pm[:, 0] = 1
itm = torch.tensor([1, 0, 0, 1])
def cases():
    return {"pairs": dict(image=image, text=text, image_for_codebook=ifc, image_patches_mask=pm, text_masked=tm,
                          itm_labels=itm, mlm_labels=mlm),
            "image": dict(image=image, image_for_codebook=ifc, image_patches_mask=pm),
            "text": dict(text_masked=tm, mlm_labels=mlm)}
def losses(c):
    out = m(**c).losses
    return {k: v for k, v in vars(out).items() if v is not None}
T = lambda t: {"shape": list(t.shape), "data": t.flatten().tolist()}
with torch.no_grad():
    codebook_labels = enc(ifc).flatten(1)
    ev = {k: {n: float(v) for n, v in losses(c).items()} for k, c in cases().items()}
names = ["model.image_encoder.embeddings.patch_embeddings.projection.weight", "loss.mmm_loss.mim.cls.bias",
         "loss.itm_loss.cls.seq_relationship.weight", "loss.contrastive_loss.logit_scale", "loss.mlm_loss.cls.bias",
         "model.text_encoder.encoder.layer.1.feedforward.model.0.weight", "model.image_encoder.embeddings.mask_token"]
params = [p for n, p in m.named_parameters() if not n.startswith("image_codebook.")]
opt = torch.optim.AdamW(params)
steps = []
sd_before = {k: v.clone() for k, v in m.state_dict().items()}
for s in range(3):
    opt.zero_grad()
    per = {}; total = 0
    for k, c in cases().items():
        l = losses(c); per[k] = {n: float(v) for n, v in l.items()}; total = total + sum(l.values())
    total.backward()
    if s == 0:
        pd = dict(m.named_parameters())
        grads = {n: T(pd[n].grad) for n in names}
    opt.step(); steps.append(per)
pd = dict(m.named_parameters())
after = {n: T(pd[n].detach()) for n in names}
out = sys.argv[1]
torch.save(sd_before, out + "/pretraining.pt")
json.dump({"preset": "other", "config": cfg, "image_vocab_size": 50, "codebook": cb, "logit_scale_init": math.log(1 / 0.07),
           "ignore_index": -1, "mask_token_id": 3,
           "inputs": {"image": T(image), "image_for_codebook": T(ifc), "text": T(text), "text_masked": T(tm),
                      "mlm_labels": T(mlm), "image_patches_mask": T(pm), "itm_labels": T(itm)},
           "codebook_labels": T(codebook_labels), "eval": ev,
           "train": {"optimizer": {"name": "AdamW", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2},
                     "losses_per_step": steps, "grads_step0": grads, "params_after_3_steps": after}},
          open(out + "/pretraining.json", "w"))
print(ev)
