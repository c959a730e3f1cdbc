"""The original synthetic-invariance pipeline's per-image cost, part by part, on this machine.

Written for the GPU device check (bench/device/suite.ts runs it in the same run as our suite and
reports the ratio). It does, per source image and per transform, what the original
eval_synthetic_invariance.py does (see docs/ORIGINAL-BEHAVIOUR.md in the shared docs): build the k
views with PIL through torchvision.transforms.functional in one thread (then Resize(256),
CenterCrop(224), ToTensor, Normalize; resized_crop is only converted and normalised), one forward pass
of the k views through a torchvision ResNet-50 without its fc layer (fp32, eager, on the GPU), then
per view scipy's float64 Mahalanobis distance against a 2048 x 2048 inverse covariance and the cosine
similarity of the whitened features. Times are seconds per source image.

The deform views need albumentations (ElasticTransform(approximate=True)); where it is not installed
that transform is reported as not measured. This script does not check fidelity (the test suite does,
against goldens made with torchvision 0.14 + PIL 9); it only reproduces the work.

  python3 bench/device/original_suite.py OUT.json IMAGE [IMAGE ...]

For a dry run on a CPU machine, SSLINV_SUITE_KCAP=4 caps k as bench/device/suite.ts's --k does.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

try:
    from scipy.spatial.distance import mahalanobis
except ImportError:  # the same arithmetic (scipy: sqrt(delta . VI . delta))
    def mahalanobis(u, v, vi):
        delta = np.asarray(u, dtype=np.float64) - np.asarray(v, dtype=np.float64)
        return math.sqrt(np.dot(np.dot(delta, vi), delta))

RESIZE, CROP = 256, 224
TRANSFORMS = ['rotation', 'translation', 'scale', 'shear', 'resized_crop', 'h_flip', 'v_flip', 'deform', 'grayscale',
              'brightness', 'contrast', 'saturation', 'hue', 'blur', 'sharpness', 'invert', 'equalize', 'posterize']
ON_OFF = {'h_flip': F.hflip, 'v_flip': F.vflip, 'grayscale': lambda im: F.rgb_to_grayscale(im, 3), 'invert': F.invert,
          'equalize': F.equalize}


def head(a, b, n):
    """Elements [0, n) of torch.linspace(a, b, n + 1)."""
    return torch.linspace(a, b, n + 1)[:n].tolist()


def view_fns(name, k):
    """The k view functions of a transform (PIL image -> PIL image), in the original's grid order."""
    if name in ON_OFF:
        return [lambda im: im, ON_OFF[name]]
    if name == 'rotation':
        return [lambda im, a=a: F.rotate(im, a) for a in head(0, 360, k)]
    if name == 'translation':
        n = math.isqrt(k)
        space = (1 - CROP / RESIZE) / 2
        offs = [v * RESIZE for v in head(-space, space, n)]
        return [lambda im, x=x, y=y: F.affine(im, 0, [x, y], 1, 1) for x in offs for y in offs]
    if name == 'scale':
        return [lambda im, s=s: F.affine(im, 0, [0, 0], s, 1) for s in torch.linspace(0.25, 2, k).tolist()]
    if name == 'shear':
        n = math.isqrt(k)
        a = head(-160, 160, n)
        return [lambda im, x=x, y=y: F.affine(im, 0, [0, 0], 1, [x, y]) for x in a for y in a]
    if name == 'resized_crop':
        n = math.isqrt(math.isqrt(k))
        a = [int(v * RESIZE) for v in torch.linspace(0, 0.25, n).tolist()]
        b = [int(v * RESIZE) for v in torch.linspace(0.75, 0.25, n).tolist()]
        return [lambda im, t=t, l=l, h=h, w=w: F.resized_crop(im, t, l, h, w, [CROP, CROP])
                for t in a for l in a for h in b for w in b]
    if name == 'deform':
        import albumentations as A  # noqa: raises ImportError where it is not installed
        sigmas = [int(v) for v in torch.linspace(10, 50, 8).tolist()]

        def deform(im, s):
            aug = A.ElasticTransform(sigma=s, alpha_affine=s, approximate=True, p=1.0)
            return Image.fromarray(aug(image=np.asarray(im))['image'])
        return [lambda im, s=sigmas[j % 8]: deform(im, s) for j in range(256)]
    if name in ('brightness', 'contrast', 'saturation', 'sharpness'):
        fn = {'brightness': F.adjust_brightness, 'contrast': F.adjust_contrast, 'saturation': F.adjust_saturation,
              'sharpness': F.adjust_sharpness}[name]
        lo, hi = (1, 30) if name == 'sharpness' else (0.25, 5)
        return [lambda im, f=f: fn(im, f) for f in torch.linspace(lo, hi, k).tolist()]
    if name == 'hue':
        return [lambda im, h=h: F.adjust_hue(im, h) for h in torch.linspace(-0.5, 0.5, k).tolist()]
    if name == 'blur':
        ks = CROP // 20 * 2 + 1
        return [lambda im, s=s: F.gaussian_blur(im, ks, s) for s in torch.linspace(1e-5, 20, k).tolist()]
    if name == 'posterize':
        return [lambda im, b=b: F.posterize(im, b) for b in range(1, 8)]
    raise ValueError(name)


def default_k(name):
    k = 2 if name in ON_OFF else 7 if name == 'posterize' else 256
    cap = int(os.environ.get('SSLINV_SUITE_KCAP', '0'))
    if cap and k > cap and name not in ('deform', 'posterize'):
        k = math.isqrt(cap) ** 2 if name in ('translation', 'shear') else 1 if name == 'resized_crop' else cap
    return k


def main():
    out, files = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(1)  # the original builds views in its main process, one image at a time
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.backends.cudnn.benchmark = True
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    model = model.to(dev).eval()
    post = T.Compose([T.Resize(RESIZE), T.CenterCrop(CROP), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    tensor_only = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048))
    inv = a @ a.T / 2048 + np.eye(2048)   # an SPD inverse covariance of the right size
    L = np.linalg.cholesky(inv).astype(np.float32)
    mean = rng.standard_normal(2048).astype(np.float32)
    images = [Image.open(f).convert('RGB') for f in files]
    with torch.no_grad():  # warm the GPU and cuDNN's algorithm choice for the batches used (clean + k views)
        for b in sorted({default_k(t) + 1 for t in TRANSFORMS}, reverse=True):
            model(torch.zeros(b, 3, CROP, CROP, device=dev))
    if dev == 'cuda':
        torch.cuda.synchronize()
    rows = {}
    for name in TRANSFORMS:
        k = default_k(name)
        try:
            fns = view_fns(name, k)
        except ImportError as e:
            rows[name] = {'k': k, 'measured': False, 'reason': f'{e}'}
            print(f'{name}: not measured ({e})', flush=True)
            continue
        tv = tf = tm = 0.0
        for im in images:
            t0 = time.perf_counter()
            clean = post(im)
            views = [(tensor_only if name == 'resized_crop' else post)(fn(im)) for fn in fns]
            x = torch.stack([clean] + views)
            t1 = time.perf_counter()
            with torch.no_grad():
                f = model(x.to(dev)).float().cpu().numpy()
            t2 = time.perf_counter()
            f0 = f[0]
            a0 = (mean - f0) @ L
            for j in range(1, k + 1):
                mahalanobis(f0, f[j], inv)
                b = (mean - f[j]) @ L
                float(np.dot(a0, b) / max(np.linalg.norm(a0) * np.linalg.norm(b), 1e-8))
            t3 = time.perf_counter()
            tv += t1 - t0
            tf += t2 - t1
            tm += t3 - t2
        n = len(images)
        rows[name] = {'k': k, 'measured': True, 'views_s': tv / n, 'forward_s': tf / n, 'metrics_s': tm / n,
                      'total_s': (tv + tf + tm) / n}
        print(f'{name}: {rows[name]["total_s"]:.3f} s per image (views {tv / n:.3f}, forward {tf / n:.3f}, metrics {tm / n:.3f})', flush=True)
    # cuDNN convolutions may run in TF32 unless the script turns it off (PyTorch's default; the original
    # does not touch it): recorded so the comparison says which arithmetic the baseline used.
    meta = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'device': torch.cuda.get_device_name() if dev == 'cuda' else 'cpu',
            'cudnn_allow_tf32': bool(torch.backends.cudnn.allow_tf32), 'matmul_allow_tf32': bool(torch.backends.cuda.matmul.allow_tf32),
            'images': files, 'sizes': [im.size for im in images]}
    with open(out, 'w') as fh:
        json.dump({'meta': meta, 'transforms': rows}, fh, indent=1)


if __name__ == '__main__':
    main()
