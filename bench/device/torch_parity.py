#!/usr/bin/env python3
"""Reference features for the device check's PyTorch parity (bench/device/check --torch-parity DIR).

On the GPU machine: builds torchvision ResNet-18 and ResNet-50 with seeded random weights and
non-trivial batch-norm statistics, saves their state dicts with torch.save (the format users bring),
a seeded input batch, and the fc=Identity features PyTorch computes on cuda:0 in strict fp32 (TF32
off), as .npy files. Usage: python3 torch_parity.py DIR
SSL_INV_PARITY_DEVICE=cpu runs the same on the CPU (a dry run of the check on a machine without a GPU).
"""
import os
import sys

import numpy as np
import torch
import torchvision


DEVICE = os.environ.get("SSL_INV_PARITY_DEVICE", "cuda")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for i, (arch, size) in enumerate([("resnet18", 64), ("resnet50", 224)]):
        torch.manual_seed(1000 + i)
        model = getattr(torchvision.models, arch)()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.6, 1.1)
                    m.bias.uniform_(-0.1, 0.1)
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.8, 1.2)
        torch.save(model.state_dict(), os.path.join(out, f"{arch}.pth"))
        model.fc = torch.nn.Identity()
        model = model.to(DEVICE).eval()
        x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(2000 + i))
        with torch.no_grad():
            f = model(x.to(DEVICE)).float().cpu().numpy()
        np.save(os.path.join(out, f"{arch}-input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(out, f"{arch}-features-fp32.npy"), f.astype(np.float32))
    with open(os.path.join(out, "torch-version.txt"), "w") as fh:
        fh.write(f"{torch.__version__} on {DEVICE} (cuDNN {torch.backends.cudnn.version()})\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
