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
import { FixtureSample, fixtureRatio as ratio, worstFixtureRatio as worstOf } from '../helpers/train-fixtures';

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

/** The generator's (scale, shift) of a state-dict entry: the twin of param_spec in the Python script. */
function paramSpec(key: string, shape: number[]): [number, number] {
  if (key.endsWith('running_mean')) return [0.1, 0];
  if (key.endsWith('running_var')) return [0.5, 1];
  if (shape.length === 4) return [Math.sqrt(6 / (shape[1]! * shape[2]! * shape[3]!)), 0];
  if (key.endsWith('.weight')) return [0.2, 1];
  return [0.1, 0];
}

function draw(key: string, shape: number[]): Float32Array {
  const [scale, shift] = paramSpec(key, shape);
  return prngTensor({ seed: fnv1a32(`train/${key}`), scale, shift }, shape.reduce((a, b) => a * b, 1));
}

function shapes(arch: Arch): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const cb of allConvBns(resnetSpec(arch))) {
    m.set(`${cb.conv}.weight`, [cb.outChannels, cb.inChannels, cb.kernel, cb.kernel]);
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) m.set(`${cb.bn}.${p}`, [cb.outChannels]);
  }
  return m;
}

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
