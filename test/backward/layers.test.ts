// The layer training primitives of src/backward/layers.ts against float64 references written here
// (NHWC loops, as plain as possible) and against PyTorch 1.13's autograd numbers
// (test/fixtures/backward/layers.json, made by make_layer_fixtures.py).
//
// Tolerance: |out - ref| <= 1e-5 * mag, where mag is the element's magnitude scale: the same
// expression over absolute values (so cancellation cannot cause false failures). Shapes cover odd C,
// C up to 301, rows of 1x1 maps, N = 2..8, several reduction blocks (rows * C > 64K), 64-channel
// blocks of the max-pool backward crossing C, pools 3x3/2 pad 1 on odd H/W with ties, NaNs and -inf.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  batchNormBackward, batchNormTrain, globalAvgPoolBackward, maxPool2dBackward, momentumUpdate, reluBackward, sumRows,
} from '../../src/backward/layers';
import { cudaInfo } from '../../src/device';
import { native } from '../../src/native';
import * as ops from '../../src/ops';
import { tensor, Tensor } from '../../src/tensor';
import { check, CheckResult, outSize, randomArray } from '../helpers/reference';
import { bitsEqual } from '../helpers/bits';
import { BnStats, bnBackwardRef, bnForwardRef, bnStatsRef } from '../helpers/batchnorm-reference';

const RTOL = 1e-5;

const T = (a: Float32Array | Float64Array, shape: readonly number[]): Tensor => tensor(a, shape);
const read = (x: Tensor): Float32Array => x.toFloat32Array();
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Asserts a check and records the worst ratio |err| / allowed per label family. */
const worst = new Map<string, number>();
function ok(t: Test, r: CheckResult, label: string, family: string): void {
  worst.set(family, Math.max(worst.get(family) ?? 0, r.worst));
  t.ok(r.ok, `${label}${r.ok ? '' : `: ${r.firstBad} (worst ${r.worst.toExponential(2)})`}`);
}

/** The spacing of float32 values at v's magnitude. */
const ulp32 = (v: number): number => v === 0 ? 2 ** -149 : 2 ** Math.max(Math.floor(Math.log2(Math.abs(v))) - 23, -149);

// ---------------------------------------------------------------- float64 references

/** Max-pool forward and backward on NHWC by PyTorch's rule (first maximum, NaN takes over). */
function maxPoolBackwardRef(x: Float32Array, dy: Float32Array, n: number, h: number, w: number, c: number,
  k: number, s: number, pad: number) {
  const P = outSize(h, k, s, pad), Q = outSize(w, k, s, pad);
  const y = new Float64Array(n * P * Q * c), dx = new Float64Array(x.length), mag = new Float64Array(x.length);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let op = 0; op < P; op++) for (let oq = 0; oq < Q; oq++) {
    const h0 = op * s - pad, w0 = oq * s - pad, hs = Math.max(h0, 0), ws = Math.max(w0, 0);
    let best = -Infinity, win = hs * w + ws;
    for (let ih = hs; ih < Math.min(h0 + k, h); ih++) for (let iw = ws; iw < Math.min(w0 + k, w); iw++) {
      const v = x[((i * h + ih) * w + iw) * c + ch]!;
      if (v > best || Number.isNaN(v)) { best = v; win = ih * w + iw; }
    }
    const o = ((i * P + op) * Q + oq) * c + ch;
    y[o] = best;
    dx[(i * h * w + win) * c + ch]! += dy[o]!;
    mag[(i * h * w + win) * c + ch]! += Math.abs(dy[o]!);
  }
  return { y, dx, mag, P, Q };
}

// ---------------------------------------------------------------- fixture

type Num = number | string;
const num = (v: Num): number => typeof v === 'number' ? v : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity;
const F = (a: Num[]): Float32Array => Float32Array.from(a, num);

interface BnFixture {
  name: string; shape: number[]; relu: boolean; momentum: number; eps: number;
  x: Num[]; dy: Num[]; weight: Num[]; bias: Num[]; runningMean: Num[]; runningVar: Num[];
  y: Num[]; newRunningMean: Num[]; newRunningVar: Num[]; dx: Num[]; dweight: Num[]; dbias: Num[];
}
interface PoolFixture { name: string; shape: number[]; kernel: number; stride: number; padding: number; x: Num[]; y: Num[]; dy: Num[]; dx: Num[] }
interface AvgFixture { name: string; shape: number[]; dy: Num[]; dx: Num[] }
interface MomentumFixture { name: string; m: number; k: Num[]; q: Num[]; out: Num[] }
const FIX = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'backward', 'layers.json'), 'utf8')) as {
  torch: string; bn: BnFixture[]; maxpool: PoolFixture[]; avgpool: AvgFixture[]; momentum: MomentumFixture[];
};

// ---------------------------------------------------------------- cases

interface BnCase { name: string; shape: number[]; relu: boolean; offset?: number; scale?: number }
const BN_CASES: BnCase[] = [
  { name: '[2, 3, 5, 7] odd C', shape: [2, 3, 5, 7], relu: false },
  { name: '[8, 1, 1, 33] (1x1 maps: rows = N)', shape: [8, 1, 1, 33], relu: false },
  { name: '[3, 1, 1, 5] + ReLU', shape: [3, 1, 1, 5], relu: true },
  { name: '[4, 6, 6, 64] + ReLU', shape: [4, 6, 6, 64], relu: true },
  { name: '[2, 3, 3, 301] (C = 301)', shape: [2, 3, 3, 301], relu: false },
  { name: '[5, 37] (2-D)', shape: [5, 37], relu: false },
  { name: '[2, 19] (2 rows)', shape: [2, 19], relu: true },
  { name: '[6, 40, 40, 10] (two reduction blocks)', shape: [6, 40, 40, 10], relu: true },
  { name: '[3, 4, 4, 13] mean 100, std 0.006 (two-pass variance)', shape: [3, 4, 4, 13], relu: false, offset: 100, scale: 0.01 },
];

function bnInputs(cs: BnCase, seed: number) {
  const C = cs.shape[cs.shape.length - 1]!, rows = prod(cs.shape) / C;
  const x = randomArray(rows * C, seed, cs.scale ?? 1.5).map((v, i) => v + (cs.offset ?? 0.3 * ((i % C) % 5)));
  return {
    C, rows, x,
    dy: randomArray(rows * C, seed + 1),
    weight: randomArray(C, seed + 2).map((v) => 1 + 0.4 * v),
    bias: randomArray(C, seed + 3, 0.3),
    rm: randomArray(C, seed + 4, 0.1),
    rv: randomArray(C, seed + 5).map((v) => 1 + 0.5 * v),
  };
}

t.test('batchNormTrain against float64 statistics', async (t) => {
  const eps = 1e-5, momentum = 0.1;
  BN_CASES.forEach((cs, ci) => {
    const d = bnInputs(cs, 100 + 10 * ci);
    const x = T(d.x, cs.shape);
    const p = { weight: T(d.weight, [d.C]), bias: T(d.bias, [d.C]), runningMean: T(d.rm, [d.C]), runningVar: T(d.rv, [d.C]), eps, momentum };
    const r = batchNormTrain(x, p, { relu: cs.relu });
    t.same(r.y.shape, cs.shape, `${cs.name}: y has x's shape`);
    const st = bnStatsRef(d.x, d.rows, d.C, eps);
    const mean = read(r.mean), invstd = read(r.invstd);
    ok(t, check(mean, st.mean, RTOL, 0, st.absMean), `${cs.name}: mean`, 'mean');
    ok(t, check(invstd, st.invstd, RTOL, 0), `${cs.name}: invstd`, 'invstd');
    const f = bnForwardRef(d.x, d.rows, d.C, mean, invstd, d.weight, d.bias, cs.relu);
    ok(t, check(read(r.y), f.y, RTOL, 0, f.mag), `${cs.name}: y from the saved statistics`, 'y');
    // y against the exact statistics too: the float32 mean's own rounding (|mean| u) is part of the scale.
    const fe = bnForwardRef(d.x, d.rows, d.C, st.mean, st.invstd, d.weight, d.bias, cs.relu);
    const meMag = fe.mag.map((m, i) => m + Math.abs(st.mean[i % d.C]! * st.invstd[i % d.C]! * d.weight[i % d.C]!) * 0.1);
    ok(t, check(read(r.y), fe.y, RTOL, 0, meMag), `${cs.name}: y from the exact statistics`, 'y');
    const n = d.rows;
    const rmRef = Float64Array.from(d.rm, (v, c) => (1 - momentum) * v + momentum * st.mean[c]!);
    const rmMag = Float64Array.from(d.rm, (v, c) => (1 - momentum) * Math.abs(v) + momentum * st.absMean[c]!);
    const rvRef = Float64Array.from(d.rv, (v, c) => (1 - momentum) * v + momentum * st.variance[c]! * n / (n - 1));
    ok(t, check(read(r.runningMean), rmRef, RTOL, 0, rmMag), `${cs.name}: running mean`, 'running');
    ok(t, check(read(r.runningVar), rvRef, RTOL, 0), `${cs.name}: running var (unbiased, n/(n-1))`, 'running');
    t.ok(bitsEqual(read(x), d.x) && bitsEqual(read(p.runningMean), d.rm) && bitsEqual(read(p.runningVar), d.rv),
      `${cs.name}: x and the running statistics passed in are untouched`);
    for (const v of [x, p.weight, p.bias, p.runningMean, p.runningVar, r.y, r.mean, r.invstd, r.runningMean, r.runningVar]) v.dispose();
  });
});

t.test('batchNormBackward against float64 references', async (t) => {
  BN_CASES.forEach((cs, ci) => {
    const d = bnInputs(cs, 200 + 10 * ci);
    const x = T(d.x, cs.shape), dy = T(d.dy, cs.shape), w = T(d.weight, [d.C]);
    const st = bnStatsRef(d.x, d.rows, d.C, 1e-5);
    const mean = Float32Array.from(st.mean), invstd = Float32Array.from(st.invstd);
    const g = batchNormBackward(dy, x, w, T(mean, [d.C]), T(invstd, [d.C]));
    const ref = bnBackwardRef(d.dy, d.x, d.rows, d.C, d.weight, mean, invstd);
    t.same(g.dx.shape, cs.shape, `${cs.name}: dx has x's shape`);
    ok(t, check(read(g.dx), ref.dx, RTOL, 0, ref.dxMag), `${cs.name}: dx`, 'dx');
    ok(t, check(read(g.dweight), ref.dweight, RTOL, 0, ref.dwMag), `${cs.name}: dweight`, 'dweight');
    ok(t, check(read(g.dbias), ref.dbias, RTOL, 0, ref.dbMag), `${cs.name}: dbias`, 'dbias');
    t.ok(bitsEqual(read(dy), d.dy) && bitsEqual(read(x), d.x), `${cs.name}: dy and x untouched`);
  });
  t.test('dx sums to zero per channel and is orthogonal to (x - mean) (the mean and variance terms)', async (t) => {
    const d = bnInputs(BN_CASES[3]!, 300);
    const st = bnStatsRef(d.x, d.rows, d.C, 0);
    const g = batchNormBackward(T(d.dy, BN_CASES[3]!.shape), T(d.x, BN_CASES[3]!.shape), T(d.weight, [d.C]),
      T(Float32Array.from(st.mean), [d.C]), T(Float32Array.from(st.invstd), [d.C]));
    const dx = read(g.dx);
    let worstSum = 0, worstDot = 0;
    for (let c = 0; c < d.C; c++) {
      let s = 0, sa = 0, p = 0, pa = 0;
      for (let r = 0; r < d.rows; r++) {
        const v = dx[r * d.C + c]!, dm = d.x[r * d.C + c]! - st.mean[c]!;
        s += v; sa += Math.abs(v); p += v * dm; pa += Math.abs(v * dm);
      }
      worstSum = Math.max(worstSum, Math.abs(s) / sa); worstDot = Math.max(worstDot, Math.abs(p) / pa);
    }
    t.ok(worstSum < 1e-5, `sum dx ~ 0 (worst relative ${worstSum.toExponential(2)})`);
    t.ok(worstDot < 1e-4, `sum dx (x - mean) ~ 0 (worst relative ${worstDot.toExponential(2)})`);
  });
});

t.test('reluBackward: dy where y > 0, PyTorch threshold_backward on the output', async (t) => {
  const y = new Float32Array([1, 0, -0, -2, NaN, 1e-30, -1e-30, Infinity, -Infinity, 3]);
  const dy = new Float32Array([10, 20, 30, 40, 50, 60, 70, 80, 90, -100]);
  const dx = read(reluBackward(T(dy, [2, 5]), T(y, [2, 5])));
  t.same(Array.from(dx), [10, 0, 0, 0, 50, 60, 0, 80, 0, -100], 'y <= 0 gives 0; NaN and positive y pass dy');
  t.equal(Object.is(dx[1], 0), true, 'a zero gradient is +0');
  const big = randomArray(100_003, 7), g = randomArray(100_003, 8);
  const out = read(reluBackward(T(g, [100_003]), T(big, [100_003])));
  let bad = 0;
  for (let i = 0; i < big.length; i++) if (out[i] !== (big[i]! > 0 ? g[i]! : 0)) bad++;
  t.equal(bad, 0, '100003 elements across threads');
});

interface PoolCase { name: string; n: number; h: number; w: number; c: number; k: number; s: number; pad: number; levels?: boolean; nan?: boolean; negInf?: boolean }
const POOL_CASES: PoolCase[] = [
  { name: '3x3/2 pad 1, 7x9, ties, NaN, -inf', n: 2, h: 7, w: 9, c: 5, k: 3, s: 2, pad: 1, levels: true, nan: true, negInf: true },
  { name: '3x3/2 pad 1, 11x13, C = 3', n: 3, h: 11, w: 13, c: 3, k: 3, s: 2, pad: 1 },
  { name: '3x3/2 pad 1, 9x9, C = 130 (channel blocks), ties', n: 2, h: 9, w: 9, c: 130, k: 3, s: 2, pad: 1, levels: true },
  { name: '3x3/1 pad 1 (every element in 9 windows), ties', n: 1, h: 6, w: 5, c: 4, k: 3, s: 1, pad: 1, levels: true },
  { name: '2x2/2 pad 0, 8x8', n: 4, h: 8, w: 8, c: 6, k: 2, s: 2, pad: 0 },
  { name: '3x3/2 pad 1 on a 1x1 map', n: 8, h: 1, w: 1, c: 7, k: 3, s: 2, pad: 1, nan: true },
  { name: '3x3/2 pad 1, 2x2, all -inf', n: 2, h: 2, w: 2, c: 3, k: 3, s: 2, pad: 1, negInf: true },
  { name: '3x3/2 pad 1, 56x56, C = 64 (ResNet stem)', n: 2, h: 56, w: 56, c: 64, k: 3, s: 2, pad: 1 },
];

function poolInput(cs: PoolCase, seed: number): Float32Array {
  const x = randomArray(cs.n * cs.h * cs.w * cs.c, seed);
  if (cs.levels) for (let i = 0; i < x.length; i++) x[i] = [-1, 0, 0.5, 1][Math.floor((x[i]! + 1) * 2) % 4]!;
  // Channel 1 of every fifth pixel (channel 0 when C = 1) is NaN.
  if (cs.nan) for (let px = 0; px < x.length / cs.c; px += 5) x[px * cs.c + Math.min(1, cs.c - 1)] = NaN;
  if (cs.negInf) for (let i = cs.c > 2 ? 2 : 0; i < cs.h * cs.w * cs.c; i += cs.c) x[i] = -Infinity;
  return x;
}

t.test('maxPool2dBackward against the float64 reference (PyTorch tie and NaN rules)', async (t) => {
  POOL_CASES.forEach((cs, ci) => {
    const x = poolInput(cs, 400 + ci);
    const g: ops.PoolGeometry = { kernel: [cs.k, cs.k], stride: [cs.s, cs.s], padding: [cs.pad, cs.pad] };
    const P = outSize(cs.h, cs.k, cs.s, cs.pad), Q = outSize(cs.w, cs.k, cs.s, cs.pad);
    // Distinct gradients (1 + i / len), so a gradient sent to the wrong element cannot hide.
    const dy = randomArray(cs.n * P * Q * cs.c, 500 + ci).map((v, i) => (v < 0 ? -1 : 1) * (1 + i / 4096));
    const ref = maxPoolBackwardRef(x, dy, cs.n, cs.h, cs.w, cs.c, cs.k, cs.s, cs.pad);
    const xt = T(x, [cs.n, cs.h, cs.w, cs.c]);
    const dx = maxPool2dBackward(T(dy, [cs.n, P, Q, cs.c]), xt, g);
    t.same(dx.shape, [cs.n, cs.h, cs.w, cs.c], `${cs.name}: dx has x's shape`);
    ok(t, check(read(dx), ref.dx, RTOL, 0, ref.mag), `${cs.name}: dx`, 'maxpool');
    ok(t, check(read(ops.maxPool2d(xt, g)), ref.y, 0, 0), `${cs.name}: the reference's winners are the forward's values`, 'maxpool');
    t.ok(bitsEqual(read(xt), x), `${cs.name}: x untouched`);
  });
  t.test('tie rule, spelled out: the first maximum in scan order wins; the last NaN wins', async (t) => {
    // One 3x3 window (1x3x3x1, 3x3/1 pad 0): maxima at (0, 2) and (1, 0); then NaNs at (0, 1) and (2, 2).
    const dy = T(new Float32Array([5]), [1, 1, 1, 1]);
    const g: ops.PoolGeometry = { kernel: [3, 3], stride: [1, 1], padding: [0, 0] };
    const tie = read(maxPool2dBackward(dy, T(new Float32Array([0, 1, 2, 2, 1, 0, -1, 0, 1]), [1, 3, 3, 1]), g));
    t.same(Array.from(tie), [0, 0, 5, 0, 0, 0, 0, 0, 0], 'ties: the first in row-major order');
    const nan = read(maxPool2dBackward(dy, T(new Float32Array([0, NaN, 2, 3, 1, 0, -1, 0, NaN]), [1, 3, 3, 1]), g));
    t.same(Array.from(nan), [0, 0, 0, 0, 0, 0, 0, 0, 5], 'NaNs: the last one (each NaN takes over)');
    const inf = read(maxPool2dBackward(dy, T(new Float32Array(9).fill(-Infinity), [1, 3, 3, 1]), g));
    t.same(Array.from(inf), [5, 0, 0, 0, 0, 0, 0, 0, 0], 'all -inf: the first element');
  });
});

t.test('globalAvgPoolBackward: dy / (H W), one float32 division', async (t) => {
  for (const [n, h, w, c] of [[2, 7, 7, 9], [3, 1, 1, 5], [1, 5, 3, 300], [4, 14, 14, 65]] as [number, number, number, number][]) {
    const dy = randomArray(n * c, n * 1000 + c, 3);
    const dx = globalAvgPoolBackward(T(dy, [n, c]), [n, h, w, c]);
    t.same(dx.shape, [n, h, w, c]);
    const out = read(dx);
    let bad = 0;
    for (let i = 0; i < out.length; i++) {
      const img = Math.floor(i / (h * w * c)), ch = i % c;
      // A float64 quotient rounded to float32 is the correctly rounded float32 quotient.
      if (out[i] !== Math.fround(dy[img * c + ch]! / (h * w))) bad++;
    }
    t.equal(bad, 0, `[${n}, ${h}, ${w}, ${c}]: every element is fround(dy / ${h * w})`);
  }
});

t.test('sumRows: float64 column sums', async (t) => {
  for (const [m, n] of [[1, 5], [7, 1], [300, 7], [256, 2048], [70_000, 3], [3, 301]]) {
    const x = randomArray(m * n, m + 7 * n, 2).map((v, i) => v + (i % n === 0 ? 1000 : 0));
    const out = read(sumRows(T(x, [m, n])));
    const ref = new Float64Array(n), mag = new Float64Array(n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { ref[j]! += x[i * n + j]!; mag[j]! += Math.abs(x[i * n + j]!); }
    ok(t, check(out, ref, RTOL, 0, mag), `[${m}, ${n}]`, 'sumRows');
    // Summed in float64 and rounded once: the result is within half an ulp (plus float64 noise) of the exact sum.
    let maxUlp = 0;
    for (let j = 0; j < n; j++) maxUlp = Math.max(maxUlp, Math.abs(out[j]! - ref[j]!) / ulp32(out[j]!));
    t.ok(maxUlp <= 0.5 + 1e-3, `[${m}, ${n}]: rounded once (worst ${maxUlp.toFixed(3)} ulp)`);
  }
  t.same(Array.from(read(sumRows(T(new Float32Array(0), [0, 4])))), [0, 0, 0, 0], 'no rows: zeros');
});

t.test('momentumUpdate: k * m + q * (1 - m), two float32 products and a sum', async (t) => {
  for (const [size, m] of [[1, 0.999], [17, 0.99], [100_003, 0.999], [64, 0], [64, 1], [33, 0.5]] as [number, number][]) {
    const k = randomArray(size, size + 1), q = randomArray(size, size + 2, 3);
    const out = read(momentumUpdate(T(k, [size]), T(q, [size]), m));
    const mk = Math.fround(m), mq = Math.fround(1 - m);
    let bad = 0;
    for (let i = 0; i < size; i++) if (out[i] !== Math.fround(Math.fround(k[i]! * mk) + Math.fround(q[i]! * mq))) bad++;
    t.equal(bad, 0, `${size} elements, m = ${m}: bit for bit`);
  }
});

t.test(`PyTorch ${FIX.torch} autograd (layers.json)`, async (t) => {
  for (const f of FIX.bn) {
    const C = f.shape[f.shape.length - 1]!, rows = prod(f.shape) / C;
    const x = F(f.x), dy = F(f.dy), w = F(f.weight), b = F(f.bias);
    const r = batchNormTrain(T(x, f.shape), {
      weight: T(w, [C]), bias: T(b, [C]), runningMean: T(F(f.runningMean), [C]), runningVar: T(F(f.runningVar), [C]),
      eps: f.eps, momentum: f.momentum,
    }, { relu: f.relu });
    const st = bnStatsRef(x, rows, C, f.eps);
    const fy = bnForwardRef(x, rows, C, st.mean, st.invstd, w, b, false);
    const yMag = fy.mag.map((m, i) => m + Math.abs(st.mean[i % C]! * st.invstd[i % C]! * w[i % C]!) * 0.1);
    ok(t, check(read(r.y), F(f.y), RTOL, 0, yMag), `bn ${f.name}: y`, 'torch bn');
    const rm0 = F(f.runningMean);
    ok(t, check(read(r.runningMean), F(f.newRunningMean), RTOL, 0,
      Float64Array.from(rm0, (v, c) => 0.9 * Math.abs(v) + 0.1 * st.absMean[c]!)), `bn ${f.name}: running_mean`, 'torch bn');
    ok(t, check(read(r.runningVar), F(f.newRunningVar), RTOL, 0), `bn ${f.name}: running_var`, 'torch bn');
    // Backward: through the ReLU (on our y) when the module has one, then batch norm.
    const dyt = T(dy, f.shape);
    const g = f.relu ? reluBackward(dyt, r.y) : dyt;
    const grads = batchNormBackward(g, T(x, f.shape), T(w, [C]), r.mean, r.invstd);
    const gArr = read(g);
    const ref = bnBackwardRef(gArr, x, rows, C, w, st.mean, st.invstd);
    ok(t, check(read(grads.dx), F(f.dx), RTOL, 0, ref.dxMag), `bn ${f.name}: dx`, 'torch bn');
    ok(t, check(read(grads.dweight), F(f.dweight), RTOL, 0, ref.dwMag), `bn ${f.name}: dweight`, 'torch bn');
    ok(t, check(read(grads.dbias), F(f.dbias), RTOL, 0, ref.dbMag), `bn ${f.name}: dbias`, 'torch bn');
  }
  for (const f of FIX.maxpool) {
    const [n, h, w, c] = f.shape as [number, number, number, number];
    const g: ops.PoolGeometry = { kernel: [f.kernel, f.kernel], stride: [f.stride, f.stride], padding: [f.padding, f.padding] };
    const P = outSize(h, f.kernel, f.stride, f.padding), Q = outSize(w, f.kernel, f.stride, f.padding);
    const x = T(F(f.x), f.shape);
    t.ok(bitsEqual(read(ops.maxPool2d(x, g)), F(f.y)), `maxpool ${f.name}: forward, bit for bit`);
    const dx = read(maxPool2dBackward(T(F(f.dy), [n, P, Q, c]), x, g));
    t.ok(bitsEqual(dx, F(f.dx)), `maxpool ${f.name}: dx, bit for bit (same winners, same order of the sums)`);
  }
  for (const f of FIX.avgpool) {
    const [n, , , c] = f.shape as [number, number, number, number];
    const dx = read(globalAvgPoolBackward(T(F(f.dy), [n, c]), f.shape as [number, number, number, number]));
    t.ok(bitsEqual(dx, F(f.dx)), `adaptive_avg_pool2d ${f.name}: dx, bit for bit`);
  }
  for (const f of FIX.momentum) {
    const k = F(f.k);
    const out = read(momentumUpdate(T(k, [k.length]), T(F(f.q), [k.length]), f.m));
    t.ok(bitsEqual(out, F(f.out)), `momentum update ${f.name}: bit for bit`);
  }
});

t.test('results do not depend on the thread count', async (t) => {
  const threads = native().info().threads;
  const cs = BN_CASES[7]!;  // two reduction blocks
  const d = bnInputs(cs, 900);
  const pool = POOL_CASES[7]!;
  const px = poolInput(pool, 901);
  const P = outSize(pool.h, pool.k, pool.s, pool.pad), Q = outSize(pool.w, pool.k, pool.s, pool.pad);
  const pdy = randomArray(pool.n * P * Q * pool.c, 902);
  const pg: ops.PoolGeometry = { kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
  const big = randomArray(300_000 * 3, 903);
  const run = () => {
    const r = batchNormTrain(T(d.x, cs.shape), { weight: T(d.weight, [d.C]), bias: T(d.bias, [d.C]),
      runningMean: T(d.rm, [d.C]), runningVar: T(d.rv, [d.C]), eps: 1e-5, momentum: 0.1 }, { relu: true });
    const b = batchNormBackward(T(d.dy, cs.shape), T(d.x, cs.shape), T(d.weight, [d.C]), r.mean, r.invstd);
    return [r.y, r.mean, r.invstd, r.runningMean, r.runningVar, b.dx, b.dweight, b.dbias,
      maxPool2dBackward(T(pdy, [pool.n, P, Q, pool.c]), T(px, [pool.n, pool.h, pool.w, pool.c]), pg),
      sumRows(T(big, [300_000, 3])),
      globalAvgPoolBackward(T(pdy.subarray(0, 2 * 64), [2, 64]), [2, 56, 56, 64]),
      reluBackward(T(big, [big.length]), T(big.map((v) => v - 0.1), [big.length])),
      momentumUpdate(T(big, [big.length]), T(big.map((v) => v * 0.5), [big.length]), 0.999),
    ].map(read);
  };
  try {
    ops.setNumThreads(1);
    const one = run();
    ops.setNumThreads(2);
    const two = run();
    const names = ['y', 'mean', 'invstd', 'runningMean', 'runningVar', 'dx', 'dweight', 'dbias', 'maxpool dx', 'sumRows',
      'avgpool dx', 'relu dx', 'momentum'];
    one.forEach((a, i) => t.ok(bitsEqual(a, two[i]!), `${names[i]}: 1 thread and 2 threads give the same bits`));
  } finally {
    ops.setNumThreads(threads);
  }
});

t.test('errors', async (t) => {
  const C = 4;
  const x = T(randomArray(2 * 3 * C, 1), [2, 3, C]);
  const v = (n = C) => T(randomArray(n, 2), [n]);
  const p = { weight: v(), bias: v(), runningMean: v(), runningVar: v(), eps: 1e-5, momentum: 0.1 };
  t.throws(() => batchNormTrain(T(randomArray(4, 1), [4]), { ...p }), { code: 'ERR_SHAPE_MISMATCH' }, 'bn: x of rank 1');
  t.throws(() => batchNormTrain(x, { ...p, weight: v(5) }), { code: 'ERR_SHAPE_MISMATCH', message: /weight.*\[4\].*\[5\]/ },
    'bn: weight of the wrong size, named with both shapes');
  t.throws(() => batchNormTrain(x, { ...p, runningVar: T(randomArray(8, 1), [2, 4]) }), { code: 'ERR_SHAPE_MISMATCH' }, 'bn: runningVar [2, 4]');
  t.throws(() => batchNormTrain(T(randomArray(C, 1), [1, 1, 1, C]), p), { code: 'ERR_SHAPE_MISMATCH', message: /more than 1 value per channel/ },
    'bn: one value per channel');
  t.throws(() => batchNormTrain(x, { ...p, eps: -1 }), { code: 'ERR_INVALID_ARGUMENT' }, 'bn: eps < 0');
  t.throws(() => batchNormTrain(x, { ...p, eps: NaN }), { code: 'ERR_INVALID_ARGUMENT' }, 'bn: eps NaN');
  t.throws(() => batchNormTrain(x, { ...p, momentum: 1.5 }), { code: 'ERR_INVALID_ARGUMENT' }, 'bn: momentum > 1');
  t.throws(() => batchNormTrain(x, { ...p, momentum: -0.1 }), { code: 'ERR_INVALID_ARGUMENT' }, 'bn: momentum < 0');
  t.throws(() => batchNormTrain(x, { ...p, momentum: undefined as unknown as number }), { code: 'ERR_INVALID_ARGUMENT' }, 'bn: momentum missing');
  t.throws(() => batchNormTrain(T(new Float64Array(2 * C), [2, C]), p), { code: 'ERR_DTYPE_MISMATCH' }, 'bn: float64 x');
  t.throws(() => batchNormTrain(x, { ...p, bias: T(new Float64Array(C), [C]) }), { code: 'ERR_DTYPE_MISMATCH' }, 'bn: float64 bias');
  const gone = v();
  gone.dispose();
  t.throws(() => batchNormTrain(x, { ...p, weight: gone }), { code: 'ERR_TENSOR_DISPOSED' }, 'bn: a disposed weight');

  t.throws(() => batchNormBackward(T(randomArray(2 * C, 1), [2, C]), x, v(), v(), v()), { code: 'ERR_SHAPE_MISMATCH', message: /dy/ },
    'bn backward: dy unlike x');
  t.throws(() => batchNormBackward(x, x, v(), v(), v(3)), { code: 'ERR_SHAPE_MISMATCH', message: /invstd/ }, 'bn backward: invstd [3]');
  t.throws(() => batchNormBackward(x, x, v(), T(new Float64Array(C), [C]), v()), { code: 'ERR_DTYPE_MISMATCH' }, 'bn backward: float64 mean');

  t.throws(() => reluBackward(T(randomArray(6, 1), [6]), T(randomArray(6, 1), [2, 3])), { code: 'ERR_SHAPE_MISMATCH' }, 'relu: shapes differ');
  t.throws(() => reluBackward(T(new Float64Array(6), [6]), T(randomArray(6, 1), [6])), { code: 'ERR_DTYPE_MISMATCH' }, 'relu: float64 dy');

  const px = T(randomArray(2 * 5 * 5 * 3, 3), [2, 5, 5, 3]);
  const g: ops.PoolGeometry = { kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
  t.throws(() => maxPool2dBackward(T(randomArray(2 * 2 * 2 * 3, 1), [2, 2, 2, 3]), px, g), { code: 'ERR_SHAPE_MISMATCH', message: /\[2, 3, 3, 3\]/ },
    'max pool: dy not [N, P, Q, C]');
  t.throws(() => maxPool2dBackward(T(randomArray(18, 1), [2, 3, 3]), px, g), { code: 'ERR_SHAPE_MISMATCH' }, 'max pool: dy of rank 3');
  t.throws(() => maxPool2dBackward(T(randomArray(54, 1), [2, 3, 3, 3]), px, { ...g, padding: [2, 2] }), { code: 'ERR_INVALID_ARGUMENT' },
    'max pool: padding over half the kernel');
  t.throws(() => maxPool2dBackward(T(randomArray(54, 1), [2, 3, 3, 3]), px, { ...g, stride: [0, 2] }), { code: 'ERR_INVALID_ARGUMENT' },
    'max pool: stride 0');

  t.throws(() => globalAvgPoolBackward(T(randomArray(6, 1), [2, 3]), [2, 4, 4, 4]), { code: 'ERR_SHAPE_MISMATCH' }, 'avg pool: dy [2, 3] for C = 4');
  t.throws(() => globalAvgPoolBackward(T(randomArray(6, 1), [2, 3]), [2, 4, 3] as unknown as [number, number, number, number]),
    { code: 'ERR_INVALID_ARGUMENT' }, 'avg pool: inputShape of 3 dims');
  t.throws(() => globalAvgPoolBackward(T(randomArray(6, 1), [2, 3]), [2, 0, 4, 3]), { code: 'ERR_INVALID_ARGUMENT' }, 'avg pool: H = 0');
  t.throws(() => globalAvgPoolBackward(T(randomArray(6, 1), [6]), [2, 4, 4, 3]), { code: 'ERR_SHAPE_MISMATCH' }, 'avg pool: dy of rank 1');

  t.throws(() => sumRows(T(randomArray(8, 1), [2, 2, 2])), { code: 'ERR_SHAPE_MISMATCH' }, 'sumRows: rank 3');
  t.throws(() => sumRows(T(new Float64Array(4), [2, 2])), { code: 'ERR_DTYPE_MISMATCH' }, 'sumRows: float64');

  t.throws(() => momentumUpdate(v(), v(), 1.5), { code: 'ERR_INVALID_ARGUMENT' }, 'momentum update: m > 1');
  t.throws(() => momentumUpdate(v(), v(), NaN), { code: 'ERR_INVALID_ARGUMENT' }, 'momentum update: m NaN');
  t.throws(() => momentumUpdate(v(), v(5), 0.9), { code: 'ERR_SHAPE_MISMATCH', message: /q/ }, 'momentum update: shapes differ');

  // The raw bindings check their own arguments too (the wrappers pass them through).
  const raw = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
  t.throws(() => raw.batchNormTrain!(x.handle, p.weight.handle, p.bias.handle, p.runningMean.handle, p.runningVar.handle),
    { code: 'ERR_INVALID_ARGUMENT' }, 'raw batchNormTrain without options');
  t.throws(() => raw.globalAvgPoolBackward!(T(randomArray(6, 1), [2, 3]).handle, 'x'), { code: 'ERR_INVALID_ARGUMENT' }, 'raw globalAvgPoolBackward: a shape that is not an array');
  t.throws(() => raw.reluBackward!({}, v().handle), { code: 'ERR_INVALID_ARGUMENT' }, 'raw reluBackward: not a tensor');
});

// The ops on a device against these CPU ops: test/backward/layers-device.test.ts.
t.test('CPU and CUDA tensors mixed in one call: ERR_DEVICE_UNAVAILABLE', { skip: cudaInfo().devices.some((d) => d.usable) ? false : 'no CUDA device' }, async (t) => {
  const x = T(randomArray(8, 1), [2, 4]);
  const xd = x.to('cuda');
  const v = T(randomArray(4, 2), [4]);
  t.throws(() => batchNormTrain(xd, { weight: v, bias: v, runningMean: v, runningVar: v, eps: 1e-5, momentum: 0.1 }),
    { code: 'ERR_DEVICE_UNAVAILABLE', message: /weight/ }, 'x on the device, weight on the CPU');
  t.throws(() => batchNormBackward(x, x, v.to('cuda'), v, v), { code: 'ERR_DEVICE_UNAVAILABLE', message: /weight/ }, 'any tensor argument');
  t.throws(() => reluBackward(xd, x), { code: 'ERR_DEVICE_UNAVAILABLE' });
  t.throws(() => reluBackward(x, xd), { code: 'ERR_DEVICE_UNAVAILABLE' });
  t.throws(() => momentumUpdate(xd, x, 0.9), { code: 'ERR_DEVICE_UNAVAILABLE' });
});

t.test('worst errors seen (|err| / allowed)', async (t) => {
  for (const [k, v] of worst) t.comment(`${k}: ${v.toExponential(2)}`);
  t.pass(`${worst.size} families`);
});
