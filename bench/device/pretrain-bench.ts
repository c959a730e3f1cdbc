/**
 * Pre-training end to end, ours against the original's loop on the same machine and data: what a
 * user waits for. `ssl-inv pretrain`'s path (runPretraining: decode, the two views of every image on
 * libuv's threads, the next step's made while a step computes, MoCo v2 on the device) against
 * bench/device/pretrain_baseline.py (main_moco.py's DataLoader with `--workers` processes,
 * torchvision transforms, builder.MoCo and SGD on the same device), both on a generated ImageFolder
 * of JPEG photos-like images (500 x 375 and nearby sizes, ImageNet's typical), both the MoCo v2
 * default augmentation set, ResNet-50 with the MLP head, K 65,536, dim 128.
 *
 *   node build-bench/bench/device/pretrain-bench.js [--device cuda:0] [--images 512] [--batch 64]
 *        [--size 224] [--arch resnet50] [--k 65536] [--epochs 2] [--workers N] [--tf32 default,off]
 *        [--no-torch] [--out FILE]
 *
 * Each side runs --epochs epochs; the last is timed (the first warms up: cuDNN's autotuning, our
 * kernels' tuning, the loader's first workers). Our time runs from the epoch's start to its last
 * step's result and leaves out the checkpoint, which the baseline does not write. PyTorch runs once
 * per --tf32 mode: 'default' is what main_moco.py gets (cuDNN convolutions in TF32 on Ampere and
 * later), 'off' strict fp32 like ours. Writes --out (default bench/results/<date>-<card>-pretrain.json)
 * and prints a table of ratios.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { cudaInfo } from '../../src/device';
import { Arch } from '../../src/nn/resnet-spec';
import { runPretraining } from '../../src/train/pretrain';
import { rng } from './bench-util';

const argv = process.argv.slice(2);
const arg = (n: string) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
const DEVICE = arg('--device') ?? 'cuda:0';
const IMAGES = Number(arg('--images') ?? 512);
const BATCH = Number(arg('--batch') ?? 64);
const SIZE = Number(arg('--size') ?? 224);
const ARCH = (arg('--arch') ?? 'resnet50') as Arch;
const K = Number(arg('--k') ?? 65536);
const EPOCHS = Number(arg('--epochs') ?? 2);
const WORKERS = Number(arg('--workers') ?? os.cpus().length);
const TF32 = (arg('--tf32') ?? 'default,off').split(',').filter(Boolean);
const log = (m: string) => process.stderr.write(`${m}\n`);

/** A photo-like JPEG: smooth colour fields, edges and grain (decodes and compresses like a photo). */
async function writePhoto(file: string, seed: number): Promise<void> {
  const r = rng(seed);
  const w = 460 + Math.floor((r() + 0.5) * 80), h = 340 + Math.floor((r() + 0.5) * 70);
  const px = Buffer.alloc(w * h * 3);
  const [a, b, c] = [r() * 0.08, r() * 0.08, r() * 6.28];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const band = Math.sin(x * a + y * b + c) > 0.3 ? 60 : 0;
      px[i] = (128 + 100 * Math.sin(x * 0.013 + c) + band + r() * 30) & 0xff;
      px[i + 1] = (128 + 90 * Math.cos(y * 0.017 - c) + r() * 30) & 0xff;
      px[i + 2] = (110 + 80 * Math.sin((x + y) * 0.009) - band + r() * 30) & 0xff;
    }
  }
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
}

async function makeData(root: string): Promise<void> {
  const marker = path.join(root, `.complete-${IMAGES}`);
  if (fs.existsSync(marker)) return;
  for (let i = 0; i < IMAGES; i++) {
    const dir = path.join(root, 'train', `class${i % 10}`);
    fs.mkdirSync(dir, { recursive: true });
    await writePhoto(path.join(dir, `img${String(i).padStart(5, '0')}.jpg`), 1000 + i);
  }
  fs.writeFileSync(marker, '');
}

/** Our last epoch: images per second from its start to its last step's result. */
async function ours(data: string, outDir: string): Promise<Record<string, unknown>> {
  const marks = new Map<number, { start: bigint; last: bigint; steps: number; loss: number }>();
  const t0 = Date.now();
  const res = await runPretraining({
    data, split: 'train', model: 'default', arch: ARCH, epochs: EPOCHS, startEpoch: 0, batchSize: BATCH, lr: 0.03,
    schedule: [], cos: false, momentum: 0.9, weightDecay: 1e-4, mocoDim: 128, mocoK: K, mocoM: 0.999, mocoT: 0.2,
    mlp: true, seed: 0, imageSize: SIZE, outDir, workers: WORKERS, device: DEVICE,
  }, {
    onEpochStart: (epoch) => { marks.set(epoch, { start: process.hrtime.bigint(), last: 0n, steps: 0, loss: NaN }); },
    onStep: (s) => {
      const m = marks.get(s.epoch)!;
      m.last = process.hrtime.bigint();
      m.steps++;
      m.loss = s.loss;
      log(`ours: epoch ${s.epoch} step ${s.step + 1}/${s.steps} loss ${s.loss.toFixed(4)}`);
    },
  });
  const epochs = [...marks.entries()].map(([epoch, m]) => {
    const seconds = Number(m.last - m.start) / 1e9;
    return { epoch, steps: m.steps, seconds: Math.round(seconds * 1000) / 1000, img_s: Math.round(m.steps * BATCH / seconds * 10) / 10, last_loss: m.loss };
  });
  return { images: res.images, epochs, img_s: epochs[epochs.length - 1]!.img_s, seconds: (Date.now() - t0) / 1000 };
}

function torchRun(data: string, tf32: string): Record<string, unknown> {
  const script = path.join(__dirname, '..', '..', '..', 'bench', 'device', 'pretrain_baseline.py');
  const out = path.join(os.tmpdir(), `ssl-inv-pretrain-torch-${tf32}.json`);
  const r = spawnSync(process.env.PYTHON ?? 'python3', [script, data, out, '--batch', String(BATCH), '--epochs', String(EPOCHS),
    '--workers', String(WORKERS), '--size', String(SIZE), '--arch', ARCH, '--device', DEVICE, '--tf32', tf32, '--k', String(K)],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_800_000 });
  if (r.status !== 0) return { error: `pretrain_baseline.py exited ${r.status ?? r.signal}` };
  return JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, unknown>;
}

async function main(): Promise<void> {
  const info = cudaInfo();
  const card = DEVICE === 'cpu' ? os.cpus()[0]?.model ?? 'cpu' : info.devices.find((d) => `cuda:${d.index}` === DEVICE)?.name ?? 'unknown';
  const root = path.join(os.tmpdir(), 'ssl-inv-pretrain-bench');
  log(`data: ${IMAGES} JPEG images in ${root}`);
  await makeData(path.join(root, 'data'));
  const outDir = fs.mkdtempSync(path.join(root, 'out-'));
  const result: Record<string, unknown> = {
    date: new Date().toISOString(), device: DEVICE, card, cores: os.cpus().length, node: process.version,
    config: { arch: ARCH, batch: BATCH, size: SIZE, k: K, dim: 128, mlp: true, set: 'default', images: IMAGES, epochs: EPOCHS, workers: WORKERS },
  };
  try {
    result.ours = await ours(path.join(root, 'data'), outDir);
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  if (!argv.includes('--no-torch')) {
    const torch: Record<string, unknown> = {};
    for (const mode of TF32) torch[mode] = torchRun(path.join(root, 'data'), mode);
    result.torch = torch;
  }
  const file = arg('--out') ?? path.join('bench', 'results', `${new Date().toISOString().slice(0, 10)}-${card.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-pretrain.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const ourRate = (result.ours as { img_s: number }).img_s;
  console.log(`| pre-training, ${ARCH} b${BATCH} ${SIZE}px, ${WORKERS} workers, ${card} | img/s | ours / it |`);
  console.log('|---|---|---|');
  console.log(`| ours (fp32) | ${ourRate} | |`);
  for (const [mode, v] of Object.entries((result.torch ?? {}) as Record<string, { img_s?: number; error?: string }>)) {
    console.log(`| main_moco.py loop, TF32 ${mode} | ${v.img_s ?? v.error} | ${v.img_s ? `${(ourRate / v.img_s).toFixed(2)}x` : ''} |`);
  }
  log(`wrote ${file}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
