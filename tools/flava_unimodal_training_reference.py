"""Reference numbers for training FLAVA through its unimodal classification heads, from TorchMultimodal.

The tiny fixture (fixtures/flava-tiny: flava_classification.pt, expected.json's config and inputs) already holds
TorchMultimodal's unimodal forward outputs (logits_image, loss_image, logits_text, loss_text). This script adds what
training through those heads gives, for each of required_embedding "image" and "text":
  - losses: the loss before each of three torch.optim.AdamW steps (defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
    weight decay 0.01), the model in eval mode (dropout off), the fixture's weights, images, texts and labels;
  - grads_step0: the first step's gradients of chosen parameters (the head, the encoder the head reads);
  - params_after_3_steps: chosen parameters after the three steps, including one of the encoder the head does NOT
    read (it gets no gradient, so torch's AdamW leaves it untouched: weight decay included);
and, for a text pair, what the reference's text encoder gives on `[CLS] a [SEP] b [SEP]` token ids as FLAVA runs it:
TorchMultimodal's data modules drop the tokenizer's token_type_ids (TextDataModule.on_before_batch_transfer pops
them) and FLAVAModel.encode_text passes none, so every token has type 0 (BERTTextEmbeddings' default).

Run: TMM_PATH=/work/tmm /work/pyref/venv/bin/python tools/flava_unimodal_training_reference.py
Writes mm4j-core/src/test/resources/fixtures/flava-tiny/unimodal_training.json. Never edit it by hand; rerun this.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "mm4j-core", "src", "test", "resources", "fixtures", "flava-tiny")
sys.path.insert(0, "/work/shared/notes/anchors")
import refenv  # noqa: E402  (TorchMultimodal on sys.path, stand-ins for iopath / torchvision)

refenv.setup()
import torch  # noqa: E402
from torchmultimodal.models.flava.model import flava_model_for_classification  # noqa: E402


def arr(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float(x) for x in t.reshape(-1).tolist()]}


def model_from_fixture(cfg):
    kw = dict(cfg)
    num_classes = kw.pop("num_classes")
    hidden = kw.pop("classifier_hidden_sizes")
    dropout = kw.pop("classifier_dropout")
    m = flava_model_for_classification(num_classes, classifier_in_dim=kw["multimodal_hidden_size"],
                                       classifier_hidden_sizes=hidden, classifier_dropout=dropout,
                                       pretrained=False, **kw)
    sd = torch.load(os.path.join(FIX, "flava_classification.pt"), map_location="cpu")
    m.load_state_dict(sd, strict=True)
    m.eval()
    return m


WATCH = {
    "image": ["classifier.model.0.weight", "classifier.model.3.bias",
              "model.image_encoder.embeddings.patch_embeddings.projection.weight",
              "model.image_encoder.embeddings.cls_token", "model.image_encoder.layernorm.weight"],
    "text": ["classifier.model.0.weight", "classifier.model.3.bias",
             "model.text_encoder.embeddings.word_embeddings.weight",
             "model.text_encoder.embeddings.token_type_embeddings.weight", "model.text_encoder.layernorm.weight"],
}
UNTOUCHED = {"image": "model.text_encoder.layernorm.weight", "text": "model.image_encoder.layernorm.weight"}


def main():
    expected = json.load(open(os.path.join(FIX, "expected.json")))
    cfg = expected["config"]
    inp = expected["inputs"]
    image = torch.tensor(inp["image"]["data"], dtype=torch.float32).reshape(inp["image"]["shape"])
    text = torch.tensor(inp["text"]["data"], dtype=torch.long).reshape(inp["text"]["shape"])
    labels = torch.tensor(inp["labels"]["data"], dtype=torch.long)
    out = {"torch": torch.__version__,
           "optimizer": {"name": "AdamW", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
           "heads": {}}
    for head in ["image", "text"]:
        torch.manual_seed(0)
        m = model_from_fixture(cfg)
        params = dict(m.named_parameters())
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        losses, grads = [], {}
        for step in range(3):
            opt.zero_grad(set_to_none=True)
            res = m(image=image, text=text, required_embedding=head, labels=labels)
            losses.append(float(res.loss))
            res.loss.backward()
            if step == 0:
                grads = {n: arr(params[n].grad) for n in WATCH[head]}
                grads["untouched_has_grad"] = params[UNTOUCHED[head]].grad is not None
            opt.step()
        out["heads"][head] = {
            "losses": losses,
            "grads_step0": {k: v for k, v in grads.items() if k != "untouched_has_grad"},
            "untouched": UNTOUCHED[head],
            "untouched_has_grad": grads["untouched_has_grad"],
            "params_after_3_steps": {n: arr(params[n]) for n in WATCH[head] + [UNTOUCHED[head]]},
        }
    # a text pair: [CLS] a [SEP] b [SEP] [PAD]..., as the reference's text encoder runs it (token types all 0)
    m = model_from_fixture(cfg)
    pair = torch.tensor([[101, 7, 8, 9, 102, 10, 11, 102, 0, 0],
                         [101, 12, 102, 13, 14, 15, 16, 17, 102, 0]], dtype=torch.long)
    with torch.no_grad():
        enc = m.model.encode_text(pair)
        typed = m.model.text_encoder(input_ids=pair, token_type_ids=(
            torch.cumsum((pair == 102).long(), 1) - (pair == 102).long()).clamp(max=1) * (pair != 0).long())
    out["pair"] = {
        "input_ids": arr(pair.float()),
        "text_last_hidden_state": arr(enc.last_hidden_state),
        "note": "FLAVA's data modules drop token_type_ids; encode_text gives every token type 0",
        "bert_token_type_ids_differ_by": float((typed.last_hidden_state - enc.last_hidden_state).abs().max()),
    }
    path = os.path.join(FIX, "unimodal_training.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path, {h: out["heads"][h]["losses"] for h in out["heads"]},
          "untouched grads:", {h: out["heads"][h]["untouched_has_grad"] for h in out["heads"]})


if __name__ == "__main__":
    main()
