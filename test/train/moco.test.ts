// MoCo v2 training steps on the CPU against PyTorch (test/fixtures/backward/make_moco_fixtures.py):
// the same ResNet-18 encoders with the MLP head, queue and images (ssl-inv-prng/1 on both sides),
// two SGD steps, on one GPU (moco_train.json) and as DDP on two GPUs computes them (per-GPU batch
// norm and shuffle BN with the fixture's key permutations: moco_train_split.json, bnSplits 2).
// Checked against PyTorch's float64 run by test/helpers/train-fixtures.ts's rule: each step's loss,
// every encoder_q / encoder_k parameter and running statistic after the last step (sampled), the
// queue; exactly: the queue pointer and each step's Acc@1 / Acc@5 (main_moco.py's accuracy()).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MocoV2, normalizeRows, normalizeRowsBackward } from '../../src/train/moco';
import { SGD } from '../../src/optim/sgd';
import { memoryStats, tensor } from '../../src/tensor';
import { fnv1a32, prngTensor } from '../helpers/model-fixtures';
import { FixtureSample, checkMocoStep, fixtureRatio, mocoFixtureDraw, worstFixtureRatio } from '../helpers/train-fixtures';

interface Fixture {
  arch: 'resnet18'; batch: number; size: number; dim: number; K: number; m: number; T: number;
  lr: number; momentum: number; weightDecay: number; steps: number;
  initialQueue: number[]; losses: FixtureSample[]; accuracy: [number, number][]; final: Record<string, FixtureSample>;
  queue: FixtureSample; queuePtr: number; bnSplits?: number; keyPermutations?: number[][];
  /** Each GPU's own loss and [Acc@1, Acc@5] per step (split runs). */
  gpuLosses?: FixtureSample[]; gpuAccuracy?: [number, number][][];
}
const readFixture = (name: string): Fixture => JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'backward', name), 'utf8'));
const FX = readFixture('moco_train.json');
const SPLIT = readFixture('moco_train_split.json');

/** make_moco_fixtures.py's parameter draws. */
const draw = mocoFixtureDraw(FX.dim);

const image = (name: string) => tensor(prngTensor({ seed: fnv1a32(`moco/${name}`), scale: 1, shift: 0 }, FX.batch * 3 * FX.size * FX.size),
  [FX.batch, 3, FX.size, FX.size]);

for (const fx of [FX, SPLIT]) {
  const gpus = fx.bnSplits ?? 1;
  t.test(`MoCo v2 ${fx.arch} on ${gpus} GPU(s): ${fx.steps} steps match PyTorch`, async (t) => {
    const before = memoryStats().liveBuffers;
    const moco = await MocoV2.create({ arch: fx.arch, dim: fx.dim, K: fx.K, m: fx.m, T: fx.T, mlp: true, bnSplits: gpus },
      { encoderQ: draw, queue: Float32Array.from(fx.initialQueue) });
    const sgd = new SGD({ lr: fx.lr, momentum: fx.momentum, weightDecay: fx.weightDecay });
    for (let s = 0; s < fx.steps; s++) {
      const imQ = image(`im_q/${s}`), imK = image(`im_k/${s}`);
      checkMocoStep(t, fx, s, moco.step(imQ, imK, sgd, fx.keyPermutations ? { keyPermutation: fx.keyPermutations[s]! } : {}));
      imQ.dispose();
      imK.dispose();
    }
    const wp = worstFixtureRatio(Object.entries(fx.final), (k) => moco.get(k).toFloat32Array());
    t.ok(wp.worst <= 1, `encoder_q and encoder_k after ${fx.steps} steps (worst ${wp.worst.toFixed(3)} of the bound, ${wp.name})`);
    const wq = fixtureRatio(moco.queueValues(), fx.queue);
    t.ok(wq <= 1, `the queue holds PyTorch's keys (worst ${wq.toFixed(3)})`);
    t.equal(moco.queuePtr, fx.queuePtr, 'queue_ptr');
    const sd = moco.stateDict();
    t.ok(sd.has('module.encoder_q.conv1.weight') && sd.has('module.encoder_k.fc.2.bias') && sd.has('module.queue'), 'state dict in main_moco.py\'s names');
    t.same(sd.get('module.queue_ptr')!.data, BigInt64Array.from([BigInt(fx.queuePtr)]));
    t.same(sd.get('module.encoder_k.bn1.num_batches_tracked')!.data, BigInt64Array.from([BigInt(fx.steps)]), 'encoder_k counts its batches too');
    moco.dispose();
    sgd.dispose();
    t.equal(memoryStats().liveBuffers, before, 'no native buffer left behind');
  });
}

t.test('shuffle BN matters: the split run is not the one-GPU run', async (t) => {
  // Guards the split fixture itself: were per-GPU batch norm or the shuffle lost, both runs would agree.
  t.not(SPLIT.losses[0]!.values[0], FX.losses[0]!.values[0], 'the first loss differs');
  t.same(SPLIT.bnSplits, 2);
});

t.test('normalize and its gradient against finite differences', async (t) => {
  const n = 3, d = 5;
  const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 1.7) * 2);
  const dy = Float32Array.from({ length: n * d }, (_, i) => Math.cos(i * 0.9));
  const { y, norms } = normalizeRows(x, n, d);
  const dx = normalizeRowsBackward(dy, y, norms, n, d);
  const f = (xs: Float64Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      let q = 0;
      for (let j = 0; j < d; j++) q += xs[i * d + j]! ** 2;
      for (let j = 0; j < d; j++) s += dy[i * d + j]! * xs[i * d + j]! / Math.sqrt(q);
    }
    return s;
  };
  let worst = 0;
  for (let i = 0; i < n * d; i++) {
    const a = Float64Array.from(x), b = Float64Array.from(x);
    a[i]! += 1e-6;
    b[i]! -= 1e-6;
    const fd = (f(a) - f(b)) / 2e-6;
    worst = Math.max(worst, Math.abs(fd - dx[i]!));
  }
  t.ok(worst < 1e-5, `central differences agree (worst ${worst.toExponential(2)})`);
});

t.test('bad MoCo configurations', async (t) => {
  const base = { arch: FX.arch, dim: FX.dim, K: FX.K, m: FX.m, T: FX.T, mlp: true } as const;
  await t.rejects(MocoV2.create(base, { encoderQ: draw, queue: new Float32Array(3) }), { code: 'ERR_SHAPE_MISMATCH' }, 'a queue of the wrong size');
  await t.rejects(MocoV2.create({ ...base, T: 0 }, { encoderQ: draw, queue: Float32Array.from(FX.initialQueue) }), { code: 'ERR_INVALID_ARGUMENT' }, 'T = 0');
  await t.rejects(MocoV2.create({ ...base, m: 1.5 }, { encoderQ: draw, queue: Float32Array.from(FX.initialQueue) }), { code: 'ERR_INVALID_ARGUMENT' }, 'm > 1');
  const moco = await MocoV2.create(base, { encoderQ: draw, queue: Float32Array.from(FX.initialQueue) });
  const sgd = new SGD({ lr: 0.1 });
  const three = tensor(new Float32Array(3 * 3 * 32 * 32), [3, 3, 32, 32]);
  t.throws(() => moco.step(three, three, sgd), { code: 'ERR_INVALID_ARGUMENT' }, 'K not a multiple of the batch');
  const two = tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
  const twoBig = tensor(new Float32Array(2 * 3 * 64 * 64), [2, 3, 64, 64]);
  t.throws(() => moco.step(two, twoBig, sgd), { code: 'ERR_SHAPE_MISMATCH' }, 'im_q and im_k of different shapes');
  await t.rejects(MocoV2.create({ ...base, bnSplits: 0 }, { encoderQ: draw, queue: Float32Array.from(FX.initialQueue) }), { code: 'ERR_INVALID_ARGUMENT' }, 'bnSplits 0');
  const split = await MocoV2.create({ ...base, bnSplits: 2 }, { encoderQ: draw, queue: Float32Array.from(FX.initialQueue) });
  const four = tensor(new Float32Array(4 * 3 * 32 * 32), [4, 3, 32, 32]);
  t.throws(() => split.step(two, two, sgd), { code: 'ERR_INVALID_ARGUMENT', message: /groups of 2 or more/ }, 'one image per emulated GPU');
  t.throws(() => split.step(four, four, sgd, { keyPermutation: [0, 1, 1, 3] }), { code: 'ERR_INVALID_ARGUMENT', message: /permutation/ }, 'a key order that is not a permutation');
  t.throws(() => split.step(four, four, sgd, { keyPermutation: [0, 1, 2] }), { code: 'ERR_INVALID_ARGUMENT' }, 'a key order of the wrong length');
  four.dispose();
  split.dispose();
  for (const x of [three, two, twoBig]) x.dispose();
  moco.dispose();
  sgd.dispose();
});
