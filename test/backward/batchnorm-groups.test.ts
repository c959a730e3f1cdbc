// Split batch norm (the `groups` option of batchNormTrain / batchNormTrainAddRelu, and [G, C] saved
// statistics in batchNormBackward / batchNormReluBackward): G groups of N / G consecutive samples, each
// normalised with its own statistics, as DistributedDataParallel's per-GPU BatchNorm2d.
//
//   * against PyTorch 1.13 (test/fixtures/backward/batchnorm_groups.json, made by
//     make_batchnorm_groups_fixtures.py: torch.cat of F.batch_norm per group, the running buffers updated by
//     group 0 only, autograd of sum(out * dy)), with layers.test.ts's tolerance: |out - ref| <= 1e-5 *
//     mag, mag the element's magnitude scale (the same expression over absolute values);
//   * bit for bit against calls on each group's slice alone (y, mean and invstd rows, running
//     statistics = group 0's, dx); dweight and dbias rounded once from float64 (within half an ulp of
//     the float64 reference); the same bits with 1 and 2 threads; groups = 1 (or absent) unchanged;
//   * errors.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  batchNormBackward, batchNormReluBackward, batchNormTrain, batchNormTrainAddRelu, BatchNormTrainParams,
  BatchNormTrainResult,
} from '../../src/backward/layers';
import { native } from '../../src/native';
import * as ops from '../../src/ops';
import { tensor, Tensor } from '../../src/tensor';
import { check, CheckResult, randomArray } from '../helpers/reference';
import { bitsEqual, firstDiff } from '../helpers/bits';
import { BnStats, bnBackwardRef, bnStatsRef } from '../helpers/batchnorm-reference';

const RTOL = 1e-5;

const T = (a: Float32Array | Float64Array, shape: readonly number[]): Tensor => tensor(a, shape);
const read = (x: Tensor): Float32Array => x.toFloat32Array();
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
/** The spacing of float32 values at v's magnitude. */
const ulp32 = (v: number): number => v === 0 ? 2 ** -149 : 2 ** Math.max(Math.floor(Math.log2(Math.abs(v))) - 23, -149);
/** Elements [g * len / G, (g + 1) * len / G) of a (group g of a [G, ...] or [N, ...] array), copied. */
const part = (a: Float32Array, g: number, G: number): Float32Array => a.slice((g * a.length) / G, ((g + 1) * a.length) / G);

/** Asserts a check and records the worst ratio |err| / allowed per family. */
const worst = new Map<string, number>();
function ok(t: Test, r: CheckResult, label: string, family: string): void {
  worst.set(family, Math.max(worst.get(family) ?? 0, r.worst));
  t.ok(r.ok, `${label}${r.ok ? '' : `: ${r.firstBad} (worst ${r.worst.toExponential(2)})`}`);
}

function same(t: Test, a: Float32Array, b: Float32Array, what: string): void {
  const eq = bitsEqual(a, b);
  t.ok(eq, `${what}${eq ? '' : `: first difference ${firstDiff(a, b)}`}`);
}

// ---------------------------------------------------------------- float64 references (per group)
// The plain batch-norm references (helpers/batchnorm-reference.ts), applied to one group's rows.

/**
 * Split batch-norm backward in float64: each group's dx from its own (float32) mean and invstd rows;
 * dweight and dbias summed over the groups.
 */
function groupedBackwardRef(dy: Float32Array, x: Float32Array, shape: readonly number[], G: number, w: Float32Array,
  mean: Float32Array, invstd: Float32Array) {
  const C = shape[shape.length - 1]!, rows = prod(shape) / C, gr = rows / G;
  const dx = new Float64Array(x.length), dxMag = new Float64Array(x.length);
  const dweight = new Float64Array(C), dwMag = new Float64Array(C), dbias = new Float64Array(C), dbMag = new Float64Array(C);
  for (let g = 0; g < G; g++) {
    const r = bnBackwardRef(part(dy, g, G), part(x, g, G), gr, C, w, part(mean, g, G), part(invstd, g, G));
    dx.set(r.dx, g * gr * C); dxMag.set(r.dxMag, g * gr * C);
    for (let c = 0; c < C; c++) {
      dweight[c]! += r.dweight[c]!; dwMag[c]! += r.dwMag[c]!; dbias[c]! += r.dbias[c]!; dbMag[c]! += r.dbMag[c]!;
    }
  }
  return { dx, dxMag, dweight, dwMag, dbias, dbMag };
}

// ---------------------------------------------------------------- inputs

interface Inputs { shape: number[]; C: number; rows: number; x: Float32Array; dy: Float32Array; res: Float32Array;
  weight: Float32Array; bias: Float32Array; rm: Float32Array; rv: Float32Array }

function inputs(shape: number[], seed: number): Inputs {
  const C = shape[shape.length - 1]!, rows = prod(shape) / C;
  // Each sample gets its own offset and scale, so the groups' statistics differ clearly.
  const per = (rows * C) / shape[0]!;
  return {
    shape, C, rows,
    x: randomArray(rows * C, seed, 1.5).map((v, i) => v * (1 + 0.25 * Math.floor(i / per)) + 0.3 * ((i % C) % 5) + 0.2 * Math.floor(i / per)),
    dy: randomArray(rows * C, seed + 1),
    res: randomArray(rows * C, seed + 2, 0.7),
    weight: randomArray(C, seed + 3).map((v) => 1 + 0.4 * v),
    bias: randomArray(C, seed + 4, 0.3),
    rm: randomArray(C, seed + 5, 0.1),
    rv: randomArray(C, seed + 6).map((v) => 1 + 0.5 * v),
  };
}

function params(d: { C: number; weight: Float32Array; bias: Float32Array; rm: Float32Array; rv: Float32Array }):
  BatchNormTrainParams {
  return { weight: T(d.weight, [d.C]), bias: T(d.bias, [d.C]), runningMean: T(d.rm, [d.C]), runningVar: T(d.rv, [d.C]),
    eps: 1e-5, momentum: 0.1 };
}

/** The shape of group g's slice: N / G samples. */
const sliceShape = (shape: readonly number[], G: number): number[] => [shape[0]! / G, ...shape.slice(1)];

// ---------------------------------------------------------------- PyTorch fixture

type Num = number | string;
const num = (v: Num): number => typeof v === 'number' ? v : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity;
const F = (a: Num[]): Float32Array => Float32Array.from(a, num);

interface GroupFixture {
  name: string; shape: number[]; groups: number; mode: 'plain' | 'relu' | 'residual'; momentum: number; eps: number;
  x: Num[]; dy: Num[]; residual?: Num[]; weight: Num[]; bias: Num[]; runningMean: Num[]; runningVar: Num[];
  y: Num[]; mean: Num[]; invstd: Num[]; newRunningMean: Num[]; newRunningVar: Num[]; dx: Num[]; dweight: Num[]; dbias: Num[];
}
const FIX = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'backward', 'batchnorm_groups.json'), 'utf8')) as {
  torch: string; cases: GroupFixture[];
};

t.test(`PyTorch ${FIX.torch}: torch.cat of per-group F.batch_norm, autograd (batchnorm_groups.json)`, async (t) => {
  for (const f of FIX.cases) {
    const C = f.shape[f.shape.length - 1]!, rows = prod(f.shape) / C, G = f.groups, gr = rows / G;
    const x = F(f.x), dy = F(f.dy), w = F(f.weight), b = F(f.bias), rm0 = F(f.runningMean);
    const res = f.residual ? F(f.residual) : undefined;
    const xt = T(x, f.shape);
    const p: BatchNormTrainParams = { weight: T(w, [C]), bias: T(b, [C]), runningMean: T(rm0, [C]),
      runningVar: T(F(f.runningVar), [C]), eps: f.eps, momentum: f.momentum };
    const r = f.mode === 'residual' ? batchNormTrainAddRelu(xt, p, T(res!, f.shape), { groups: G })
      : batchNormTrain(xt, p, { relu: f.mode === 'relu', groups: G });
    t.same(r.mean.shape, [G, C], `${f.name}: saved mean is [G, C]`);
    t.same(r.invstd.shape, [G, C], `${f.name}: saved invstd is [G, C]`);
    // Magnitude scales per group, from float64 statistics of the group's rows.
    const yMag = new Float64Array(x.length), meanMag = new Float64Array(G * C);
    let st0: BnStats | undefined;
    for (let g = 0; g < G; g++) {
      const st = bnStatsRef(part(x, g, G), gr, C, f.eps);
      st0 ??= st;
      meanMag.set(st.absMean, g * C);
      for (let i = g * gr * C; i < (g + 1) * gr * C; i++) {
        const c = i % C, a = st.invstd[c]! * w[c]!;
        yMag[i] = Math.abs(x[i]! - st.mean[c]!) * Math.abs(a) + Math.abs(b[c]!) + Math.abs(st.mean[c]! * a) * 0.1 +
          (res ? Math.abs(res[i]!) : 0);
      }
    }
    ok(t, check(read(r.y), F(f.y), RTOL, 0, yMag), `${f.name}: y`, 'y');
    ok(t, check(read(r.mean), F(f.mean), RTOL, 0, meanMag), `${f.name}: saved mean (native_batch_norm per group)`, 'mean/invstd');
    ok(t, check(read(r.invstd), F(f.invstd), RTOL, 0), `${f.name}: saved invstd (native_batch_norm per group)`, 'mean/invstd');
    ok(t, check(read(r.runningMean), F(f.newRunningMean), RTOL, 0,
      Float64Array.from(rm0, (v, c) => 0.9 * Math.abs(v) + 0.1 * st0!.absMean[c]!)), `${f.name}: running_mean (group 0)`, 'running');
    ok(t, check(read(r.runningVar), F(f.newRunningVar), RTOL, 0), `${f.name}: running_var (group 0, n = rows / G)`, 'running');
    // Backward from the saved [G, C] statistics; through the ReLU (on our y) when there is one.
    const dyt = T(dy, f.shape);
    const grads = f.mode === 'plain' ? batchNormBackward(dyt, xt, p.weight, r.mean, r.invstd)
      : batchNormReluBackward(dyt, r.y, xt, p.weight, r.mean, r.invstd);
    const y = read(r.y);
    const masked = f.mode === 'plain' ? dy : dy.map((v, i) => (y[i]! <= 0 ? 0 : v));
    const ref = groupedBackwardRef(masked, x, f.shape, G, w, read(r.mean), read(r.invstd));
    ok(t, check(read(grads.dx), F(f.dx), RTOL, 0, ref.dxMag), `${f.name}: dx`, 'dx');
    ok(t, check(read(grads.dweight), F(f.dweight), RTOL, 0, ref.dwMag), `${f.name}: dweight (summed over groups)`, 'dweight/dbias');
    ok(t, check(read(grads.dbias), F(f.dbias), RTOL, 0, ref.dbMag), `${f.name}: dbias (summed over groups)`, 'dweight/dbias');
  }
});

// ---------------------------------------------------------------- the same bits as per-slice calls

interface Case { name: string; shape: number[]; G: number }
const CASES: Case[] = [
  { name: '[4, 5, 3, 6], G = 2', shape: [4, 5, 3, 6], G: 2 },
  { name: '[6, 2, 2, 8], G = 3', shape: [6, 2, 2, 8], G: 3 },
  { name: '[6, 2, 2, 8], G = 6 (one sample per group)', shape: [6, 2, 2, 8], G: 6 },
  { name: '[8, 4, 4, 37] odd C, G = 4', shape: [8, 4, 4, 37], G: 4 },
  { name: '[6, 33] (2-D), G = 3 (2 rows per group)', shape: [6, 33], G: 3 },
  { name: '[4, 3, 3, 301] (C = 301: vector tails), G = 2', shape: [4, 3, 3, 301], G: 2 },
  { name: '[8, 48, 48, 10], G = 2 (two reduction blocks per group)', shape: [8, 48, 48, 10], G: 2 },
  { name: '[6, 40, 40, 10], G = 3 (group boundaries inside parallel chunks)', shape: [6, 40, 40, 10], G: 3 },
];

type Mode = 'plain' | 'relu' | 'residual';
function forward(d: Inputs, shape: number[], mode: Mode, x: Float32Array, res: Float32Array, groups?: number):
  BatchNormTrainResult {
  const p = params(d);
  const opts = groups === undefined ? {} : { groups };
  return mode === 'residual' ? batchNormTrainAddRelu(T(x, shape), p, T(res, shape), opts)
    : batchNormTrain(T(x, shape), p, { relu: mode === 'relu', ...opts });
}

function backward(d: Inputs, shape: number[], mode: Mode, x: Float32Array, dy: Float32Array, fwd: BatchNormTrainResult) {
  const w = T(d.weight, [d.C]);
  return mode === 'plain' ? batchNormBackward(T(dy, shape), T(x, shape), w, fwd.mean, fwd.invstd)
    : batchNormReluBackward(T(dy, shape), fwd.y, T(x, shape), w, fwd.mean, fwd.invstd);
}

t.test('each group is the bits of a call on its slice alone', async (t) => {
  CASES.forEach((cs, ci) => {
    const d = inputs(cs.shape, 1000 + 10 * ci), G = cs.G, ss = sliceShape(cs.shape, G);
    for (const mode of ['plain', 'relu', 'residual'] as const) {
      const name = `${cs.name}, ${mode}`;
      const r = forward(d, cs.shape, mode, d.x, d.res, G);
      t.same(r.mean.shape, [G, d.C], `${name}: mean is [G, C]`);
      t.same(r.invstd.shape, [G, d.C], `${name}: invstd is [G, C]`);
      t.same([r.runningMean.shape, r.runningVar.shape], [[d.C], [d.C]], `${name}: running statistics are [C]`);
      const g = backward(d, cs.shape, mode, d.x, d.dy, r);
      const y = read(r.y), mean = read(r.mean), invstd = read(r.invstd), dx = read(g.dx);
      let yOk = true, mOk = true, iOk = true, dxOk = true;
      const slices = [];
      for (let k = 0; k < G; k++) {
        const s = forward(d, ss, mode, part(d.x, k, G), part(d.res, k, G));
        const sg = backward(d, ss, mode, part(d.x, k, G), part(d.dy, k, G), s);
        yOk &&= bitsEqual(part(y, k, G), read(s.y));
        mOk &&= bitsEqual(part(mean, k, G), read(s.mean));
        iOk &&= bitsEqual(part(invstd, k, G), read(s.invstd));
        dxOk &&= bitsEqual(part(dx, k, G), read(sg.dx));
        slices.push({ s, sg });
      }
      t.ok(yOk, `${name}: y`);
      t.ok(mOk, `${name}: mean row g`);
      t.ok(iOk, `${name}: invstd row g`);
      t.ok(dxOk, `${name}: dx`);
      same(t, read(r.runningMean), read(slices[0]!.s.runningMean), `${name}: running mean is group 0's`);
      same(t, read(r.runningVar), read(slices[0]!.s.runningVar), `${name}: running var is group 0's`);
      // A wrong group in the running statistics would differ: the last group's are not these.
      if (G > 1) t.notOk(bitsEqual(read(r.runningVar), read(slices[G - 1]!.s.runningVar)), `${name}: (not the last group's)`);
      // dweight and dbias: the groups' float64 sums added and rounded once, so within half an ulp of
      // the float64 sum of the groups' terms (from the same float32 mean and invstd rows).
      const masked = mode === 'plain' ? d.dy : d.dy.map((v, i) => (y[i]! <= 0 ? 0 : v));
      const ref = groupedBackwardRef(masked, d.x, cs.shape, G, d.weight, mean, invstd);
      for (const [k, out, exact] of [['dweight', read(g.dweight), ref.dweight], ['dbias', read(g.dbias), ref.dbias]] as const) {
        let maxUlp = 0;
        for (let c = 0; c < d.C; c++) maxUlp = Math.max(maxUlp, Math.abs(out[c]! - exact[c]!) / ulp32(out[c]!));
        t.ok(maxUlp <= 0.5 + 1e-3, `${name}: ${k} is the sum over groups, rounded once (worst ${maxUlp.toFixed(3)} ulp)`);
      }
      ok(t, check(read(g.dx), ref.dx, RTOL, 0, ref.dxMag), `${name}: dx against float64`, 'slices: dx vs float64');
      for (const v of [r.y, r.mean, r.invstd, r.runningMean, r.runningVar, g.dx, g.dweight, g.dbias]) v.dispose();
    }
  });
});

t.test('groups = 1 (or absent) is the ordinary batch norm, bit for bit', async (t) => {
  for (const [ci, cs] of CASES.entries()) {
    const d = inputs(cs.shape, 2000 + 10 * ci);
    for (const mode of ['plain', 'relu', 'residual'] as const) {
      const a = forward(d, cs.shape, mode, d.x, d.res), b = forward(d, cs.shape, mode, d.x, d.res, 1);
      t.same([a.mean.shape, a.invstd.shape, b.mean.shape, b.invstd.shape], [[d.C], [d.C], [d.C], [d.C]],
        `${cs.name}, ${mode}: saved statistics stay [C]`);
      const ga = backward(d, cs.shape, mode, d.x, d.dy, a), gb = backward(d, cs.shape, mode, d.x, d.dy, b);
      // A [1, C] mean / invstd is one group too.
      const g1 = mode === 'plain' ? batchNormBackward(T(d.dy, cs.shape), T(d.x, cs.shape), T(d.weight, [d.C]),
        T(read(a.mean), [1, d.C]), T(read(a.invstd), [1, d.C])) : undefined;
      for (const k of ['y', 'mean', 'invstd', 'runningMean', 'runningVar'] as const) {
        same(t, read(a[k]), read(b[k]), `${cs.name}, ${mode}: ${k}`);
      }
      for (const k of ['dx', 'dweight', 'dbias'] as const) {
        same(t, read(ga[k]), read(gb[k]), `${cs.name}, ${mode}: ${k}`);
        if (g1) same(t, read(ga[k]), read(g1[k]), `${cs.name}, ${mode}: ${k} from [1, C] statistics`);
      }
    }
  }
  // groups > 1 really is different from one group (the per-sample offsets of the inputs make sure).
  const d = inputs([4, 5, 3, 6], 77);
  t.notOk(bitsEqual(read(forward(d, d.shape, 'plain', d.x, d.res, 2).y), read(forward(d, d.shape, 'plain', d.x, d.res).y)),
    'groups 2 gives another y than groups 1');
});

t.test('1 thread and 2 threads give the same bits', async (t) => {
  const run = () => {
    const out: Float32Array[] = [];
    for (const cs of [CASES[6]!, CASES[7]!, CASES[3]!]) {
      const d = inputs(cs.shape, 3000 + cs.shape[0]!);
      for (const mode of ['relu', 'residual', 'plain'] as const) {
        const r = forward(d, cs.shape, mode, d.x, d.res, cs.G);
        const g = backward(d, cs.shape, mode, d.x, d.dy, r);
        out.push(...[r.y, r.mean, r.invstd, r.runningMean, r.runningVar, g.dx, g.dweight, g.dbias].map(read));
      }
    }
    return out;
  };
  const before = native().info().threads;
  let one: Float32Array[], two: Float32Array[];
  try {
    ops.setNumThreads(1);
    one = run();
    ops.setNumThreads(2);
    two = run();
  } finally {
    ops.setNumThreads(before);
  }
  const names = ['y', 'mean', 'invstd', 'runningMean', 'runningVar', 'dx', 'dweight', 'dbias'];
  let bad = 0;
  one.forEach((a, i) => { if (!bitsEqual(a, two[i]!)) { bad++; t.fail(`output ${i} (${names[i % 8]}) differs: ${firstDiff(a, two[i]!)}`); } });
  t.equal(bad, 0, `${one.length} outputs (3 shapes x 3 modes x 8): the same bits`);
});

t.test('errors', async (t) => {
  const C = 4;
  const d = inputs([4, 3, C], 5);
  const x = T(d.x, d.shape), p = params(d), res = T(d.res, d.shape);
  for (const [groups, what] of [[0, '0'], [1.5, '1.5'], [-2, '-2'], [NaN, 'NaN'], [Infinity, 'Infinity'], [2 ** 60, '2^60']] as [number, string][]) {
    t.throws(() => batchNormTrain(x, p, { groups }), { code: 'ERR_INVALID_ARGUMENT', message: /groups must be an integer >= 1/ },
      `groups ${what}`);
  }
  t.throws(() => batchNormTrain(x, p, { groups: '2' as unknown as number }), { code: 'ERR_INVALID_ARGUMENT', message: /groups/ },
    'groups as a string');
  t.throws(() => batchNormTrainAddRelu(x, p, res, { groups: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /groups/ },
    'batchNormTrainAddRelu: groups 0');
  t.throws(() => batchNormTrain(x, p, { groups: 3 }), { code: 'ERR_INVALID_ARGUMENT', message: /groups = 3 does not divide the batch size N = 4/ },
    'N = 4 not divisible by 3 (though rows = 12 is)');
  t.throws(() => batchNormTrainAddRelu(x, p, res, { groups: 3 }), { code: 'ERR_INVALID_ARGUMENT', message: /groups = 3 does not divide/ },
    'batchNormTrainAddRelu: N not divisible');
  t.throws(() => batchNormTrain(x, p, { groups: 8 }), { code: 'ERR_INVALID_ARGUMENT', message: /groups = 8/ }, 'groups > N');
  const x2 = T(randomArray(4 * C, 6), [4, C]);
  t.throws(() => batchNormTrain(x2, p, { groups: 4 }),
    { code: 'ERR_INVALID_ARGUMENT', message: /groups = 4 leaves 1 value per channel in each group/ }, '1 row per group ([4, C], G = 4)');
  t.throws(() => batchNormTrain(T(randomArray(2 * C, 6), [2, 1, 1, C]), p, { groups: 2 }),
    { code: 'ERR_INVALID_ARGUMENT', message: /groups = 2 leaves 1 value/ }, '1 row per group ([2, 1, 1, C], G = 2)');
  t.doesNotThrow(() => batchNormTrain(x2, p, { groups: 2 }), '2 rows per group is enough');

  // Backward: G from mean's shape.
  const fwd = batchNormTrain(x, p, { groups: 2 });
  const w = p.weight, dy = T(d.dy, d.shape);
  const m = (shape: number[]) => T(randomArray(prod(shape), 9), shape);
  t.throws(() => batchNormBackward(dy, x, w, m([3, C]), m([3, C])),
    { code: 'ERR_SHAPE_MISMATCH', message: /mean: \[3, 4\] holds 3 groups, which do not divide the batch size N = 4/ }, 'mean [3, C] for N = 4');
  t.throws(() => batchNormReluBackward(dy, fwd.y, x, w, m([3, C]), m([3, C])), { code: 'ERR_SHAPE_MISMATCH', message: /mean/ },
    'batchNormReluBackward: mean [3, C] for N = 4');
  t.throws(() => batchNormBackward(dy, x, w, fwd.mean, m([C])), { code: 'ERR_SHAPE_MISMATCH', message: /invstd: expected shape \[2, 4\]/ },
    'invstd [C] with mean [2, C]');
  t.throws(() => batchNormBackward(dy, x, w, m([C]), fwd.invstd), { code: 'ERR_SHAPE_MISMATCH', message: /invstd: expected shape \[4\]/ },
    'invstd [2, C] with mean [C]');
  t.throws(() => batchNormBackward(dy, x, w, m([2, C + 1]), m([2, C + 1])), { code: 'ERR_SHAPE_MISMATCH', message: /mean: expected shape/ },
    'mean [2, C + 1]');
  t.throws(() => batchNormBackward(dy, x, w, m([1, 2, C]), m([1, 2, C])), { code: 'ERR_SHAPE_MISMATCH', message: /mean/ }, 'mean of rank 3');
  t.throws(() => batchNormBackward(dy, x, w, m([0, C]), m([0, C])), { code: 'ERR_SHAPE_MISMATCH', message: /mean/ }, 'mean [0, C]');
  t.throws(() => batchNormBackward(dy, x, w, m([8, C]), m([8, C])), { code: 'ERR_SHAPE_MISMATCH', message: /mean/ }, 'mean [8, C] for N = 4');
  t.doesNotThrow(() => batchNormBackward(dy, x, w, m([4, C]), m([4, C])), 'mean [N, C]: one sample per group is fine in the backward');

  // The raw binding checks the option itself.
  const raw = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
  t.throws(() => raw.batchNormTrain!(x.handle, p.weight.handle, p.bias.handle, p.runningMean.handle, p.runningVar.handle,
    { eps: 1e-5, momentum: 0.1, groups: null }), { code: 'ERR_INVALID_ARGUMENT', message: /groups/ }, 'raw: groups null');
});

t.test('worst errors seen (|err| / allowed)', async (t) => {
  for (const [k, v] of worst) t.comment(`${k}: ${v.toExponential(2)}`);
  t.pass(`${worst.size} families`);
});
