// MoCo v2 training steps on the CPU against PyTorch (test/fixtures/backward/make_moco_fixtures.py):
// the same ResNet-18 encoders with the MLP head, queue and images (ssl-inv-prng/1 on both sides),
// two SGD steps. Checked against PyTorch's float64 run by test/helpers/train-fixtures.ts's rule: each
// step's loss, every encoder_q / encoder_k parameter and running statistic after the last step
// (sampled), the queue; and the queue pointer exactly.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MocoV2, normalizeRows, normalizeRowsBackward } from '../../src/train/moco';
import { SGD } from '../../src/optim/sgd';
import { memoryStats, tensor } from '../../src/tensor';
import { fnv1a32, prngTensor } from '../helpers/model-fixtures';
import { FixtureSample, fixtureRatio, worstFixtureRatio } from '../helpers/train-fixtures';
import { allConvBns, resnetSpec } from '../../src/nn/resnet-spec';

interface Fixture {
  arch: 'resnet18'; batch: number; size: number; dim: number; K: number; m: number; T: number;
  lr: number; momentum: number; weightDecay: number; steps: number;
  initialQueue: number[]; losses: FixtureSample[]; final: Record<string, FixtureSample>; queue: FixtureSample; queuePtr: number;
}
const FX: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'backward', 'moco_train.json'), 'utf8'));

function shapeOf(key: string): number[] {
  if (key === 'fc.0.weight') return [512, 512];
  if (key === 'fc.0.bias') return [512];
  if (key === 'fc.2.weight') return [FX.dim, 512];
  if (key === 'fc.2.bias') return [FX.dim];
  for (const cb of allConvBns(resnetSpec(FX.arch))) {
    if (key === `${cb.conv}.weight`) return [cb.outChannels, cb.inChannels, cb.kernel, cb.kernel];
    if (key.startsWith(`${cb.bn}.`)) return [cb.outChannels];
  }
  throw new Error(`no shape for ${key}`);
}

/** The generator's twin of make_moco_fixtures.py's param_spec. */
function draw(key: string): Float32Array {
  const shape = shapeOf(key);
  let scale = 0.1, shift = 0;
  if (key.endsWith('running_mean')) [scale, shift] = [0.1, 0];
  else if (key.endsWith('running_var')) [scale, shift] = [0.5, 1];
  else if (shape.length === 4) scale = Math.sqrt(6 / (shape[1]! * shape[2]! * shape[3]!));
  else if (key.startsWith('fc.')) scale = 1 / Math.sqrt(512);
  else if (key.endsWith('.weight')) [scale, shift] = [0.2, 1];
  return prngTensor({ seed: fnv1a32(`moco/${key}`), scale, shift }, shape.reduce((a, b) => a * b, 1));
}

const image = (name: string) => tensor(prngTensor({ seed: fnv1a32(`moco/${name}`), scale: 1, shift: 0 }, FX.batch * 3 * FX.size * FX.size),
  [FX.batch, 3, FX.size, FX.size]);

t.test(`MoCo v2 ${FX.arch}: ${FX.steps} steps match PyTorch`, async (t) => {
  const before = memoryStats().liveBuffers;
  const moco = await MocoV2.create({ arch: FX.arch, dim: FX.dim, K: FX.K, m: FX.m, T: FX.T, mlp: true },
    { encoderQ: draw, queue: Float32Array.from(FX.initialQueue) });
  const sgd = new SGD({ lr: FX.lr, momentum: FX.momentum, weightDecay: FX.weightDecay });
  for (let s = 0; s < FX.steps; s++) {
    const imQ = image(`im_q/${s}`), imK = image(`im_k/${s}`);
    const { loss } = moco.step(imQ, imK, sgd);
    const w = fixtureRatio([loss], FX.losses[s]!);
    t.ok(w <= 1, `step ${s + 1}: loss ${loss} vs PyTorch ${FX.losses[s]!.values[0]} (${w.toFixed(3)} of the bound)`);
    imQ.dispose();
    imK.dispose();
  }
  const wp = worstFixtureRatio(Object.entries(FX.final), (k) => moco.get(k).toFloat32Array());
  t.ok(wp.worst <= 1, `encoder_q and encoder_k after ${FX.steps} steps (worst ${wp.worst.toFixed(3)} of the bound, ${wp.name})`);
  const wq = fixtureRatio(moco.queueValues(), FX.queue);
  t.ok(wq <= 1, `the queue holds PyTorch's keys (worst ${wq.toFixed(3)})`);
  t.equal(moco.queuePtr, FX.queuePtr, 'queue_ptr');
  const sd = moco.stateDict();
  t.ok(sd.has('module.encoder_q.conv1.weight') && sd.has('module.encoder_k.fc.2.bias') && sd.has('module.queue'), 'state dict in main_moco.py\'s names');
  t.same(sd.get('module.queue_ptr')!.data, BigInt64Array.from([BigInt(FX.queuePtr)]));
  t.same(sd.get('module.encoder_k.bn1.num_batches_tracked')!.data, BigInt64Array.from([BigInt(FX.steps)]), 'encoder_k counts its batches too');
  moco.dispose();
  sgd.dispose();
  t.equal(memoryStats().liveBuffers, before, 'no native buffer left behind');
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
  for (const x of [three, two, twoBig]) x.dispose();
  moco.dispose();
  sgd.dispose();
});
