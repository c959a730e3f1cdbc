#!/usr/bin/env python3
"""main_moco.py's training loop on one GPU, end to end, for bench/device/pretrain-bench.ts.

What a user of the original runs to pre-train: an ImageFolder read by a DataLoader (shuffle, drop_last,
pin_memory, `--workers` processes) through TwoCropsTransform of the MoCo v2 augmentations (the
original's `--model default` set: RandomResizedCrop(size, scale=(0.2, 1)), ColorJitter(0.4, 0.4, 0.4,
0.1) with p 0.8, RandomGrayscale(0.2), moco.loader.GaussianBlur([0.1, 2]) with p 0.5,
RandomHorizontalFlip, ToTensor, Normalize), then builder.MoCo's step (moco_builder.py: two
encoders with the MLP head, K 65,536, dim 128, T 0.2, m 0.999; one GPU, so no shuffle BN) with
torch.optim.SGD(lr 0.03, momentum 0.9, weight decay 1e-4), cudnn.benchmark on as main_moco.py sets it.
Each epoch starts its loader's workers afresh, as main_moco.py's does.

TF32: `--tf32 default` keeps PyTorch's defaults (cuDNN convolutions in TF32 on Ampere and later, as the
original runs there); `--tf32 off` is strict fp32 (our CUDA training path's precision).

Usage: python3 pretrain_baseline.py DATA OUT.json [--batch 64] [--epochs 2] [--workers N] [--size 224]
       [--arch resnet50] [--device cuda:0] [--tf32 default|off] [--k 65536]
Prints and writes {img_s per epoch, seconds, ...}; the last epoch is the timed one (the first warms up).
"""
import argparse
import json
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import ImageFilter

from moco_builder import Moco


class GaussianBlur:
    """moco.loader.GaussianBlur: PIL's GaussianBlur with a radius drawn uniformly from sigma."""

    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, x):
        return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.sigma[0], self.sigma[1])))


class TwoCrops:
    def __init__(self, t):
        self.t = t

    def __call__(self, x):
        return [self.t(x), self.t(x)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--tf32", choices=["default", "off"], default="default")
    ap.add_argument("--k", type=int, default=65536)
    a = ap.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        if a.tf32 == "off":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
    normalize = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    aug = T.Compose([
        T.RandomResizedCrop(a.size, scale=(0.2, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([GaussianBlur([0.1, 2.0])], p=0.5),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        normalize,
    ])
    dataset = torchvision.datasets.ImageFolder(os.path.join(a.data, "train"), TwoCrops(aug))
    loader = torch.utils.data.DataLoader(dataset, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                         pin_memory=cuda, drop_last=True)
    model = Moco(a.arch, k=a.k).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    epochs = []
    t_all = time.time()
    for epoch in range(a.epochs):
        t0 = time.time()
        steps = 0
        for images, _ in loader:
            im_q = images[0].to(dev, non_blocking=True)
            im_k = images[1].to(dev, non_blocking=True)
            logits = model(im_q, im_k)
            labels = torch.zeros(logits.shape[0], dtype=torch.long, device=dev)
            loss = F.cross_entropy(logits, labels)
            # main_moco.py's meters, every step: loss.item() and Acc@1/Acc@5 (each waits for the GPU).
            loss_value = loss.item()
            top5 = logits.topk(5, 1).indices
            acc1 = (top5[:, 0] == 0).float().mean().item()
            acc5 = (top5 == 0).any(1).float().mean().item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        if cuda:
            torch.cuda.synchronize()
        seconds = time.time() - t0
        epochs.append({"epoch": epoch, "steps": steps, "seconds": round(seconds, 3),
                       "img_s": round(steps * a.batch / seconds, 1), "last_loss": round(loss_value, 4),
                       "last_acc1": round(100 * acc1, 2), "last_acc5": round(100 * acc5, 2)})
        print(f"epoch {epoch}: {steps} steps, {seconds:.2f} s, {steps * a.batch / seconds:.1f} img/s", file=sys.stderr)
    result = {
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "tf32": a.tf32 if cuda else "n/a", "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32 if cuda else None,
        "arch": a.arch, "batch": a.batch, "size": a.size, "workers": a.workers, "k": a.k,
        "images": len(dataset), "epochs": epochs, "img_s": epochs[-1]["img_s"], "seconds": round(time.time() - t_all, 1),
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
