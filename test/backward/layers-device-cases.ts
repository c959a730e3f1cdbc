// The layer training primitives and the SGD step on each CUDA device (native/cuda/layer_backward.cu
// and native/cuda/sgd.cu through src/backward/layers.ts and src/optim/sgd.ts), against the same ops
// on the CPU (which test/backward/layers.test.ts and sgd.test.ts check against float64 references
// and PyTorch), on the same inputs:
//   1. batch-norm forward (plain, ReLU, residual + ReLU, groups 1/2/4, |mean| >> std) and backward
//      (plain, with the ReLU mask holding NaN and -0, groups): norm-wise within relative 1e-5 of the
//      CPU (the float64 reductions run in another order), and the same bits from a second run;
//   2. reluBackward, maxPool2dBackward (ties, NaN, padding borders, stride 2 with odd H),
//      globalAvgPoolBackward: the CPU's bits; sumRows within 1e-5 and run-to-run bits;
//   3. momentumUpdate(InPlace), sgdStep in every variant and the SGD class (step and stepInPlace,
//      3 steps with momentum and weight decay, buffers created on the device): the CPU's bits
//      (NaN payloads aside: a GPU returns one canonical NaN);
//   4. bad calls on device tensors: the CPU path's codes (ERR_SHAPE_MISMATCH, ERR_DTYPE_MISMATCH,
//      ERR_INVALID_ARGUMENT), and ERR_DEVICE_UNAVAILABLE for a CPU tensor mixed in, in any position.
// Results stay on the device (checked). Shared by test/backward/layers-device.test.ts (each CUDA
// device of the machine, or the emulated one) and the GPU device check (bench/device/train-check.ts,
// through bench/device/mini-tap.ts).
import type { Test } from 'tap';
import {
  batchNormBackward, batchNormReluBackward, batchNormTrain, batchNormTrainAddRelu, globalAvgPoolBackward,
  maxPool2dBackward, momentumUpdate, momentumUpdateInPlace, reluBackward, sumRows,
} from '../../src/backward/layers';
import type { BatchNormTrainParams } from '../../src/backward/layers';
import { SGD, SgdOptions, sgdStep } from '../../src/optim/sgd';
import { SGD_VARIANTS } from '../helpers/sgd-variants';
import type { PoolGeometry } from '../../src/ops';
import { scope, tensor, Tensor } from '../../src/tensor';
import { randomArray } from '../helpers/reference';
import { bitsEqual, firstDiff } from '../helpers/bits';

const RTOL = 1e-5;

const T = (a: Float32Array | Float64Array, shape: readonly number[]): Tensor => tensor(a, shape);
const read = (x: Tensor): Float32Array => x.toFloat32Array();
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** |a - b|_2 / |b|_2 (|a - b|_2 when b is all zeros). */
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}

/** The share of elements with the same bits, as a percentage for messages. */
function bitShare(a: Float32Array, b: Float32Array): string {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let same = 0;
  for (let i = 0; i < ua.length; i++) if (ua[i] === ub[i]) same++;
  return `${(100 * same / Math.max(1, ua.length)).toFixed(1)}% bit-identical`;
}

/** Bit-identical, except that any NaN matches any NaN (payloads are not IEEE results). */
function sameBitsOrNaN(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  }
  return true;
}

/** Norm-wise closeness of a device result to the CPU's, with the share of identical bits in the message. */
function close(t: Test, dev: Tensor, cpu: Tensor, what: string, device: string): void {
  t.equal(dev.device, device, `${what}: the result is on ${device}`);
  const a = read(dev), b = read(cpu);
  const e = relErr(a, b);
  t.ok(e <= RTOL, `${what}: rel ${e.toExponential(2)} (limit ${RTOL}), ${bitShare(a, b)}`);
}

function sameBits(t: Test, dev: Tensor, cpu: Tensor, what: string, device: string): void {
  t.equal(dev.device, device, `${what}: the result is on ${device}`);
  const a = read(dev), b = read(cpu);
  t.ok(sameBitsOrNaN(a, b), `${what}: the CPU's bits (${firstDiff(a, b)})`);
}

/** Values with many exact ties: integers in [-levels/2, levels/2). */
function tiedArray(n: number, seed: number, levels: number): Float32Array {
  const r = randomArray(n, seed);
  return r.map((v) => Math.floor((v + 1) * levels / 2) - Math.floor(levels / 2));
}

/** Per-channel data of x [..., C]: channel j ~ mu + j * sigma + sigma * U(-1, 1) * (1 + j % 3). */
function channelData(shape: readonly number[], seed: number, mu: number, sigma: number): Float32Array {
  const c = shape[shape.length - 1]!;
  const r = randomArray(prod(shape), seed);
  return r.map((v, i) => mu + (i % c) * sigma + sigma * v * (1 + (i % c) % 3));
}

/** A ReLU output for the backward's mask: mostly values > 0, with NaN, -0, +0 and negatives mixed in. */
function reluOutputArray(n: number, seed: number): Float32Array {
  const r = randomArray(n, seed);
  return r.map((v, i) => (i % 11 === 3 ? NaN : i % 11 === 5 ? -0 : i % 11 === 7 ? 0 : i % 11 === 9 ? -Math.abs(v) : Math.abs(v) + 0.1));
}

function bnParams(c: number, seed: number): BatchNormTrainParams {
  return {
    weight: T(randomArray(c, seed).map((v) => 1 + 0.5 * v), [c]),
    bias: T(randomArray(c, seed + 1, 0.5), [c]),
    runningMean: T(randomArray(c, seed + 2), [c]),
    runningVar: T(randomArray(c, seed + 3).map((v) => 1.25 + 0.75 * v), [c]),
    eps: 1e-5,
    momentum: 0.1,
  };
}

function toDevice(p: BatchNormTrainParams, device: string): BatchNormTrainParams {
  return {
    ...p, weight: p.weight.to(device), bias: p.bias.to(device), runningMean: p.runningMean.to(device),
    runningVar: p.runningVar.to(device),
  };
}

interface BnCase { name: string; shape: [number, number, number, number]; groups: number; mu: number; sigma: number }

const BN_CASES: BnCase[] = [
  { name: 'C=3', shape: [4, 5, 5, 3], groups: 1, mu: 0, sigma: 1 },
  { name: 'odd C=7, 2 groups', shape: [4, 6, 6, 7], groups: 2, mu: 0.5, sigma: 2 },
  { name: 'C=64 (float4), 4 groups', shape: [8, 3, 3, 64], groups: 4, mu: 0, sigma: 1 },
  { name: '|mean| / std = 1e5, C=36', shape: [2, 11, 11, 36], groups: 1, mu: 1000, sigma: 0.01 },
  { name: 'C=5, 2 groups, |mean| >> std', shape: [6, 7, 7, 5], groups: 2, mu: -300, sigma: 0.05 },
  { name: 'C=8, 14K rows (several row blocks)', shape: [4, 60, 60, 8], groups: 1, mu: 2, sigma: 1 },
];

function testBatchNorm(t: Test, device: string): void {
  for (const k of BN_CASES) {
    scope(() => {
      const x = T(channelData(k.shape, 11, k.mu, k.sigma), k.shape);
      const res = T(randomArray(prod(k.shape), 12), k.shape);
      const p = bnParams(k.shape[3], 13);
      const xd = x.to(device), resd = res.to(device), pd = toDevice(p, device);
      const o = { groups: k.groups };
      const variants: [string, () => ReturnType<typeof batchNormTrain>, () => ReturnType<typeof batchNormTrain>][] = [
        ['plain', () => batchNormTrain(xd, pd, o), () => batchNormTrain(x, p, o)],
        ['relu', () => batchNormTrain(xd, pd, { ...o, relu: true }), () => batchNormTrain(x, p, { ...o, relu: true })],
        ['residual + relu', () => batchNormTrainAddRelu(xd, pd, resd, o), () => batchNormTrainAddRelu(x, p, res, o)],
      ];
      for (const [v, dev, cpu] of variants) {
        const a = dev(), b = cpu(), again = dev();
        const what = `batch-norm train ${k.name}, ${v}`;
        close(t, a.y, b.y, `${what}: y`, device);
        close(t, a.mean, b.mean, `${what}: mean`, device);
        close(t, a.invstd, b.invstd, `${what}: invstd`, device);
        close(t, a.runningMean, b.runningMean, `${what}: running mean`, device);
        close(t, a.runningVar, b.runningVar, `${what}: running var`, device);
        t.ok(bitsEqual(read(again.y), read(a.y)) && bitsEqual(read(again.invstd), read(a.invstd)) &&
          bitsEqual(read(again.runningVar), read(a.runningVar)), `${what}: the same bits from a second run`);
      }

      // Backward, from the CPU forward's statistics (the same inputs on both sides).
      const fwd = batchNormTrain(x, p, { ...o, relu: true });
      const dy = T(randomArray(prod(k.shape), 14), k.shape);
      const ry = T(reluOutputArray(prod(k.shape), 15), k.shape);
      const [dyd, ryd, meand, invd] = [dy, ry, fwd.mean, fwd.invstd].map((z) => z.to(device)) as [Tensor, Tensor, Tensor, Tensor];
      const cases: [string, () => ReturnType<typeof batchNormBackward>, () => ReturnType<typeof batchNormBackward>][] = [
        ['plain', () => batchNormBackward(dyd, xd, pd.weight, meand, invd), () => batchNormBackward(dy, x, p.weight, fwd.mean, fwd.invstd)],
        ['ReLU mask with NaN, -0, 0', () => batchNormReluBackward(dyd, ryd, xd, pd.weight, meand, invd),
          () => batchNormReluBackward(dy, ry, x, p.weight, fwd.mean, fwd.invstd)],
      ];
      for (const [v, dev, cpu] of cases) {
        const a = dev(), b = cpu(), again = dev();
        const what = `batch-norm backward ${k.name}, ${v}`;
        close(t, a.dx, b.dx, `${what}: dx`, device);
        close(t, a.dweight, b.dweight, `${what}: dweight`, device);
        close(t, a.dbias, b.dbias, `${what}: dbias`, device);
        t.ok(bitsEqual(read(again.dx), read(a.dx)) && bitsEqual(read(again.dweight), read(a.dweight)) &&
          bitsEqual(read(again.dbias), read(a.dbias)), `${what}: the same bits from a second run`);
      }
    });
  }
}

interface PoolCase { name: string; shape: [number, number, number, number]; g: PoolGeometry; levels: number; nan: boolean; negative: boolean }

const POOL_CASES: PoolCase[] = [
  { name: 'stem 3x3/2 pad 1, odd H, C=3, ties', shape: [2, 9, 8, 3], g: { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, levels: 3, nan: false, negative: false },
  { name: '3x3/2 pad 1, C=8 (float4), negative: borders', shape: [2, 7, 7, 8], g: { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, levels: 0, nan: false, negative: true },
  { name: '3x3/1 pad 1, ties and NaN', shape: [1, 6, 5, 5], g: { kernel: [3, 3], stride: [1, 1], padding: [1, 1] }, levels: 2, nan: true, negative: false },
  { name: '2x2/2, C=64', shape: [2, 6, 6, 64], g: { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }, levels: 4, nan: false, negative: false },
];

function testPoolsAndRelu(t: Test, device: string): void {
  for (const k of POOL_CASES) {
    scope(() => {
      const n = prod(k.shape);
      let xa = k.levels > 0 ? tiedArray(n, 21, k.levels) : randomArray(n, 21);
      if (k.negative) xa = xa.map((v) => -2 - Math.abs(v));
      if (k.nan) xa = xa.map((v, i) => (i % 17 === 4 ? NaN : v));
      const x = T(xa, k.shape);
      const p = Math.floor((k.shape[1] + 2 * k.g.padding[0] - k.g.kernel[0]) / k.g.stride[0]) + 1;
      const q = Math.floor((k.shape[2] + 2 * k.g.padding[1] - k.g.kernel[1]) / k.g.stride[1]) + 1;
      const dyShape = [k.shape[0], p, q, k.shape[3]];
      const dy = T(randomArray(prod(dyShape), 22), dyShape);
      sameBits(t, maxPool2dBackward(dy.to(device), x.to(device), k.g), maxPool2dBackward(dy, x, k.g), `maxPool2dBackward ${k.name}`, device);
    });
  }
  scope(() => {
    for (const shape of [[3, 7, 5, 3], [2, 7, 7, 64], [2, 1, 1, 5]] as [number, number, number, number][]) {
      const dy = T(randomArray(shape[0] * shape[3], 31, 3), [shape[0], shape[3]]);
      sameBits(t, globalAvgPoolBackward(dy.to(device), shape), globalAvgPoolBackward(dy, shape), `globalAvgPoolBackward [${shape.join(', ')}]`, device);
    }
    for (const n of [1, 7, 1001]) {
      const dy = T(randomArray(n, 32).map((v, i) => (i === 2 ? -0 : v)), [n]);
      const y = T(reluOutputArray(n, 33), [n]);
      sameBits(t, reluBackward(dy.to(device), y.to(device)), reluBackward(dy, y), `reluBackward n=${n} (NaN, -0, 0 in y)`, device);
    }
    for (const [m, n] of [[0, 5], [1, 3], [1000, 3], [777, 64], [20000, 2]] as [number, number][]) {
      const x = T(randomArray(m * n, 34).map((v) => v + 5), [m, n]);
      const a = sumRows(x.to(device)), b = sumRows(x);
      if (m === 0) sameBits(t, a, b, 'sumRows of 0 rows: zeros', device);
      else close(t, a, b, `sumRows [${m}, ${n}]`, device);
      t.ok(bitsEqual(read(sumRows(x.to(device))), read(a)), `sumRows [${m}, ${n}]: the same bits from a second run`);
    }
  });
}

/** Floats over many binades with -0, inf, NaN and subnormals (where fused and unfused roundings differ). */
function hardArray(n: number, seed: number, scale: number): Float32Array {
  const r = randomArray(n, seed);
  return r.map((v, i) => (i % 29 === 3 ? -0 : i % 29 === 7 ? Infinity : i % 29 === 11 ? NaN : i % 29 === 13 ? 3e-42 * (1 + i)
    : scale * v * 2 ** ((i % 9) - 4)));
}

function testUpdates(t: Test, device: string): void {
  scope(() => {
    for (const n of [1, 5, 1003]) {
      const k = T(hardArray(n, 41, 1), [n]), q = T(hardArray(n, 42, 1), [n]);
      for (const m of [0.999, 0.5, 0, 1]) {
        sameBits(t, momentumUpdate(k.to(device), q.to(device), m), momentumUpdate(k, q, m), `momentumUpdate n=${n} m=${m}`, device);
      }
    }
    // In place on a list of device tensors (one a k that is its own q), against the CPU's in-place update.
    const sizes = [3, 64, 1001, 7];
    const ks = sizes.map((n, i) => T(hardArray(n, 43 + i, 1), [n])), qs = sizes.map((n, i) => T(hardArray(n, 53 + i, 1), [n]));
    const kd = ks.map((z) => z.to(device)), qd = qs.map((z) => z.to(device));
    qs[3] = ks[3]!;
    qd[3] = kd[3]!;
    momentumUpdateInPlace(kd, qd, 0.99);
    momentumUpdateInPlace(ks, qs, 0.99);
    kd.forEach((z, i) => sameBits(t, z, ks[i]!, `momentumUpdateInPlace tensor ${i}${i === 3 ? ' (its own q)' : ''}`, device));
  });

  for (const v of SGD_VARIANTS) {
    scope(() => {
      const n = 1001;
      let p = T(hardArray(n, 61, 1), [n]), pd = p.to(device);
      let buf: Tensor | undefined, bufd: Tensor | undefined;
      for (let s = 0; s < 3; s++) {
        const g = T(hardArray(n, 62 + s, 0.1), [n]);
        const a = sgdStep(pd, g.to(device), bufd, v.o), b = sgdStep(p, g, buf, v.o);
        sameBits(t, a.param, b.param, `sgdStep ${v.name}, step ${s + 1}: param`, device);
        if (b.buffer) sameBits(t, a.buffer!, b.buffer, `sgdStep ${v.name}, step ${s + 1}: buffer`, device);
        else t.equal(a.buffer, undefined, `sgdStep ${v.name}, step ${s + 1}: no buffer without momentum`);
        [p, pd, buf, bufd] = [b.param, a.param, b.buffer, a.buffer];
      }
    });
  }

  // The SGD class over a small network's worth of parameters: 3 steps of step() and of stepInPlace()
  // on the device, against step() on the CPU.
  scope(() => {
    const o: SgdOptions = { lr: 0.03, momentum: 0.9, weightDecay: 1e-4 };
    const shapes: Record<string, number[]> = { 'conv1.weight': [8, 3, 3, 3], 'bn1.weight': [8], 'bn1.bias': [8], 'fc.weight': [10, 37], 'fc.bias': [10] };
    const names = Object.keys(shapes);
    let cpu = new Map(names.map((k, i) => [k, T(randomArray(prod(shapes[k]!), 70 + i), shapes[k]!)]));
    let dev = new Map([...cpu].map(([k, v]) => [k, v.to(device)]));
    const inPlace = new Map([...cpu].map(([k, v]) => [k, v.to(device)]));
    const oc = new SGD(o), od = new SGD(o), oi = new SGD(o);
    for (let s = 0; s < 3; s++) {
      // fc.bias has no gradient at step 2: skipped, as PyTorch skips it.
      const grads = new Map(names.filter((k) => !(s === 1 && k === 'fc.bias')).map((k, i) => [k, T(randomArray(prod(shapes[k]!), 80 + 10 * s + i, 0.1), shapes[k]!)]));
      const gd = new Map([...grads].map(([k, v]) => [k, v.to(device)]));
      cpu = oc.step(cpu, grads);
      dev = od.step(dev, gd);
      oi.stepInPlace(inPlace, gd);
      for (const k of names) {
        sameBits(t, dev.get(k)!, cpu.get(k)!, `SGD.step on ${device}, step ${s + 1}: ${k}`, device);
        sameBits(t, inPlace.get(k)!, cpu.get(k)!, `SGD.stepInPlace on ${device}, step ${s + 1}: ${k}`, device);
      }
    }
    for (const [k, b] of oi.momentumBuffers()) {
      t.equal(b.device, device, `SGD.stepInPlace: the momentum buffer of ${k} was created on ${device}`);
      sameBits(t, b, oc.momentumBuffers().get(k)!, `SGD.stepInPlace: momentum buffer of ${k}`, device);
    }
    // Mixing devices: a CPU gradient, or a CPU momentum buffer, for a device parameter.
    const cpuGrads = new Map(names.map((k) => [k, T(randomArray(prod(shapes[k]!), 90), shapes[k]!)]));
    t.throws(() => oi.stepInPlace(inPlace, cpuGrads), { code: 'ERR_DEVICE_UNAVAILABLE', field: 'conv1.weight' }, 'SGD.stepInPlace: CPU gradients for device parameters');
    t.throws(() => od.step(dev, cpuGrads), { code: 'ERR_DEVICE_UNAVAILABLE', field: 'conv1.weight' }, 'SGD.step: CPU gradients for device parameters');
    const mixed = new Map([...inPlace]);
    mixed.set('fc.bias', cpu.get('fc.bias')!);
    t.throws(() => oi.stepInPlace(mixed, new Map([...cpuGrads].map(([k, v]) => [k, k === 'fc.bias' ? v : v.to(device)]))),
      { code: 'ERR_DEVICE_UNAVAILABLE', field: 'fc.bias' }, 'SGD.stepInPlace: parameters on two devices');
    oi.setMomentumBuffer('fc.bias', T(new Float32Array(10), [10]));
    t.throws(() => oi.stepInPlace(inPlace, new Map([...cpuGrads].map(([k, v]) => [k, v.to(device)]))),
      { code: 'ERR_DEVICE_UNAVAILABLE', field: 'fc.bias' }, 'SGD.stepInPlace: a CPU momentum buffer for a device parameter');
    od.setMomentumBuffer('fc.bias', T(new Float32Array(10), [10]));
    t.throws(() => od.step(dev, new Map([['fc.bias', cpuGrads.get('fc.bias')!.to(device)]])),
      { code: 'ERR_DEVICE_UNAVAILABLE', field: 'fc.bias' }, 'SGD.step: a CPU momentum buffer for a device parameter');
    oc.dispose();
    od.dispose();
    oi.dispose();
  });
}

/** Asserts fn throws an error with `code` (and a message matching `message`, when given). */
function expectCode(t: Test, fn: () => unknown, code: string, what: string, message?: RegExp): void {
  t.throws(fn, message ? { code, message } : { code }, `${what}: ${code}`);
}

function testErrors(t: Test, device: string): void {
  scope(() => {
    const shape = [2, 3, 3, 4];
    const x = T(randomArray(72, 1), shape), xd = x.to(device);
    const p = bnParams(4, 2), pd = toDevice(p, device);
    const v4 = pd.weight;
    expectCode(t, () => batchNormTrain(xd, { ...pd, weight: p.weight }), 'ERR_DEVICE_UNAVAILABLE', 'batchNormTrain: weight on the CPU', /weight/);
    expectCode(t, () => batchNormTrain(x, { ...p, runningVar: pd.runningVar }), 'ERR_DEVICE_UNAVAILABLE', 'batchNormTrain: x on the CPU, runningVar on the device', /runningVar/);
    expectCode(t, () => batchNormTrainAddRelu(xd, pd, x), 'ERR_DEVICE_UNAVAILABLE', 'batchNormTrainAddRelu: residual on the CPU', /residual/);
    expectCode(t, () => batchNormTrain(xd, { ...pd, weight: T(new Float32Array(5), [5]).to(device) }), 'ERR_SHAPE_MISMATCH', 'batchNormTrain: weight [5] for C = 4', /weight/);
    expectCode(t, () => batchNormTrain(xd, pd, { groups: 3 }), 'ERR_INVALID_ARGUMENT', 'batchNormTrain: 3 groups of N = 2');
    expectCode(t, () => batchNormTrain(T(new Float64Array(72), shape).to(device), pd), 'ERR_DTYPE_MISMATCH', 'batchNormTrain: float64 x');
    const fwd = batchNormTrain(xd, pd);
    expectCode(t, () => batchNormBackward(xd, x, v4, fwd.mean, fwd.invstd), 'ERR_DEVICE_UNAVAILABLE', 'batchNormBackward: x on the CPU', /\bx\b/);
    expectCode(t, () => batchNormReluBackward(xd, x, xd, v4, fwd.mean, fwd.invstd), 'ERR_DEVICE_UNAVAILABLE', 'batchNormReluBackward: reluOutput on the CPU', /reluOutput/);
    expectCode(t, () => batchNormBackward(xd, xd, v4, fwd.mean, fwd.invstd.reshape([1, 4])), 'ERR_SHAPE_MISMATCH', 'batchNormBackward: invstd unlike mean', /invstd/);
    expectCode(t, () => reluBackward(xd, x), 'ERR_DEVICE_UNAVAILABLE', 'reluBackward: y on the CPU');
    expectCode(t, () => reluBackward(xd, xd.reshape([72])), 'ERR_SHAPE_MISMATCH', 'reluBackward: shapes differ');
    const g: PoolGeometry = { kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
    expectCode(t, () => maxPool2dBackward(T(new Float32Array(32), [2, 2, 2, 4]).to(device), x, g), 'ERR_DEVICE_UNAVAILABLE', 'maxPool2dBackward: x on the CPU');
    expectCode(t, () => maxPool2dBackward(T(new Float32Array(24), [2, 3, 1, 4]).to(device), xd, g), 'ERR_SHAPE_MISMATCH', 'maxPool2dBackward: dy of the wrong shape', /dy/);
    expectCode(t, () => globalAvgPoolBackward(T(new Float32Array(8), [2, 4]).to(device), [2, 3, 3, 5]), 'ERR_SHAPE_MISMATCH', 'globalAvgPoolBackward: dy [2, 4] for C = 5');
    expectCode(t, () => sumRows(xd), 'ERR_SHAPE_MISMATCH', 'sumRows: rank 4');
    expectCode(t, () => momentumUpdate(v4, p.bias, 0.9), 'ERR_DEVICE_UNAVAILABLE', 'momentumUpdate: q on the CPU', /\bq\b/);
    expectCode(t, () => momentumUpdate(v4, pd.bias, 1.5), 'ERR_INVALID_ARGUMENT', 'momentumUpdate: m > 1');
    expectCode(t, () => momentumUpdateInPlace([v4, pd.bias], [pd.bias, p.bias], 0.9), 'ERR_DEVICE_UNAVAILABLE', 'momentumUpdateInPlace: qs[1] on the CPU', /qs\[1\]/);
    expectCode(t, () => momentumUpdateInPlace([v4, p.bias], [v4, p.bias], 0.9), 'ERR_DEVICE_UNAVAILABLE', 'momentumUpdateInPlace: ks[1] on the CPU', /ks\[1\]/);
    expectCode(t, () => sgdStep(v4, p.bias, undefined, { lr: 0.1 }), 'ERR_DEVICE_UNAVAILABLE', 'sgdStep: grad on the CPU', /grad/);
    expectCode(t, () => sgdStep(v4, pd.bias, p.bias, { lr: 0.1, momentum: 0.9 }), 'ERR_DEVICE_UNAVAILABLE', 'sgdStep: buffer on the CPU', /buffer/);
    expectCode(t, () => sgdStep(v4, xd, undefined, { lr: 0.1 }), 'ERR_SHAPE_MISMATCH', 'sgdStep: grad unlike param', /grad/);
    // The values of the device tensors were not touched by the refused calls.
    t.ok(bitsEqual(read(v4), read(p.weight)), 'refused calls leave the device tensors as they were');
  });
}

/** The four groups of checks on `device`, as subtests of `t`. */
export function runLayerBackwardDevice(t: Test, device: string, name = device): void {
  t.test(`batch norm on ${name}`, async (t) => testBatchNorm(t, device));
  t.test(`pools, reluBackward and sumRows on ${device}`, async (t) => testPoolsAndRelu(t, device));
  t.test(`momentum update and SGD on ${device}`, async (t) => testUpdates(t, device));
  t.test(`bad calls on ${device}`, async (t) => testErrors(t, device));
}
