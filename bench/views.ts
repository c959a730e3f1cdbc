/**
 * View generation speed: the k = 256 views of one 500x375 photo for rotation, hue and blur
 * (transform + Resize(256) + CenterCrop(224) + normalise), ours on the CPU (1 thread and all threads)
 * against the original's PIL path (torchvision functional ops on a PIL image, one thread, as
 * ManualTransform.T does) measured in the same run. Prints a table; writes bench/out/views-<date>.json.
 *   node build-bench/bench/views.js [--reps N] [--transforms rotation,hue,blur]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeImageFile } from '../src/data/decode';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/data/preprocess';
import { native, packageRoot } from '../src/native';
import { setNumThreads } from '../src/ops';
import { SyntheticTransform, transformGrid } from '../src/transforms/grid';
import { makeViews } from '../src/transforms/views';

const IMAGE = path.join(packageRoot, 'test', 'fixtures', 'images', 'inputs', 'flower_500x375_444.jpg');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const PIL_SCRIPT = `
import sys, time, json
import torch, torchvision.transforms.functional as FT
from PIL import Image
torch.set_num_threads(1)
path, name, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
img = Image.open(path).convert('RGB')
k = 256
lin = torch.linspace
if name == 'rotation':
    params = [{'angle': a} for a in lin(0, 360, k + 1)[:k].tolist()]; fn = FT.rotate
elif name == 'hue':
    params = [{'hue_factor': h} for h in lin(-0.5, 0.5, k).tolist()]; fn = FT.adjust_hue
else:
    params = [{'sigma': s, 'kernel_size': 23} for s in lin(1e-5, 20.0, k).tolist()]; fn = FT.gaussian_blur
norm = [[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]]
best = None
for _ in range(reps):
    t = time.perf_counter()
    for p in params:
        v = FT.center_crop(FT.resize(fn(img, **p), 256), 224)
        v = FT.normalize(FT.pil_to_tensor(v).to(torch.float32) / 255., *norm)
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(json.dumps({'viewsPerSec': k / best}))
`;

function pil(name: string, reps: number): number | string {
  const r = spawnSync('/usr/bin/python3', ['-c', PIL_SCRIPT, IMAGE, name, String(reps)], { encoding: 'utf8', timeout: 1_800_000 });
  try {
    return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { viewsPerSec: number }).viewsPerSec;
  } catch {
    return `n/a (${(r.stderr || r.error?.message || '').slice(-200)})`;
  }
}

async function main(): Promise<void> {
  const reps = Number(arg('--reps') ?? 2);
  const names = (arg('--transforms') ?? 'rotation,hue,blur').split(',') as SyntheticTransform[];
  const img = await decodeImageFile(IMAGE);
  const threads = native().info().threads;
  const rows: { transform: string; ours1: number; oursAll: number; pil: number | string }[] = [];
  for (const name of names) {
    const grid = transformGrid(name, 256, 256, 224);
    const time = (n: number) => {
      setNumThreads(n);
      let best = Infinity;
      for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        for (let j = 0; j < 256; j += 32) makeViews(img, grid, j, j + 32, { mean: IMAGENET_MEAN, std: IMAGENET_STD }).dispose();
        best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
      }
      return 256 / best;
    };
    process.stderr.write(`${name}: ours...\n`);
    const ours1 = time(1), oursAll = time(threads);
    process.stderr.write(`${name}: PIL...\n`);
    rows.push({ transform: name, ours1, oursAll, pil: pil(name, Math.min(reps, 2)) });
  }
  const fmt = (v: number | string) => (typeof v === 'number' ? v.toFixed(1) : v);
  process.stdout.write(`views/s (256 views of a 500x375 photo)  ours 1 thread  ours ${threads} threads  PIL 1 thread  ratio (${threads} threads / PIL)\n`);
  for (const r of rows) {
    const ratio = typeof r.pil === 'number' ? `${(r.oursAll / r.pil).toFixed(1)}x` : '-';
    process.stdout.write(`${r.transform.padEnd(40)}${fmt(r.ours1).padStart(13)}${fmt(r.oursAll).padStart(16)}${fmt(r.pil).padStart(14)}  ${ratio}\n`);
  }
  const out = arg('--out') ?? path.join('bench', 'out', `views-${new Date().toISOString().slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: `${os.cpus()[0]?.model}, ${os.cpus().length} cores`, threads, rows }, null, 2)}\n`);
  process.stderr.write(`wrote ${out}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
