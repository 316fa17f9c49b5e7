"""Reference numbers for mm4j's pretraining inputs (dev.mm4j.data), from TorchMultimodal's own code.

Writes mm4j-core/src/test/resources/fixtures/pretraining/reference_inputs.json:
  - map_pixels: torchmultimodal.transforms.flava_transform.map_pixels on fixed float32 pixels;
  - masking: statistics of the reference ImageMaskingGenerator (FLAVAImageTransform's defaults: 14x14 window,
    75 patches, min 16, max None, min aspect 0.3) over 1000 draws (Python's random seeded with 0);
  - scripted_masks: the reference generator's masks when its random draws come from a scripted stream (a 64-bit
    xorshift* whose doubles the Java test reproduces with a Random subclass): uniform(a, b) = a + (b - a) * u,
    randint(a, b) = a + floor(u * (b - a + 1)), each taking the next u; so the masks must be equal bit for bit;
  - resize: what torchvision's F.resize / F.resized_crop do to a PIL image (PIL's Image.resize with BICUBIC for
    the encoder input and LANCZOS for the codebook input) on a fixed 8-bit RGB image, and PIL's crop + resize.

Run: TMM_PATH=/work/tmm /work/pyref/venv/bin/python tools/flava_pretraining_inputs_reference.py
Never edit the JSON by hand; rerun this script.
"""
import json
import math
import os
import random
import sys
import types

import numpy as np
import torch
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "mm4j-core", "src", "test", "resources", "fixtures",
                   "pretraining", "reference_inputs.json")


def import_flava_transform():
    """flava_transform imports torchvision at module level; the two pieces used here (map_pixels,
    ImageMaskingGenerator) need none of it, so a stand-in is registered when torchvision is missing."""
    sys.path.insert(0, os.environ.get("TMM_PATH", "/work/tmm"))
    try:
        import iopath.common.file_io  # noqa: F401
    except ImportError:  # only used for URL downloads, which this script never does
        fio = types.ModuleType("iopath.common.file_io")
        fio.HTTPURLHandler = type("HTTPURLHandler", (), {})
        fio.PathManager = type("PathManager", (), {"register_handler": lambda self, *a, **k: None})
        sys.modules.update({"iopath": types.ModuleType("iopath"), "iopath.common": types.ModuleType("iopath.common"),
                            "iopath.common.file_io": fio})
    try:
        import torchvision  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        tr = types.ModuleType("torchvision.transforms")
        fn = types.ModuleType("torchvision.transforms.functional")

        class InterpolationMode:
            BICUBIC = "bicubic"
            LANCZOS = "lanczos"

        class Resize:
            pass

        class RandomResizedCrop:
            pass

        tr.InterpolationMode = InterpolationMode
        tr.Resize = Resize
        tr.RandomResizedCrop = RandomResizedCrop
        tr.functional = fn
        tv.transforms = tr
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
    from torchmultimodal.transforms import flava_transform
    return flava_transform


class ScriptedRandom:
    """xorshift64*: u = (x >> 11) * 2**-53 of the next state; stands in for Python's random module."""
    M = (1 << 64) - 1

    def __init__(self, seed):
        self.x = (seed * 0x9E3779B97F4A7C15 + 1) & self.M

    def next_u(self):
        x = self.x
        x ^= x >> 12
        x ^= (x << 25) & self.M
        x ^= x >> 27
        self.x = x
        return (((x * 0x2545F4914F6CDD1D) & self.M) >> 11) * (2.0 ** -53)

    def uniform(self, a, b):
        return a + (b - a) * self.next_u()

    def randint(self, a, b):
        return a + math.floor(self.next_u() * (b - a + 1))


def scripted_masks(ft):
    out = []
    saved = ft.random
    try:
        for seed, (window, num, lo, hi, min_aspect) in enumerate(
                [(14, 75, 16, None, 0.3), (14, 75, 16, None, 0.3), (14, 75, 16, None, 0.3), (8, 30, 4, 12, 0.5),
                 (10, 60, 16, None, 0.3), (6, 36, 4, None, 0.3)]):
            ft.random = ScriptedRandom(seed)
            gen = ft.ImageMaskingGenerator(window, num_masking_patches=num, max_num_patches=hi, min_num_patches=lo,
                                           min_aspect=min_aspect)
            masks = [gen().reshape(-1).tolist() for _ in range(3)]
            out.append({"seed": seed, "window": window, "num_masking_patches": num, "min_num_patches": lo,
                        "max_num_patches": hi, "min_aspect": min_aspect, "masks": masks})
    finally:
        ft.random = saved
    return out


def test_image(w, h):
    """The same 8-bit RGB image the Java test builds: r=(7x+3y)%256, g=(5x*y+11)%256, b=(13x+17y+x*x)%256."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            a[y, x] = ((7 * x + 3 * y) % 256, (5 * x * y + 11) % 256, (13 * x + 17 * y + x * x) % 256)
    return Image.fromarray(a, "RGB")


def chw_bytes(img):
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).reshape(-1).tolist()


def main():
    ft = import_flava_transform()
    pixels = torch.tensor([0.0, 1.0, 0.5, 1 / 255, 254 / 255, 0.123456789, 0.75, 0.3333333], dtype=torch.float32)
    mapped = ft.map_pixels(pixels)

    random.seed(0)
    gen = ft.ImageMaskingGenerator(14, num_masking_patches=75, max_num_patches=None, min_num_patches=16)
    counts = []
    per_patch = np.zeros((14, 14))
    for _ in range(1000):
        m = gen()
        counts.append(int(m.sum()))
        per_patch += m
    counts = np.array(counts)

    img = test_image(37, 29)
    resize = {
        "source_width": 37, "source_height": 29,
        "bicubic_16x16": chw_bytes(img.resize((16, 16), Image.BICUBIC)),
        "lanczos_8x8": chw_bytes(img.resize((8, 8), Image.LANCZOS)),
        "bicubic_48x40": chw_bytes(img.resize((48, 40), Image.BICUBIC)),
        # F.resized_crop(img, top=3, left=5, height=20, width=25, size) = img.crop((5, 3, 30, 23)).resize(size)
        "crop_top3_left5_h20_w25_bicubic_16x16": chw_bytes(img.crop((5, 3, 30, 23)).resize((16, 16), Image.BICUBIC)),
        "crop_top3_left5_h20_w25_lanczos_8x8": chw_bytes(img.crop((5, 3, 30, 23)).resize((8, 8), Image.LANCZOS)),
    }
    out = {
        "map_pixels": {"input": pixels.tolist(), "output": mapped.tolist(),
                       "eps": ft.LOGIT_LAPLACE_EPS},
        "masking": {
            "window": 14, "num_masking_patches": 75, "min_num_patches": 16, "max_num_patches": gen.max_num_patches,
            "log_aspect_ratio": list(gen.log_aspect_ratio), "draws": len(counts),
            "mean_count": float(counts.mean()), "std_count": float(counts.std()),
            "min_count": int(counts.min()), "max_count": int(counts.max()),
            "mean_patch_frequency_center_4x4": float(per_patch[5:9, 5:9].mean() / len(counts)),
            "mean_patch_frequency_corners": float((per_patch[0, 0] + per_patch[0, 13] + per_patch[13, 0]
                                                   + per_patch[13, 13]) / 4 / len(counts)),
        },
        "scripted_masks": scripted_masks(ft),
        "resize": resize,
        "pillow_version": Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__,
        "torch_version": torch.__version__,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out["masking"]), json.dumps(out["map_pixels"]))


if __name__ == "__main__":
    main()
