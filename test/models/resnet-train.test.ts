// Training ResNet-18 and ResNet-50 on the CPU against PyTorch (test/fixtures/backward/
// make_resnet_train_fixtures.py wrote PyTorch's numbers in float64 and float32; the parameters and
// inputs come from the ssl-inv-prng/1 generator on both sides): the features of every step, dL/dx
// and every parameter's gradient of the first step, and every parameter and running statistic after
// the last step, each compared with float64 by test/helpers/train-fixtures.ts's rule.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TrainableResNet } from '../../src/nn/resnet-train';
import { Arch, allConvBns, resnetSpec } from '../../src/nn/resnet-spec';
import { SGD } from '../../src/optim/sgd';
import { memoryStats, tensor } from '../../src/tensor';
import { fnv1a32, prngTensor } from '../helpers/model-fixtures';
import { FixtureSample, fixtureRatio as ratio, resnetFixtureDraw, resnetShapes, worstFixtureRatio as worstOf } from '../helpers/train-fixtures';

type Sample = FixtureSample;
interface NetFixture {
  arch: Arch;
  batch: number;
  lr: number;
  gradScale: number;
  steps: number;
  features: Sample[];
  dInput: Sample;
  grads: Record<string, Sample>;
  final: Record<string, Sample>;
}
interface Fixture { size: number; momentum: number; weightDecay: number; nets: NetFixture[] }

const FIXTURE: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'backward', 'resnet_train.json'), 'utf8'));

const draw = resnetFixtureDraw;
const shapes = resnetShapes;

for (const fx of FIXTURE.nets) {
  t.test(`${fx.arch}: ${fx.steps} SGD step(s) match PyTorch`, async (t) => {
    const before = memoryStats().liveBuffers;
    const shapeOf = shapes(fx.arch);
    const net = await TrainableResNet.load(fx.arch, (key) => draw(key, shapeOf.get(key)!));
    const dim = net.featureDim;
    const x = tensor(prngTensor({ seed: fnv1a32('train/input'), scale: 1, shift: 0 }, fx.batch * 3 * FIXTURE.size * FIXTURE.size),
      [fx.batch, 3, FIXTURE.size, FIXTURE.size]);
    const g = tensor(prngTensor({ seed: fnv1a32('train/dfeatures'), scale: fx.gradScale, shift: 0 }, fx.batch * dim), [fx.batch, dim]);
    const sgd = new SGD({ lr: fx.lr, momentum: FIXTURE.momentum, weightDecay: FIXTURE.weightDecay });
    t.same(net.parameterNames(), Object.keys(fx.grads), 'parameters in PyTorch named_parameters() order');
    for (let step = 0; step < fx.steps; step++) {
      const { features, tape } = net.forwardTrain(x);
      const wf = ratio(features.toFloat32Array(), fx.features[step]!);
      t.ok(wf <= 1, `step ${step + 1}: features (worst ${wf.toFixed(3)} of the bound)`);
      features.dispose();
      const { grads, dInput } = net.backward(tape, g, { inputGrad: step === 0 });
      t.ok(tape.disposed, 'backward consumed the tape');
      if (step === 0) {
        const wx = ratio(dInput!.toFloat32Array(), fx.dInput);
        t.ok(wx <= 1, `dL/dx (worst ${wx.toFixed(3)})`);
        dInput!.dispose();
        const wg = worstOf(Object.entries(fx.grads), (k) => grads.get(k)!.toFloat32Array());
        t.ok(wg.worst <= 1, `every parameter's gradient (worst ${wg.worst.toFixed(3)}, ${wg.name})`);
      } else {
        t.equal(dInput, undefined, 'no input gradient unless asked');
      }
      net.step(sgd, grads);
      for (const v of grads.values()) v.dispose();
    }
    const wp = worstOf(Object.entries(fx.final), (k) => net.get(k).toFloat32Array());
    t.ok(wp.worst <= 1, `parameters and running statistics after ${fx.steps} step(s) (worst ${wp.worst.toFixed(3)}, ${wp.name})`);
    const sd = net.stateDict();
    t.same(sd.get('bn1.num_batches_tracked')!.data, BigInt64Array.from([BigInt(fx.steps)]), 'num_batches_tracked counts the steps');
    t.equal(sd.size, shapeOf.size + allConvBns(resnetSpec(fx.arch)).length, 'state dict: every parameter, statistic and counter');
    net.dispose();
    sgd.dispose();
    x.dispose();
    g.dispose();
    t.equal(memoryStats().liveBuffers, before, 'no native buffer left behind');
  });
}

t.test('bad inputs', async (t) => {
  const shapeOf = shapes('resnet18');
  const net = await TrainableResNet.load('resnet18', (key) => draw(key, shapeOf.get(key)!));
  const one = tensor(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
  t.throws(() => net.forwardTrain(one), { code: 'ERR_INVALID_ARGUMENT' }, 'a batch of one has no batch statistics');
  const gray = tensor(new Float32Array(2 * 32 * 32), [2, 1, 32, 32]);
  t.throws(() => net.forwardTrain(gray), { code: 'ERR_SHAPE_MISMATCH' }, 'one channel');
  const x = tensor(prngTensor({ seed: 7, scale: 1, shift: 0 }, 2 * 3 * 32 * 32), [2, 3, 32, 32]);
  const { features, tape } = net.forwardTrain(x);
  const wrong = tensor(new Float32Array(2 * 10), [2, 10]);
  t.throws(() => net.backward(tape, wrong), { code: 'ERR_SHAPE_MISMATCH' }, 'dFeatures of the wrong width');
  const { grads } = net.backward(tape, features);
  t.throws(() => net.backward(tape, features), { code: 'ERR_TENSOR_DISPOSED' }, 'a tape is used once');
  grads.delete('fc.weight');
  const partial = new Map(grads);
  partial.delete('bn1.bias');
  t.throws(() => net.step(new SGD({ lr: 0.1 }), partial), { code: 'ERR_INVALID_ARGUMENT' }, 'a missing gradient');
  await t.rejects(TrainableResNet.load('resnet18', (key) => key === 'layer1.0.bn1.bias' ? new Float32Array(3) : draw(key, shapeOf.get(key)!)),
    { code: 'ERR_SHAPE_MISMATCH' }, 'a parameter of the wrong size');
  for (const v of [one, gray, x, features, wrong, ...grads.values()]) v.dispose();
  net.dispose();
});

/** Every running statistic of a network, by state-dict name. */
function buffers(net: TrainableResNet): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const cb of allConvBns(net.spec)) for (const b of ['running_mean', 'running_var']) m.set(`${cb.bn}.${b}`, net.get(`${cb.bn}.${b}`).toFloat32Array());
  return m;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

for (const arch of ['resnet18', 'resnet50'] as const) {
  t.test(`${arch}: forwardTrainNoGrad is forwardTrain without the tape`, async (t) => {
    const shapeOf = shapes(arch);
    const load = () => TrainableResNet.load(arch, (key) => draw(key, shapeOf.get(key)!));
    const a = await load(), b = await load();
    const x = tensor(prngTensor({ seed: 31, scale: 1, shift: 0 }, 4 * 3 * 32 * 32), [4, 3, 32, 32]);
    for (const groups of [1, 2]) {
      const { features, tape } = a.forwardTrain(x, { bnGroups: groups });
      tape.dispose();
      const live = memoryStats().liveBuffers;
      const f = b.forwardTrainNoGrad(x, { bnGroups: groups });
      t.equal(memoryStats().liveBuffers, live + 1, `groups ${groups}: only the features are left`);
      t.ok(sameBits(f.toFloat32Array(), features.toFloat32Array()), `groups ${groups}: the same features, bit for bit`);
      const ba = buffers(a), bb = buffers(b);
      t.ok([...ba].every(([k, v]) => sameBits(v, bb.get(k)!)), `groups ${groups}: the same running statistics`);
      t.same(b.stateDict().get('layer4.1.bn2.num_batches_tracked')!.data, a.stateDict().get('layer4.1.bn2.num_batches_tracked')!.data);
      f.dispose();
      features.dispose();
    }
    for (const v of [a, b, x]) v.dispose();
  });
}

t.test('bnGroups: each group is normalised as a batch of its own', async (t) => {
  // Two groups of 2 images: group g's features are those of a forward of its 2 images alone; the
  // running statistics follow group 0; the gradients are the sum of the groups' own backward passes.
  const shapeOf = shapes('resnet18');
  const load = () => TrainableResNet.load('resnet18', (key) => draw(key, shapeOf.get(key)!));
  const whole = await load(), g0 = await load(), g1 = await load();
  const data = prngTensor({ seed: 41, scale: 1, shift: 0 }, 4 * 3 * 32 * 32);
  const per = 3 * 32 * 32;
  const x = tensor(data, [4, 3, 32, 32]);
  const x0 = tensor(data.slice(0, 2 * per), [2, 3, 32, 32]), x1 = tensor(data.slice(2 * per), [2, 3, 32, 32]);
  const dF = prngTensor({ seed: 42, scale: 1, shift: 0 }, 4 * 512);
  const d = tensor(dF, [4, 512]), d0 = tensor(dF.slice(0, 1024), [2, 512]), d1 = tensor(dF.slice(1024), [2, 512]);

  const fw = whole.forwardTrain(x, { bnGroups: 2 });
  const f0 = g0.forwardTrain(x0), f1 = g1.forwardTrain(x1);
  const all = fw.features.toFloat32Array();
  t.ok(sameBits(all.slice(0, 1024), f0.features.toFloat32Array()) && sameBits(all.slice(1024), f1.features.toFloat32Array()),
    'features: each group as its own batch, bit for bit');
  const bw = buffers(whole), b0 = buffers(g0);
  t.ok([...bw].every(([k, v]) => sameBits(v, b0.get(k)!)), "running statistics: group 0's (rank 0's under DDP)");

  const rw = whole.backward(fw.tape, d, { inputGrad: true });
  const r0 = g0.backward(f0.tape, d0, { inputGrad: true }), r1 = g1.backward(f1.tape, d1, { inputGrad: true });
  let worst = 0, worstName = '';
  for (const [k, g] of rw.grads) {
    const w = g.toFloat32Array(), a0 = r0.grads.get(k)!.toFloat32Array(), a1 = r1.grads.get(k)!.toFloat32Array();
    let rms = 0;
    for (let i = 0; i < w.length; i++) rms += (a0[i]! + a1[i]!) ** 2;
    rms = Math.sqrt(rms / w.length);
    for (let i = 0; i < w.length; i++) {
      const r = Math.abs(w[i]! - (a0[i]! + a1[i]!)) / (1e-5 * rms + 1e-30);
      if (r > worst) [worst, worstName] = [r, k];
    }
  }
  t.ok(worst <= 1, `every gradient is the sum of the groups' (worst ${worst.toFixed(3)} of 1e-5 x RMS, ${worstName})`);
  const dx = rw.dInput!.toFloat32Array(), dx0 = r0.dInput!.toFloat32Array(), dx1 = r1.dInput!.toFloat32Array();
  let dmax = 0, drms = 0;
  for (let i = 0; i < dx.length; i++) {
    const ref = i < dx0.length ? dx0[i]! : dx1[i - dx0.length]!;
    dmax = Math.max(dmax, Math.abs(dx[i]! - ref));
    drms += ref * ref;
  }
  drms = Math.sqrt(drms / dx.length);
  t.ok(dmax <= 1e-5 * drms, `dL/dx: each group's own (worst ${(dmax / (1e-5 * drms)).toFixed(3)} of 1e-5 x RMS)`);

  t.throws(() => whole.forwardTrain(x, { bnGroups: 3 }), { code: 'ERR_INVALID_ARGUMENT' }, '4 images in 3 groups');
  t.throws(() => whole.forwardTrainNoGrad(x, { bnGroups: 4 }), { code: 'ERR_INVALID_ARGUMENT' }, 'one image per group');
  t.throws(() => whole.forwardTrain(x, { bnGroups: 0 }), { code: 'ERR_INVALID_ARGUMENT' }, 'no groups');
  for (const r of [rw, r0, r1]) { r.dInput!.dispose(); for (const g of r.grads.values()) g.dispose(); }
  for (const v of [fw.features, f0.features, f1.features, whole, g0, g1, x, x0, x1, d, d0, d1]) v.dispose();
});
