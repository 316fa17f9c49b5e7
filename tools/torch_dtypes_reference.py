"""Writes checkpoints of every dtype mm4j reads, as PyTorch and safetensors save them, and the values they hold.

    /work/pyref/venv214/bin/python tools/torch_dtypes_reference.py mm4j-core/src/test/resources/reference/torch-dtypes \
        mm4j-core/src/test/resources/fixtures/flava-tiny

Writes, into DIR:
- dtypes.pt: torch.save's zip format. The classic dtypes through typed storages and _rebuild_tensor_v2; PyTorch
  2.3+'s uint16/32/64 and float8 through an untyped storage and _rebuild_tensor_v3 (the two float8 tensors and a
  non-contiguous view share one storage). The float8 tensors hold all 256 codes.
- dtypes-legacy.pt: the same in the legacy format (PyTorch before 1.6, or _use_new_zipfile_serialization=False),
  inside {"state_dict": ..., "epoch": 3} as training scripts save it.
- dtypes.safetensors: the same tensors (safetensors' U16 ... F8_E4M3 codes).
- values.json: {name: [dtype, shape, values]}, each value as PyTorch converts it to float32 or int64 (NaN as
  "nan", infinities as "inf" / "-inf").
- flava_classification_views-legacy.pt (with the fixture folder as second argument): the reference fixture's
  flava_classification_views.pt (shared storages, offsets, a column-major tensor) loaded and saved again in the
  legacy format; it must give the fixture's logits (FlavaParityTest).
- weights-only-extras.pt: what torch.load(weights_only=True) accepts beside plain tensors: under "state_dict" a
  tensor with a Python attribute (_rebuild_from_type_v2) and a parameter with one (_rebuild_parameter_with_state),
  beside it a Counter, a set, bytes, a bytearray and a complex number.
- no-crc32.pt: dtypes.pt's tensors saved after torch.serialization.set_crc32_options(False) (PyTorch 2.6+): every
  zip entry's CRC-32 is 0, and torch.load does not check them.
- unreadable-dtype.pt: a float32 tensor and a float8_e4m3fnuz one, a dtype mm4j does not read (its load is a
  one-line error naming the tensor).
A cross-check for mm4j's checkpoint readers (TorchDtypesReferenceTest); not on any build or run path. Needs
torch >= 2.3 and safetensors.
"""
import collections
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file


def tensors():
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    t = {
        "float32": torch.tensor([0.0, -1.5, 3.25e-3, 1e30, float("inf")], dtype=torch.float32),
        "float16": torch.tensor([1.0, -0.5, 6.1e-5, 65504.0, 5.96e-8], dtype=torch.float16),
        "bfloat16": torch.tensor([1.0, -2.5, 3.0e-3, 1e38], dtype=torch.bfloat16),
        "float64": torch.tensor([1.0 / 3, -2.0], dtype=torch.float64),
        "int64": torch.tensor([-(2**62), 7], dtype=torch.int64),
        "int32": torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
        "int16": torch.tensor([-32768, 32767], dtype=torch.int16),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "uint16": torch.tensor([0, 1, 65535], dtype=torch.uint16),
        "uint32": torch.tensor([0, 1, 2**32 - 1], dtype=torch.uint32),
        "uint64": torch.tensor([0, 1, 2**63 - 1], dtype=torch.uint64),
        "float8_e4m3fn": codes.view(torch.float8_e4m3fn),
        "float8_e5m2": codes.view(torch.float8_e5m2),
    }
    # a non-contiguous float8 view of a shared untyped storage: every other code, as 2 x 64
    t["float8_e4m3fn_view"] = t["float8_e4m3fn"].view(64, 4)[:, ::2].t()
    return t


def value(x):
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def expected(t):
    out = {}
    for name, x in t.items():
        floating = x.dtype.is_floating_point
        conv = x.to(torch.float32) if floating else x.to(torch.int64)
        out[name] = [str(x.dtype).replace("torch.", ""), list(x.shape), [value(v) for v in conv.flatten().tolist()]]
    return out


def main(out_dir, fixtures=None):
    os.makedirs(out_dir, exist_ok=True)
    t = tensors()
    torch.save(t, os.path.join(out_dir, "dtypes.pt"))
    legacy = os.path.join(out_dir, "dtypes-legacy.pt")
    torch.save({"state_dict": t, "epoch": 3}, legacy, _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous().clone() for k, v in t.items()}, os.path.join(out_dir, "dtypes.safetensors"))
    codes = torch.arange(4, dtype=torch.int32).to(torch.uint8)
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(t, os.path.join(out_dir, "no-crc32.pt"))
    finally:
        torch.serialization.set_crc32_options(True)
    flagged = torch.arange(4, dtype=torch.float32)
    flagged.flag = True
    param = torch.nn.Parameter(torch.tensor([0.5, -0.25]))
    param.tensor_model_parallel = False
    extras = {
        "state_dict": {"plain": torch.ones(2), "flagged": flagged, "param": param},
        "counter": collections.Counter({"x": 2}), "set": {1, 2}, "bytes": b"\x00\xffab", "bytearray": bytearray(b"xy"),
        "complex": complex(1, 2),
    }
    torch.save(extras, os.path.join(out_dir, "weights-only-extras.pt"))
    torch.load(os.path.join(out_dir, "weights-only-extras.pt"), weights_only=True)  # what we claim torch accepts
    unreadable = {"ok": torch.ones(2), "w": codes.view(torch.float8_e4m3fnuz)}
    torch.save(unreadable, os.path.join(out_dir, "unreadable-dtype.pt"))
    if fixtures:
        views = torch.load(os.path.join(fixtures, "flava_classification_views.pt"))
        path = os.path.join(out_dir, "flava_classification_views-legacy.pt")
        torch.save(views, path, _use_new_zipfile_serialization=False)
    with open(os.path.join(out_dir, "values.json"), "w") as f:
        json.dump({"torch": torch.__version__, "tensors": expected(t)}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
