#!/usr/bin/env python3
"""PyTorch baselines for the GPU device check (bench/device/check), timed in the same run as ours.

Measures, on cuda:0, what docs/ANCHORS.md measures: ResNet-50 inference at batch 256, 224x224, in fp32
(eager, cudnn.benchmark), TF32 and bf16 (autocast, channels_last); the forward time of each distinct
ResNet-50 convolution shape; torch.cov of 50,000 x 2,048; and the MoCo v2 loss forward + backward
(N=256, K=65,536, dim=128, T=0.2) written as facebookresearch/moco writes it; a ResNet-50 training
step (backbone without fc, a given dL/dfeatures, torch.optim.SGD with MoCo's momentum and weight
decay) and a MoCo v2 step (two ResNet-50 encoders with the MLP head, K=65,536, one GPU: no shuffle
BN) at batch 64, 224x224, in strict fp32 (the precision our CUDA training path runs in).

Usage: python3 torch_baseline.py OUT.json [--quick] [--no-train]
Timing: CUDA events around `iters` repetitions after warm-up; the median of `repeats` such means.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

from moco_builder import Moco

QUICK = "--quick" in sys.argv
NO_TRAIN = "--no-train" in sys.argv  # run.sh with SKIP_TRAIN=1: the training steps are not timed
DEV = torch.device("cuda:0")
torch.backends.cudnn.benchmark = True

# (Cin, Cout, k, stride, H): the 23 distinct convolutions of ResNet-50 at 224x224 (ANCHORS.md).
CONV_SHAPES = [
    (3, 64, 7, 2, 224), (64, 64, 1, 1, 56), (64, 64, 3, 1, 56), (64, 256, 1, 1, 56), (256, 64, 1, 1, 56),
    (256, 128, 1, 1, 56), (128, 128, 3, 2, 56), (128, 512, 1, 1, 28), (256, 512, 1, 2, 56), (512, 128, 1, 1, 28),
    (128, 128, 3, 1, 28), (512, 256, 1, 1, 28), (256, 256, 3, 2, 28), (256, 1024, 1, 1, 14), (512, 1024, 1, 2, 28),
    (1024, 256, 1, 1, 14), (256, 256, 3, 1, 14), (1024, 512, 1, 1, 14), (512, 512, 3, 2, 14), (512, 2048, 1, 1, 7),
    (1024, 2048, 1, 2, 14), (2048, 512, 1, 1, 7), (512, 512, 3, 1, 7),
]


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def time_ms(fn, iters=10, repeats=5, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    means = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        means.append(start.elapsed_time(end) / iters)
    return statistics.median(means)


def resnet50_inference(batch=256):
    out = {}
    model = torchvision.models.resnet50().to(DEV).eval()
    model.fc = torch.nn.Identity()
    x = torch.randn(batch, 3, 224, 224, device=DEV)
    iters = 3 if QUICK else 10
    with torch.no_grad():
        set_tf32(False)
        out["fp32"] = batch / (time_ms(lambda: model(x), iters=iters) / 1e3)
        set_tf32(True)
        out["tf32"] = batch / (time_ms(lambda: model(x), iters=iters) / 1e3)
        set_tf32(False)
        mcl = model.to(memory_format=torch.channels_last)
        xcl = x.to(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out["bf16"] = batch / (time_ms(lambda: mcl(xcl), iters=iters) / 1e3)
    return {k: round(v, 1) for k, v in out.items()}


def conv_shapes(batch=256):
    rows = []
    for (cin, cout, k, s, h) in CONV_SHAPES:
        p = k // 2
        x = torch.randn(batch, cin, h, h, device=DEV)
        w = torch.randn(cout, cin, k, k, device=DEV) * (1.0 / (cin * k * k)) ** 0.5
        q = (h + 2 * p - k) // s + 1
        flops = 2.0 * batch * q * q * cout * cin * k * k
        row = {"cin": cin, "cout": cout, "k": k, "stride": s, "h": h}
        with torch.no_grad():
            set_tf32(False)
            row["fp32_ms"] = time_ms(lambda: F.conv2d(x, w, stride=s, padding=p))
            set_tf32(True)
            row["tf32_ms"] = time_ms(lambda: F.conv2d(x, w, stride=s, padding=p))
            set_tf32(False)
            xb = x.to(torch.bfloat16, memory_format=torch.channels_last)
            wb = w.to(torch.bfloat16, memory_format=torch.channels_last)
            row["bf16_ms"] = time_ms(lambda: F.conv2d(xb, wb, stride=s, padding=p))
        for prec in ("fp32", "tf32", "bf16"):
            row[f"{prec}_tflops"] = round(flops / (row[f"{prec}_ms"] * 1e-3) / 1e12, 1)
            row[f"{prec}_ms"] = round(row[f"{prec}_ms"], 4)
        rows.append(row)
        del x, w
    return rows


def covariance(n=50_000, d=2048):
    set_tf32(False)
    x = torch.randn(n, d, device=DEV) + 3.0
    ms = time_ms(lambda: torch.cov(x.T), iters=5)
    return {"n": n, "d": d, "ms": round(ms, 3)}


def moco_loss(n=256, k=65536, dim=128, t=0.2):
    set_tf32(False)
    q0 = F.normalize(torch.randn(n, dim, device=DEV), dim=1)
    kp = F.normalize(torch.randn(n, dim, device=DEV), dim=1)
    queue = F.normalize(torch.randn(dim, k, device=DEV), dim=0)
    labels = torch.zeros(n, dtype=torch.long, device=DEV)

    def step():
        q = q0.detach().requires_grad_(True)
        l_pos = torch.einsum("nc,nc->n", [q, kp]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, queue])
        logits = torch.cat([l_pos, l_neg], dim=1) / t
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        return loss

    return {"n": n, "k": k, "dim": dim, "ms": round(time_ms(step, iters=20), 4)}


def resnet50_train_step(batch=64):
    """One SGD step of the backbone (fc removed) given dL/dfeatures, as bench/device/train-check.ts times ours."""
    set_tf32(False)
    model = torchvision.models.resnet50().to(DEV).train()
    model.fc = torch.nn.Identity()
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, 224, 224, device=DEV)
    g = torch.randn(batch, 2048, device=DEV) * 1e-3

    def step():
        opt.zero_grad(set_to_none=True)
        model(x).backward(g)
        opt.step()

    ms = time_ms(step, iters=3, repeats=3, warmup=2)
    return {"batch": batch, "ms": round(ms, 2), "img_s": round(batch * 1000 / ms, 1)}


def moco_step(batch=64):
    """main_moco.py's train step (loss, backward, SGD) on one GPU, as train-check.ts times MocoV2.step."""
    set_tf32(False)
    model = Moco().to(DEV).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    im_q = torch.randn(batch, 3, 224, 224, device=DEV)
    im_k = torch.randn(batch, 3, 224, 224, device=DEV)
    labels = torch.zeros(batch, dtype=torch.long, device=DEV)

    def step():
        loss = F.cross_entropy(model(im_q, im_k), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    ms = time_ms(step, iters=3, repeats=3, warmup=2)
    return {"batch": batch, "ms": round(ms, 2), "img_s": round(batch * 1000 / ms, 1)}


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    t0 = time.time()
    result = {
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(0),
        "resnet50_inference_img_s": resnet50_inference(),
        "conv_shapes": [] if QUICK else conv_shapes(),
        "covariance": covariance(),
        "moco_loss": moco_loss(),
    }
    if not NO_TRAIN:
        # A failure here (out of memory, say) must not lose the baselines above: it is recorded.
        for key, fn in (("resnet50_train_step", resnet50_train_step), ("moco_step", moco_step)):
            try:
                result[key] = fn()
            except Exception as e:  # noqa: BLE001 - any failure is reported in the JSON
                result[key] = {"error": f"{type(e).__name__}: {e}"}
            torch.cuda.empty_cache()
    result["seconds"] = round(time.time() - t0, 1)
    with open(sys.argv[1], "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "conv_shapes"}, indent=2))


if __name__ == "__main__":
    main()
