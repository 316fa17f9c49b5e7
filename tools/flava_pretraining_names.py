"""Writes the state-dict names and shapes of TorchMultimodal's full-size FLAVA for pretraining.

    /work/pyref/venv/bin/python tools/flava_pretraining_names.py /work/tmm \
        mm4j-core/src/test/resources/reference/flava-pretraining-full-names.json

Builds `flava_model_for_pretraining(pretrained=False)` (the tutorial checkpoint's layout) on PyTorch's meta device
(no memory, no download: the DALL-E codebook's `load_model`, which would fetch OpenAI's encoder.pkl, is skipped)
and writes [[name, [shape...]], ...] in state-dict order. A cross-check for mm4j's FlavaForPreTraining; not on any
build or run path.
"""
import json
import sys
import types


def stub_iopath():
    try:
        import iopath.common.file_io  # noqa: F401
    except ImportError:
        fio = types.ModuleType("iopath.common.file_io")

        class HTTPURLHandler:
            pass

        class PathManager:
            def register_handler(self, *a, **k):
                pass

            def get_local_path(self, p, **k):
                return p

        fio.HTTPURLHandler = HTTPURLHandler
        fio.PathManager = PathManager
        sys.modules["iopath"] = types.ModuleType("iopath")
        sys.modules["iopath.common"] = types.ModuleType("iopath.common")
        sys.modules["iopath.common.file_io"] = fio


def stub_torchvision():
    """TorchMultimodal's layers import torchvision's StochasticDepth; names and shapes need no real one."""
    try:
        import torchvision.ops.stochastic_depth  # noqa: F401
    except Exception:
        import torch

        class StochasticDepth(torch.nn.Module):
            def __init__(self, p, mode):
                super().__init__()

            def forward(self, x):
                return x

        for name in ["torchvision", "torchvision.ops", "torchvision.ops.stochastic_depth"]:
            sys.modules[name] = types.ModuleType(name)
        sys.modules["torchvision.ops.stochastic_depth"].StochasticDepth = StochasticDepth
        sys.modules["torchvision.ops"].StochasticDepth = StochasticDepth


def main(tmm, out):
    sys.path.insert(0, tmm)
    stub_iopath()
    stub_torchvision()
    import torch
    from torchmultimodal.models.flava import model as flava

    flava.DalleVAEEncoder.load_model = lambda self: None  # no download: names and shapes only
    with torch.device("meta"):
        m = flava.flava_model_for_pretraining(pretrained=False)
    names = [[k, list(v.shape)] for k, v in m.state_dict().items()]
    with open(out, "w") as f:  # one tensor a line
        f.write('{"builder": "flava_model_for_pretraining(pretrained=False)",\n"state_dict": [\n')
        f.write(",\n".join(json.dumps(n) for n in names))
        f.write("\n]}\n")
    print(f"{len(names)} tensors, {sum(torch.Size(s).numel() for _, s in names)} scalars -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
