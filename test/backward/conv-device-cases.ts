// The convolution's backward ops on each CUDA device (native/cuda/conv2d_backward.cu through
// src/backward/conv.ts), against the same ops on the CPU (which test/backward/conv-backward.test.ts
// checks against float64 references and PyTorch):
//   1. dx (plain and with the fused residual + ReLU-mask epilogue) and dW for a table of shapes: the
//      ResNet kinds (7x7/2 stem with C = 3, 3x3/1, 3x3/2 with odd H, 1x1/1, 1x1/2 with odd H) and
//      odd ones (K = 3, K and C past a tile, rectangular kernels and strides, windows only in the
//      padding, several split-K slices of wgrad, N = 0). Relative error max |dev - cpu| / max |cpu|
//      <= 1e-5; the two sum in different orders, so not bit for bit. Results stay on the device.
//   2. the same bits from a second run (no atomics; wgrad's slices are added in a fixed order);
//   3. bad calls: the CPU path's codes (ERR_SHAPE_MISMATCH, ERR_DTYPE_MISMATCH, ERR_INVALID_ARGUMENT)
//      for device tensors, and ERR_DEVICE_UNAVAILABLE for a CPU tensor mixed with device tensors,
//      in either position.
// Shared by test/backward/conv-device.test.ts (each CUDA device of the machine, or the emulated one)
// and the GPU device check (bench/device/train-check.ts, through bench/device/mini-tap.ts).
import type { Test } from 'tap';
import type { ConvGeometry } from '../../src/ops';
import { conv2dBackwardData, conv2dBackwardDataEpilogue, conv2dBackwardWeight } from '../../src/backward/conv';
import { tensor, Tensor } from '../../src/tensor';
import { outSize, randomArray } from '../helpers/reference';

const RTOL = 1e-5;

interface Case {
  name: string;
  n: number; c: number; h: number; w: number; k: number;
  r: number; s: number; sh: number; sw: number; ph: number; pw: number;
}

const CASES: Case[] = [
  { name: '7x7/2 pad 3 stem, C=3, odd H and W', n: 2, c: 3, h: 17, w: 15, k: 16, r: 7, s: 7, sh: 2, sw: 2, ph: 3, pw: 3 },
  { name: '3x3/1 pad 1', n: 2, c: 16, h: 9, w: 9, k: 24, r: 3, s: 3, sh: 1, sw: 1, ph: 1, pw: 1 },
  { name: '3x3/2 pad 1, odd H', n: 2, c: 8, h: 11, w: 9, k: 20, r: 3, s: 3, sh: 2, sw: 2, ph: 1, pw: 1 },
  { name: '1x1/1, K=80', n: 2, c: 32, h: 7, w: 7, k: 80, r: 1, s: 1, sh: 1, sw: 1, ph: 0, pw: 0 },
  { name: '1x1/2, odd H (phases without taps)', n: 2, c: 16, h: 9, w: 9, k: 24, r: 1, s: 1, sh: 2, sw: 2, ph: 0, pw: 0 },
  { name: 'K=3, C=5 (scalar paths)', n: 2, c: 5, h: 6, w: 7, k: 3, r: 3, s: 3, sh: 1, sw: 1, ph: 1, pw: 1 },
  { name: 'C=136, K=136 (partial tiles)', n: 1, c: 136, h: 5, w: 5, k: 136, r: 3, s: 3, sh: 1, sw: 1, ph: 1, pw: 1 },
  { name: '3x2 kernel, stride (2, 1), pad (1, 0)', n: 2, c: 6, h: 9, w: 6, k: 7, r: 3, s: 2, sh: 2, sw: 1, ph: 1, pw: 0 },
  { name: '2x2/4 pad 2 on 4x2: no window meets the image along W', n: 3, c: 8, h: 4, w: 2, k: 8, r: 2, s: 2, sh: 4, sw: 4, ph: 2, pw: 2 },
  { name: '3x3/1 on 24x24: wgrad in several slices', n: 2, c: 16, h: 24, w: 24, k: 32, r: 3, s: 3, sh: 1, sw: 1, ph: 1, pw: 1 },
  { name: 'N=0', n: 0, c: 4, h: 5, w: 5, k: 6, r: 3, s: 3, sh: 2, sw: 2, ph: 1, pw: 1 },
];

const P = (p: Case) => outSize(p.h, p.r, p.sh, p.ph);
const Q = (p: Case) => outSize(p.w, p.s, p.sw, p.pw);
const geometry = (p: Case): ConvGeometry =>
  ({ outChannels: p.k, kernel: [p.r, p.s], stride: [p.sh, p.sw], padding: [p.ph, p.pw] });

/** max |a - b| / max |b| (0 when both are all zeros). */
function relError(a: Float32Array, b: Float32Array): number {
  let err = 0, mag = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    mag = Math.max(mag, Math.abs(b[i]!));
  }
  return mag > 0 ? err / mag : err;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** ReLU outputs with zeros, negatives and NaN (NaN keeps the gradient, as threshold_backward). */
function reluOutput(n: number, seed: number): Float32Array {
  const r = randomArray(n, seed);
  for (let i = 0; i < n; i += 7) r[i] = NaN;
  for (let i = 3; i < n; i += 11) r[i] = 0;
  return r;
}

/** Runs fn on a device copy of each input, returns the result read back, and disposes both. */
function onDevice(device: string, inputs: Tensor[], fn: (...d: Tensor[]) => Tensor, tt: Test, what: string): Float32Array {
  const d = inputs.map((x) => x.to(device));
  try {
    const out = fn(...d);
    try {
      tt.equal(out.device, device, `${what}: the result is on ${device}`);
      return out.toFloat32Array();
    } finally {
      out.dispose();
    }
  } finally {
    for (const x of d) x.dispose();
  }
}

function checkCase(tt: Test, device: string, p: Case, seed: number): void {
  const g = geometry(p);
  const xs = [p.n, p.h, p.w, p.c];
  const x = tensor(randomArray(p.n * p.h * p.w * p.c, seed), xs);
  const w = tensor(randomArray(p.k * p.c * p.r * p.s, seed + 1, 0.5), [p.k, p.c, p.r, p.s]);
  const dy = tensor(randomArray(p.n * P(p) * Q(p) * p.k, seed + 2), [p.n, P(p), Q(p), p.k]);
  const res = tensor(randomArray(p.n * p.h * p.w * p.c, seed + 3), xs);
  const ry = tensor(reluOutput(p.n * p.h * p.w * p.c, seed + 4), xs);
  const owned = [x, w, dy, res, ry];
  try {
    const ops: { what: string; inputs: Tensor[]; fn: (...a: Tensor[]) => Tensor }[] = [
      { what: 'dgrad', inputs: [dy, w], fn: (a, b) => conv2dBackwardData(a!, b!, g, [p.h, p.w]) },
      {
        what: 'dgrad + residual + ReLU mask', inputs: [dy, w, res, ry],
        fn: (a, b, r, y) => conv2dBackwardDataEpilogue(a!, b!, g, [p.h, p.w], { residual: r, reluOutput: y }),
      },
      {
        what: 'dgrad + residual', inputs: [dy, w, res],
        fn: (a, b, r) => conv2dBackwardDataEpilogue(a!, b!, g, [p.h, p.w], { residual: r }),
      },
      { what: 'wgrad', inputs: [x, dy], fn: (a, b) => conv2dBackwardWeight(a!, b!, g) },
    ];
    for (const op of ops) {
      const what = `${p.name}: ${op.what}`;
      const cpuT = op.fn(...op.inputs);
      const cpu = cpuT.toFloat32Array();
      cpuT.dispose();
      const one = onDevice(device, op.inputs, op.fn, tt, what);
      const two = onDevice(device, op.inputs, op.fn, tt, `${what} (again)`);
      tt.equal(one.length, cpu.length, `${what}: ${cpu.length} values`);
      const e = relError(one, cpu);
      tt.ok(e <= RTOL, `${what}: max |dev - cpu| / max |cpu| = ${e.toExponential(2)} (limit ${RTOL})`);
      tt.ok(sameBits(one, two), `${what}: the same bits twice`);
    }
  } finally {
    for (const v of owned) v.dispose();
  }
}

function expectCode(tt: Test, fn: () => unknown, code: string, what: string, message?: RegExp): void {
  try {
    const r = fn() as Tensor | undefined;
    r?.dispose();
    tt.fail(`${what}: did not throw`);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    tt.equal(err.code, code, `${what}: ${code}`);
    if (message) tt.match(err.message ?? '', message, `${what}: message`);
  }
}

function checkErrors(tt: Test, device: string): void {
  const p: Case = { name: 'err', n: 2, c: 3, h: 7, w: 7, k: 4, r: 3, s: 3, sh: 2, sw: 2, ph: 1, pw: 1 };
  const g = geometry(p);
  const cpu = {
    x: tensor(new Float32Array(2 * 7 * 7 * 3), [2, 7, 7, 3]),
    w: tensor(new Float32Array(4 * 3 * 3 * 3), [4, 3, 3, 3]),
    dy: tensor(new Float32Array(2 * 4 * 4 * 4), [2, 4, 4, 4]),
  };
  const dev = {
    x: cpu.x.to(device), w: cpu.w.to(device), dy: cpu.dy.to(device),
    dyWrong: tensor(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]).to(device),
    dyRank3: tensor(new Float32Array(2 * 4 * 4 * 4), [2, 16, 4]).to(device),
    dy64: tensor(new Float64Array(2 * 4 * 4 * 4), [2, 4, 4, 4]).to(device),
    wK: tensor(new Float32Array(5 * 3 * 3 * 3), [5, 3, 3, 3]).to(device),
    res: tensor(new Float32Array(2 * 7 * 7 * 3), [2, 7, 7, 3]).to(device),
    resWrong: tensor(new Float32Array(2 * 7 * 6 * 3), [2, 7, 6, 3]).to(device),
  };
  try {
    // The CPU path's checks, on device tensors.
    expectCode(tt, () => conv2dBackwardData(dev.dyWrong, dev.w, g, [7, 7]), 'ERR_SHAPE_MISMATCH', 'dgrad: dy with 3 channels', /dy/);
    expectCode(tt, () => conv2dBackwardWeight(dev.x, dev.dyWrong, g), 'ERR_SHAPE_MISMATCH', 'wgrad: dy with 3 channels', /dy/);
    expectCode(tt, () => conv2dBackwardData(dev.dyRank3, dev.w, g, [7, 7]), 'ERR_SHAPE_MISMATCH', 'dgrad: dy of rank 3', /dy/);
    expectCode(tt, () => conv2dBackwardData(dev.dy, dev.wK, g, [7, 7]), 'ERR_SHAPE_MISMATCH', 'dgrad: weight with 5 output channels', /weight/);
    expectCode(tt, () => conv2dBackwardData(dev.dy64, dev.w, g, [7, 7]), 'ERR_DTYPE_MISMATCH', 'dgrad: float64 dy', /dy/);
    expectCode(tt, () => conv2dBackwardWeight(dev.x, dev.dy64, g), 'ERR_DTYPE_MISMATCH', 'wgrad: float64 dy', /dy/);
    expectCode(tt, () => conv2dBackwardData(dev.dy, dev.w, { ...g, stride: [0, 2] }, [7, 7]), 'ERR_INVALID_ARGUMENT', 'dgrad: stride 0');
    expectCode(tt, () => conv2dBackwardWeight(dev.x, dev.dy, { ...g, padding: [-1, 1] }), 'ERR_INVALID_ARGUMENT', 'wgrad: negative padding');
    expectCode(tt, () => conv2dBackwardData(dev.dy, dev.w, g, [0, 7]), 'ERR_INVALID_ARGUMENT', 'dgrad: inputSize 0');
    expectCode(tt, () => conv2dBackwardDataEpilogue(dev.dy, dev.w, g, [7, 7], { residual: dev.resWrong }), 'ERR_SHAPE_MISMATCH',
      'dgrad: residual not dx\'s shape', /residual/);
    // A CPU tensor among device tensors, in every position.
    const mixed = /same device/;
    expectCode(tt, () => conv2dBackwardData(dev.dy, cpu.w, g, [7, 7]), 'ERR_DEVICE_UNAVAILABLE', 'dgrad: weight on the CPU', mixed);
    expectCode(tt, () => conv2dBackwardData(cpu.dy, dev.w, g, [7, 7]), 'ERR_DEVICE_UNAVAILABLE', 'dgrad: dy on the CPU', mixed);
    expectCode(tt, () => conv2dBackwardDataEpilogue(dev.dy, dev.w, g, [7, 7], { residual: dev.res, reluOutput: cpu.x }),
      'ERR_DEVICE_UNAVAILABLE', 'dgrad: reluOutput on the CPU', mixed);
    expectCode(tt, () => conv2dBackwardWeight(dev.x, cpu.dy, g), 'ERR_DEVICE_UNAVAILABLE', 'wgrad: dy on the CPU', mixed);
    expectCode(tt, () => conv2dBackwardWeight(cpu.x, dev.dy, g), 'ERR_DEVICE_UNAVAILABLE', 'wgrad: x on the CPU', mixed);
  } finally {
    for (const v of [...Object.values(cpu), ...Object.values(dev)]) v.dispose();
  }
}

/** Every case and the bad calls on `device`, as assertions of `tt`. */
export function runConvBackwardDevice(tt: Test, device: string): void {
  CASES.forEach((p, i) => checkCase(tt, device, p, 100 + 10 * i));
  checkErrors(tt, device);
}
