#!/usr/bin/env python3
"""The baseline of bench/augment.ts: main_moco.py's view making in torchvision + Pillow.

Makes 2 views of each of `batch` images (the JPEG photos of test/fixtures/images/inputs that
bench/augment.ts uses, decoded once with Pillow and cycled) with the original's augs_dict sets
(MoCo v2's `default`, `ventral`, `dorsal`; moco.loader.GaussianBlur = Pillow's GaussianBlur),
in one process, as a DataLoader worker does, and prints views per second per set.

Usage: /usr/bin/python3 bench/augment_baseline.py [--batch 64] [--size 224] [--rounds 3]
"""
import os
import random
import sys
import time

import torch
from PIL import Image, ImageFilter
import torchvision.transforms as T


class GaussianBlur:
    """moco.loader.GaussianBlur: Pillow's GaussianBlur with a sigma uniform in [.1, 2.]."""

    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, x):
        return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.sigma[0], self.sigma[1])))


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def sets(size):
    norm = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    jitter = [T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2),
              T.RandomApply([GaussianBlur([0.1, 2.0])], p=0.5)]
    crop = T.RandomResizedCrop(size, scale=(0.2, 1.0))
    return {
        "default": T.Compose([crop, *jitter, T.RandomHorizontalFlip(), T.ToTensor(), norm]),
        "ventral": T.Compose([crop, T.RandomHorizontalFlip(), T.ToTensor(), norm]),
        "dorsal": T.Compose([*jitter, T.Resize(size), T.CenterCrop(size), T.ToTensor(), norm]),
    }


def main():
    batch, size, rounds = arg("--batch", 64), arg("--size", 224), arg("--rounds", 3)
    torch.set_num_threads(1)  # one DataLoader worker's share
    d = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "images", "inputs")
    names = sorted(f for f in os.listdir(d) if f.endswith(".jpg") and not any(s in f for s in ("cmyk", "100x80", "gray")))
    photos = [Image.open(os.path.join(d, f)).convert("RGB") for f in names]
    for p in photos:
        p.load()
    images = [photos[i % len(photos)] for i in range(batch)]
    print(f"# batch {batch} (2 views each, {size}x{size}) cycling over {len(photos)} photos; "
          f"torch {torch.__version__}, one process, one thread")
    for name, tf in sets(size).items():
        for r in range(rounds + 1):  # round 0 warms up
            if r == 1:
                t0 = time.perf_counter()
            for img in images:
                tf(img)
                tf(img)
        ms = (time.perf_counter() - t0) * 1000
        views = 2 * batch * rounds
        print(f"{name:8} torchvision: {views / (ms / 1000):5.0f} views/s ({ms / views:.2f} ms/view)")


if __name__ == "__main__":
    main()
