// The views runPretraining feeds the model, seen through its onViews hook, on a data set where
// DistributedSampler's padding repeats an image: 7 images on 2 emulated GPUs pad to 8 positions,
// and position 7 (step 1, the last slot of GPU 1's share) is the epoch order's first image again.
// main_moco.py's loader draws fresh random crops and colour changes each time it reads an image, so
// the repeat's two views must not be its first occurrence's views. The same data set on one GPU
// (floor(7 / 4) = 1 step, no padding) shows every image at most once.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { PretrainOptions, StepViews, runPretraining } from '../../src/train/pretrain';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-pretrain-views-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.before(async () => {
  for (let i = 0; i < 7; i++) {
    const w = 40 + i * 3, h = 36 + i * 2;
    const px = Buffer.alloc(w * h * 3);
    for (let j = 0; j < px.length; j++) px[j] = (j * 5 + i * 29 + (j % w) * 7) % 256;
    const cls = path.join(dir, 'data', 'train', i % 2 ? 'a' : 'b');
    fs.mkdirSync(cls, { recursive: true });
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(cls, `img${i}.png`));
  }
});

function options(bnSplits: number, outDir: string): PretrainOptions {
  return {
    data: path.join(dir, 'data'), split: 'train', model: 'default', arch: 'resnet18', epochs: 1, startEpoch: 0,
    batchSize: 4, lr: 0.03, schedule: [], cos: false, momentum: 0.9, weightDecay: 1e-4, mocoDim: 16, mocoK: 16,
    mocoM: 0.999, mocoT: 0.2, mlp: true, seed: 5, imageSize: 32, outDir, workers: 2, bnSplits,
  };
}

async function views(bnSplits: number): Promise<StepViews[]> {
  const seen: StepViews[] = [];
  await runPretraining(options(bnSplits, path.join(dir, `out-${bnSplits}`)), {
    // The hook's arrays are the step's own: copy them.
    onViews: (v) => seen.push({ ...v, files: [...v.files], q: Float32Array.from(v.q), k: Float32Array.from(v.k) }),
  });
  return seen;
}

t.test('a padded repeat gets views of its own', async (t) => {
  const steps = await views(2);
  t.equal(steps.length, 2, 'ceil(7 / 2) = 4 positions per GPU: 2 steps of 2 per GPU');
  const per = 3 * 32 * 32;
  const where = new Map<string, [number, number][]>();
  steps.forEach((s, i) => s.files.forEach((f, b) => where.set(f, [...(where.get(f) ?? []), [i, b]])));
  const twice = [...where].filter(([, at]) => at.length === 2);
  t.equal(where.size, 7, 'every image is read in the epoch');
  t.equal(twice.length, 1, 'one image twice (the padding)');
  const [file, [[s0, b0], [s1, b1]]] = twice[0]! as [string, [number, number][]];
  t.same([s0, b0, s1, b1], [0, 0, 1, 3], `${path.basename(file)}: the order's first image, again at the last position`);
  for (const v of ['q', 'k'] as const) {
    const a = steps[s0]![v].subarray(b0 * per, (b0 + 1) * per), b = steps[s1]![v].subarray(b1 * per, (b1 + 1) * per);
    let differ = 0;
    for (let i = 0; i < per; i++) differ += a[i] !== b[i] ? 1 : 0;
    t.ok(differ > per / 2, `im_${v}: the repeat's view is a fresh draw (${differ} of ${per} values differ)`);
  }
  // The view of each read is the same when the epoch is recomputed (resume relies on it).
  const again = await views(2);
  t.ok(again.every((s, i) => s.q.every((x, j) => x === steps[i]!.q[j]) && s.k.every((x, j) => x === steps[i]!.k[j])),
    'the same views on a second run');
});

t.test('on one GPU nothing repeats', async (t) => {
  const steps = await views(1);
  t.equal(steps.length, 1, 'floor(7 / 4): the remainder is dropped, not padded');
  t.equal(new Set(steps[0]!.files).size, 4);
});
