// The fused training ops that TrainableResNet's step uses in place of op sequences:
//   batchNormTrainAddRelu   = ops.add(batchNormTrain(x).y, residual, { relu: true })
//   batchNormReluBackward   = batchNormBackward(reluBackward(dy, y), x, ...)
//   conv2dBackwardDataEpilogue = reluBackward(ops.add(conv2dBackwardData(...), residual), reluOutput)
//   SGD.stepInPlace         = SGD.step written into the parameters
//   momentumUpdateInPlace   = momentumUpdate written into the key tensors
// Each against a float64 reference written here (tolerance 1e-5 of the terms' magnitude, as in
// layers.test.ts and conv-backward.test.ts), bit for bit against the op sequence it replaces, the
// same bits with 1 and 2 threads, and its errors; finally the batch-norm, ReLU-mask and max-pool
// kernels' AVX-512 paths against their portable ones (a child process with SSL_INV_ISA=avx2 gives
// the same bits).
import t, { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { conv2dBackwardData, conv2dBackwardDataEpilogue } from '../../src/backward/conv';
import {
  batchNormBackward, batchNormReluBackward, batchNormTrain, batchNormTrainAddRelu, maxPool2dBackward, momentumUpdate,
  momentumUpdateInPlace, reluBackward,
} from '../../src/backward/layers';
import { native } from '../../src/native';
import * as ops from '../../src/ops';
import { SGD, SgdOptions } from '../../src/optim/sgd';
import { tensor, Tensor } from '../../src/tensor';
import { check, outSize, randomArray } from '../helpers/reference';
import { bitsEqual, firstDiff } from '../helpers/bits';

const RTOL = 1e-5;

t.comment(`isa: ${native().info().isa}`);

const T = (a: Float32Array | Float64Array, shape: readonly number[]): Tensor => tensor(a, shape);
const read = (x: Tensor): Float32Array => x.toFloat32Array();
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);


function same(t: Test, a: Float32Array, b: Float32Array, what: string): void {
  const ok = bitsEqual(a, b);
  t.ok(ok, `${what}${ok ? '' : `: first difference ${firstDiff(a, b)}`}`);
}

/** Runs fn with 1 thread and then 2, restoring the pool's size. */
function withThreads<R>(fn: () => R): [R, R] {
  const before = native().info().threads;
  try {
    ops.setNumThreads(1);
    const one = fn();
    ops.setNumThreads(2);
    return [one, fn()];
  } finally {
    ops.setNumThreads(before);
  }
}

/** Values with exact zeros and negatives mixed in, so ReLU masks cut both ways. */
function signed(n: number, seed: number, scale = 1): Float32Array {
  return randomArray(n, seed, scale).map((v, i) => (i % 11 === 3 ? 0 : v));
}

// ---------------------------------------------------------------- batch norm + residual + ReLU

interface BnCase { name: string; shape: number[] }
const BN_CASES: BnCase[] = [
  { name: '[2, 3, 5, 7] odd C', shape: [2, 3, 5, 7] },
  { name: '[4, 6, 6, 64]', shape: [4, 6, 6, 64] },
  { name: '[2, 3, 3, 301] (C = 301: vector tails)', shape: [2, 3, 3, 301] },
  { name: '[8, 1, 1, 48] (1x1 maps)', shape: [8, 1, 1, 48] },
  { name: '[6, 40, 40, 10] (several reduction blocks)', shape: [6, 40, 40, 10] },
  { name: '[2, 4, 4, 2048] (wide rows)', shape: [2, 4, 4, 2048] },
];

function bnInputs(shape: number[], seed: number) {
  const C = shape[shape.length - 1]!, rows = prod(shape) / C;
  return {
    C, rows,
    x: randomArray(rows * C, seed, 1.5).map((v, i) => v + 0.3 * ((i % C) % 5)),
    res: signed(rows * C, seed + 1),
    dy: randomArray(rows * C, seed + 2),
    weight: randomArray(C, seed + 3).map((v) => 1 + 0.4 * v),
    bias: randomArray(C, seed + 4, 0.3),
    rm: randomArray(C, seed + 5, 0.1),
    rv: randomArray(C, seed + 6).map((v) => 1 + 0.5 * v),
  };
}

function bnParams(d: ReturnType<typeof bnInputs>) {
  return {
    weight: T(d.weight, [d.C]), bias: T(d.bias, [d.C]), runningMean: T(d.rm, [d.C]), runningVar: T(d.rv, [d.C]),
    eps: 1e-5, momentum: 0.1,
  };
}

t.test('batchNormTrainAddRelu: relu(batchNorm(x) + residual)', async (t) => {
  BN_CASES.forEach((cs, ci) => {
    const d = bnInputs(cs.shape, 100 + 10 * ci);
    const x = T(d.x, cs.shape), res = T(d.res, cs.shape), p = bnParams(d);
    const r = batchNormTrainAddRelu(x, p, res);
    const mean = read(r.mean), invstd = read(r.invstd);
    // float64 reference from the saved statistics (their own accuracy is batchNormTrain's, tested in
    // layers.test.ts); the magnitude scale covers each term.
    const ref = new Float64Array(d.x.length), mag = new Float64Array(d.x.length);
    for (let i = 0; i < d.x.length; i++) {
      const c = i % d.C, a = invstd[c]! * d.weight[c]!;
      const v = (d.x[i]! - mean[c]!) * a + d.bias[c]! + d.res[i]!;
      ref[i] = v > 0 ? v : 0;
      mag[i] = Math.abs(d.x[i]! - mean[c]!) * Math.abs(a) + Math.abs(d.bias[c]!) + Math.abs(d.res[i]!);
    }
    const c = check(read(r.y), ref, RTOL, 0, mag);
    t.ok(c.ok, `${cs.name}: y against float64${c.ok ? '' : `: ${c.firstBad}`}`);
    // The op sequence it replaces: the same statistics and the same y, bit for bit.
    const plain = batchNormTrain(x, p);
    const seq = ops.add(plain.y, res, { relu: true });
    same(t, read(r.y), read(seq), `${cs.name}: y is add(batchNormTrain(x).y, residual, relu)'s bits`);
    for (const k of ['mean', 'invstd', 'runningMean', 'runningVar'] as const) same(t, read(r[k]), read(plain[k]), `${cs.name}: ${k}`);
    t.ok(bitsEqual(read(res), d.res) && bitsEqual(read(x), d.x), `${cs.name}: x and the residual are untouched`);
    for (const v of [x, res, seq, ...Object.values(p).filter((v): v is Tensor => v instanceof Tensor),
      ...Object.values(r), ...Object.values(plain)]) v.dispose();
  });
  t.test('NaN in the sum stays NaN (torch.relu), a -0 sum becomes 0', async (t) => {
    const x = T(new Float32Array([1, 2, 3, 4]), [4, 1]), res = T(new Float32Array([NaN, 0, 0, 0]), [4, 1]);
    const p = { weight: T(new Float32Array([1]), [1]), bias: T(new Float32Array([0]), [1]), runningMean: T(new Float32Array([0]), [1]),
      runningVar: T(new Float32Array([1]), [1]), eps: 0, momentum: 0.1 };
    const y = read(batchNormTrainAddRelu(x, p, res).y);
    t.ok(Number.isNaN(y[0]), 'NaN kept');
    t.same(Array.from(y.subarray(1)).map((v) => v > 0 || Object.is(v, 0)), [true, true, true], 'others >= +0');
  });
});

t.test('batchNormReluBackward: batchNormBackward(reluBackward(dy, y), x, ...)', async (t) => {
  BN_CASES.forEach((cs, ci) => {
    const d = bnInputs(cs.shape, 200 + 10 * ci);
    const x = T(d.x, cs.shape), dy = T(d.dy, cs.shape), p = bnParams(d);
    const fwd = batchNormTrain(x, p, { relu: true });
    const y = read(fwd.y), mean = read(fwd.mean), invstd = read(fwd.invstd);
    const g = batchNormReluBackward(dy, fwd.y, x, p.weight, fwd.mean, fwd.invstd);
    // float64 reference: PyTorch's batch-norm backward of the masked gradient.
    const m = d.dy.map((v, i) => (y[i]! <= 0 ? 0 : v));
    const sdy = new Float64Array(d.C), sabs = new Float64Array(d.C), dot = new Float64Array(d.C), dotAbs = new Float64Array(d.C);
    for (let i = 0; i < m.length; i++) {
      const c = i % d.C, dm = d.x[i]! - mean[c]!;
      sdy[c]! += m[i]!; sabs[c]! += Math.abs(m[i]!); dot[c]! += dm * m[i]!; dotAbs[c]! += Math.abs(dm * m[i]!);
    }
    const dx = new Float64Array(m.length), mag = new Float64Array(m.length);
    for (let i = 0; i < m.length; i++) {
      const c = i % d.C, is = invstd[c]!, a = is * d.weight[c]!, dm = d.x[i]! - mean[c]!;
      dx[i] = (m[i]! - sdy[c]! / d.rows - dm * dot[c]! * is * is / d.rows) * a;
      mag[i] = (Math.abs(m[i]!) + sabs[c]! / d.rows + Math.abs(dm) * dotAbs[c]! * is * is / d.rows) * Math.abs(a);
    }
    const cx = check(read(g.dx), dx, RTOL, 0, mag);
    t.ok(cx.ok, `${cs.name}: dx against float64${cx.ok ? '' : `: ${cx.firstBad}`}`);
    const cb = check(read(g.dbias), sdy, RTOL, 0, sabs);
    t.ok(cb.ok, `${cs.name}: dbias against float64`);
    const cw = check(read(g.dweight), Float64Array.from(dot, (v, c) => v * invstd[c]!), RTOL, 0, Float64Array.from(dotAbs, (v, c) => v * invstd[c]!));
    t.ok(cw.ok, `${cs.name}: dweight against float64`);
    const masked = reluBackward(dy, fwd.y);
    const seq = batchNormBackward(masked, x, p.weight, fwd.mean, fwd.invstd);
    for (const k of ['dx', 'dweight', 'dbias'] as const) same(t, read(g[k]), read(seq[k]), `${cs.name}: ${k} is the op sequence's bits`);
    t.ok(bitsEqual(read(dy), d.dy) && bitsEqual(read(fwd.y), y), `${cs.name}: dy and y are untouched`);
    for (const v of [x, dy, masked, ...Object.values(fwd), ...Object.values(g), ...Object.values(seq),
      ...Object.values(p).filter((v): v is Tensor => v instanceof Tensor)]) v.dispose();
  });
  t.test('the mask is threshold_backward\'s: y <= 0 gives 0, NaN and positive y pass dy', async (t) => {
    const y = T(new Float32Array([1, 0, -0, -2, NaN, 3]), [6, 1]), dy = T(new Float32Array([10, 20, 30, 40, 50, 60]), [6, 1]);
    const x = T(new Float32Array([0, 0, 0, 0, 0, 0]), [6, 1]);
    const one = T(new Float32Array([1]), [1]), zero = T(new Float32Array([0]), [1]);
    const g = batchNormReluBackward(dy, y, x, one, zero, one);
    t.equal(read(g.dbias)[0], 10 + 50 + 60, 'dbias sums the passed gradients only');
  });
});

// ---------------------------------------------------------------- dgrad + residual + ReLU mask

interface ConvCase { name: string; n: number; h: number; w: number; c: number; k: number; r: number; s: number; st: number; pad: number }
const CONV_CASES: ConvCase[] = [
  { name: '3x3/1 pad 1, C=16 K=24 (in place, residual in the GEMM epilogue)', n: 2, h: 7, w: 6, c: 16, k: 24, r: 3, s: 3, st: 1, pad: 1 },
  { name: '3x3/2 pad 1, odd H (phases, untouched pixels)', n: 2, h: 9, w: 8, c: 12, k: 20, r: 3, s: 3, st: 2, pad: 1 },
  { name: '1x1/1 (plain GEMM), C=40', n: 3, h: 5, w: 5, c: 40, k: 36, r: 1, s: 1, st: 1, pad: 0 },
  { name: '1x1/2 (phases without taps: zero dx + residual)', n: 2, h: 6, w: 7, c: 24, k: 16, r: 1, s: 1, st: 2, pad: 0 },
  { name: '3x3/1 on 4x4, K=256 (border split)', n: 3, h: 4, w: 4, c: 32, k: 256, r: 3, s: 3, st: 1, pad: 1 },
  { name: '3x3/1 on 2x2, K=256, C=301 (border split, channel tails)', n: 2, h: 2, w: 2, c: 301, k: 256, r: 3, s: 3, st: 1, pad: 1 },
];

/** dx of a convolution in float64, NHWC, with the magnitude of its terms. */
function dgradRef(p: ConvCase, dy: Float32Array, w: Float32Array) {
  const P = outSize(p.h, p.r, p.st, p.pad), Q = outSize(p.w, p.s, p.st, p.pad);
  const dx = new Float64Array(p.n * p.h * p.w * p.c), mag = new Float64Array(dx.length);
  for (let n = 0; n < p.n; n++) for (let op = 0; op < P; op++) for (let oq = 0; oq < Q; oq++) for (let k = 0; k < p.k; k++) {
    const g = dy[((n * P + op) * Q + oq) * p.k + k]!;
    for (let r = 0; r < p.r; r++) for (let s = 0; s < p.s; s++) {
      const ih = op * p.st - p.pad + r, iw = oq * p.st - p.pad + s;
      if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
      for (let c = 0; c < p.c; c++) {
        const i = ((n * p.h + ih) * p.w + iw) * p.c + c, v = g * w[((k * p.c + c) * p.r + r) * p.s + s]!;
        dx[i]! += v;
        mag[i]! += Math.abs(v);
      }
    }
  }
  return { dx, mag };
}

function convInputs(p: ConvCase, seed: number) {
  const P = outSize(p.h, p.r, p.st, p.pad), Q = outSize(p.w, p.s, p.st, p.pad), nx = p.n * p.h * p.w * p.c;
  return {
    P, Q,
    dy: randomArray(p.n * P * Q * p.k, seed), w: randomArray(p.k * p.c * p.r * p.s, seed + 1, 0.2),
    res: signed(nx, seed + 2), y: signed(nx, seed + 3).map((v, i) => (i % 17 === 5 ? NaN : v)),
  };
}

t.test('conv2dBackwardDataEpilogue: mask(reluOutput, dgrad + residual)', async (t) => {
  CONV_CASES.forEach((p, ci) => {
    const d = convInputs(p, 300 + 10 * ci);
    const g: ops.ConvGeometry = { outChannels: p.k, kernel: [p.r, p.s], stride: [p.st, p.st], padding: [p.pad, p.pad] };
    const xs = [p.n, p.h, p.w, p.c];
    const dy = T(d.dy, [p.n, d.P, d.Q, p.k]), w = T(d.w, [p.k, p.c, p.r, p.s]), res = T(d.res, xs), y = T(d.y, xs);
    const ref = dgradRef(p, d.dy, d.w);
    const plain = conv2dBackwardData(dy, w, g, [p.h, p.w]);
    const sum = ops.add(plain, res);
    for (const [label, ep, seq, keep] of [
      ['residual', { residual: res }, sum, (_i: number) => true],
      ['ReLU mask', { reluOutput: y }, reluBackward(plain, y), (i: number) => !(d.y[i]! <= 0)],
      ['residual and ReLU mask', { residual: res, reluOutput: y }, reluBackward(sum, y), (i: number) => !(d.y[i]! <= 0)],
    ] as const) {
      const out = conv2dBackwardDataEpilogue(dy, w, g, [p.h, p.w], ep);
      const withRes = 'residual' in ep;
      const r64 = ref.dx.map((v, i) => (keep(i) ? v + (withRes ? d.res[i]! : 0) : 0));
      const m64 = ref.mag.map((v, i) => (keep(i) ? v + (withRes ? Math.abs(d.res[i]!) : 0) : 0));
      const c = check(read(out), r64, RTOL, 1e-9, m64);
      t.ok(c.ok, `${p.name}, ${label}: against float64${c.ok ? '' : `: ${c.firstBad}`}`);
      same(t, read(out), read(seq), `${p.name}, ${label}: the op sequence's bits`);
      out.dispose();
      if (seq !== sum) seq.dispose();
    }
    t.ok(bitsEqual(read(res), d.res) && bitsEqual(read(dy), d.dy), `${p.name}: inputs untouched`);
    for (const v of [dy, w, res, y, plain, sum]) v.dispose();
  });
});

// ---------------------------------------------------------------- thread count

t.test('the fused ops give the same bits with 1 and 2 threads', async (t) => {
  const d = bnInputs([6, 40, 40, 10], 500);
  const shape = [6, 40, 40, 10];
  const cp = CONV_CASES[1]!, cd = convInputs(cp, 510), cp2 = CONV_CASES[4]!, cd2 = convInputs(cp2, 520);
  const run = () => {
    const x = T(d.x, shape), res = T(d.res, shape), dy = T(d.dy, shape), p = bnParams(d);
    const f = batchNormTrainAddRelu(x, p, res);
    const r = batchNormTrain(x, p, { relu: true });
    const b = batchNormReluBackward(dy, r.y, x, p.weight, r.mean, r.invstd);
    const outs = [f.y, f.mean, f.invstd, b.dx, b.dweight, b.dbias];
    for (const [pc, dc] of [[cp, cd], [cp2, cd2]] as const) {
      const g: ops.ConvGeometry = { outChannels: pc.k, kernel: [pc.r, pc.s], stride: [pc.st, pc.st], padding: [pc.pad, pc.pad] };
      const xs = [pc.n, pc.h, pc.w, pc.c];
      outs.push(conv2dBackwardDataEpilogue(T(dc.dy, [pc.n, dc.P, dc.Q, pc.k]), T(dc.w, [pc.k, pc.c, pc.r, pc.s]), g, [pc.h, pc.w],
        { residual: T(dc.res, xs), reluOutput: T(dc.y, xs) }));
    }
    return outs.map(read);
  };
  const [one, two] = withThreads(run);
  const names = ['addRelu y', 'addRelu mean', 'addRelu invstd', 'reluBackward dx', 'dweight', 'dbias', 'dgrad epilogue (phases)',
    'dgrad epilogue (border split)'];
  one.forEach((a, i) => same(t, a, two[i]!, `${names[i]}: 1 and 2 threads`));
});

// ---------------------------------------------------------------- SGD in place

function sgdSetup(seed: number) {
  // Sizes around the vector width and the parallel grain, one past 2^15 so a thread chunk spans tensors.
  const sizes = [1, 17, 64, 4096, 32769, 300];
  const names = sizes.map((_, i) => `p${i}`);
  const params = sizes.map((n, i) => randomArray(n, seed + i));
  const grads = [0, 1, 2].map((step) => sizes.map((n, i) => randomArray(n, seed + 100 * (step + 1) + i, 0.1)));
  return { sizes, names, params, grads };
}

const SGD_VARIANTS: SgdOptions[] = [
  { lr: 0.03, momentum: 0.9, weightDecay: 1e-4 },
  { lr: 0.05, momentum: 0.9, weightDecay: 1e-4, nesterov: true },
  { lr: 0.1, momentum: 0.9, dampening: 0.1 },
  { lr: 0.03, weightDecay: 1e-4 },
];

t.test('SGD.stepInPlace: step()\'s bits, written into the parameters', async (t) => {
  for (const o of SGD_VARIANTS) {
    const s = sgdSetup(700);
    const a = new SGD(o), b = new SGD(o);
    let ref = new Map(s.names.map((k, i) => [k, T(s.params[i]!, [s.sizes[i]!])]));
    const mine = new Map(s.names.map((k, i) => [k, T(s.params[i]!, [s.sizes[i]!])]));
    const handles = [...mine.values()];
    for (let step = 0; step < 3; step++) {
      const grads = new Map(s.names.map((k, i) => [k, T(s.grads[step]![i]!, [s.sizes[i]!])]));
      const next = a.step(ref, grads);
      for (const [k, v] of ref) if (next.get(k) !== v) v.dispose();
      ref = next;
      b.stepInPlace(mine, grads);
      const label = `${JSON.stringify(o)}, step ${step + 1}`;
      t.ok(s.names.every((k) => bitsEqual(read(mine.get(k)!), read(ref.get(k)!))), `${label}: parameters are step()'s bits`);
      t.ok(s.names.every((k) => (a.momentumBuffers().get(k) === undefined) === (b.momentumBuffers().get(k) === undefined) &&
        (!a.momentumBuffers().get(k) || bitsEqual(read(a.momentumBuffers().get(k)!), read(b.momentumBuffers().get(k)!)))),
      `${label}: momentum buffers are step()'s bits`);
      t.ok([...mine.values()].every((v, i) => v === handles[i]), `${label}: the same tensors, updated in place`);
      for (const g of grads.values()) g.dispose();
    }
    for (const v of [...ref.values(), ...mine.values()]) v.dispose();
    a.dispose();
    b.dispose();
  }
  t.test('parameters without a gradient are skipped; their buffers stay', async (t) => {
    const o = { lr: 0.1, momentum: 0.9 };
    const sgd = new SGD(o);
    const p = new Map([['a', T(randomArray(5, 1), [5])], ['b', T(randomArray(5, 2), [5])]]);
    const before = read(p.get('b')!);
    sgd.stepInPlace(p, new Map([['a', T(randomArray(5, 3), [5])]]));
    t.ok(bitsEqual(read(p.get('b')!), before), 'b untouched');
    t.equal(sgd.momentumBuffers().has('b'), false, 'no buffer for b');
    t.equal(sgd.momentumBuffers().has('a'), true, 'a buffer for a');
  });
  t.test('the same bits with 1 and 2 threads', async (t) => {
    const s = sgdSetup(900);
    const run = () => {
      const sgd = new SGD(SGD_VARIANTS[0]!);
      const p = new Map(s.names.map((k, i) => [k, T(s.params[i]!, [s.sizes[i]!])]));
      for (let step = 0; step < 2; step++) sgd.stepInPlace(p, new Map(s.names.map((k, i) => [k, T(s.grads[step]![i]!, [s.sizes[i]!])])));
      return [...p.values()].map(read);
    };
    const [one, two] = withThreads(run);
    t.ok(one.every((a, i) => bitsEqual(a, two[i]!)), 'every parameter');
  });
});

t.test('SGD.stepInPlace errors: checked before anything is written', async (t) => {
  const sgd = new SGD({ lr: 0.1, momentum: 0.9 });
  const a = T(randomArray(4, 1), [4]), b = T(randomArray(6, 2), [6]);
  const a0 = read(a), b0 = read(b);
  const untouched = (what: string) => t.ok(bitsEqual(read(a), a0) && bitsEqual(read(b), b0) && sgd.momentumBuffers().size === 0,
    `${what}: nothing written`);
  const p = new Map([['a', a], ['b', b]]);
  t.throws(() => sgd.stepInPlace(p, new Map([['a', T(randomArray(4, 3), [4])], ['b', T(randomArray(5, 4), [5])]])),
    { code: 'ERR_SHAPE_MISMATCH', message: /'b'/ }, 'a gradient of the wrong shape for the second parameter');
  untouched('shape mismatch');
  t.throws(() => sgd.stepInPlace(p, new Map([['a', T(new Float64Array(4), [4])]])), { code: 'ERR_DTYPE_MISMATCH' }, 'a float64 gradient');
  untouched('dtype mismatch');
  t.throws(() => sgd.stepInPlace(p, new Map([['c', T(randomArray(4, 3), [4])]])), { code: 'ERR_INVALID_ARGUMENT', message: /'c'/ },
    'a gradient for a name that is not a parameter');
  untouched('unknown name');
  t.throws(() => sgd.stepInPlace(new Map([['a', a], ['a2', a]]), new Map([['a', T(randomArray(4, 3), [4])], ['a2', T(randomArray(4, 4), [4])]])),
    { code: 'ERR_INVALID_ARGUMENT', message: /share/ }, 'the same tensor twice');
  untouched('shared storage');
  const a2 = T(randomArray(4, 7), [4]), a20 = read(a2);
  t.throws(() => sgd.stepInPlace(new Map([['a', a], ['a2', a2]]), new Map([['a', a2], ['a2', T(randomArray(4, 8), [4])]])),
    { code: 'ERR_INVALID_ARGUMENT', message: /grads\[0\] shares its storage/ }, "a gradient that is another parameter (written by the same step)");
  untouched('gradient sharing a parameter\'s storage');
  t.ok(bitsEqual(read(a2), a20), 'the other parameter untouched too');
  const gone = T(randomArray(6, 5), [6]);
  gone.dispose();
  t.throws(() => sgd.stepInPlace(p, new Map([['a', T(randomArray(4, 3), [4])], ['b', gone]])), { code: 'ERR_TENSOR_DISPOSED' },
    'a disposed gradient');
  untouched('disposed gradient');
  const raw = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
  t.throws(() => raw.sgdStepInPlace!([a.handle], [a.handle, b.handle], [undefined], { lr: 0.1 }), { code: 'ERR_INVALID_ARGUMENT' },
    'raw: arrays of different lengths');
  t.throws(() => raw.sgdStepInPlace!([a.handle], [a.handle], [undefined], { lr: -1 }), { code: 'ERR_INVALID_ARGUMENT' }, 'raw: lr < 0');
  t.throws(() => raw.sgdStepInPlace!([a.handle], [T(randomArray(4, 6), [4]).handle], [a.handle], { lr: 0.1, momentum: 0.9 }),
    { code: 'ERR_INVALID_ARGUMENT', message: /share/ }, 'raw: a buffer that is its parameter');
  untouched('raw calls');
  sgd.dispose();
  t.throws(() => sgd.stepInPlace(p, new Map()), { code: 'ERR_INVALID_ARGUMENT' }, 'a disposed optimiser');
});

// ---------------------------------------------------------------- momentum update in place

t.test('momentumUpdateInPlace: momentumUpdate\'s bits, written into k', async (t) => {
  const sizes = [3, 64, 32769, 100];
  for (const m of [0.999, 0.5, 0, 1]) {
    const ks = sizes.map((n, i) => T(randomArray(n, 10 + i), [n])), qs = sizes.map((n, i) => T(randomArray(n, 20 + i, 3), [n]));
    const expected = ks.map((k, i) => read(momentumUpdate(k, qs[i]!, m)));
    momentumUpdateInPlace(ks, qs, m);
    t.ok(ks.every((k, i) => bitsEqual(read(k), expected[i]!)), `m = ${m}: every tensor`);
  }
  const k = T(randomArray(8, 1), [8]);
  const expected = read(momentumUpdate(k, k, 0.9));
  momentumUpdateInPlace([k], [k], 0.9);
  t.ok(bitsEqual(read(k), expected), 'a k may be its own q');
  const [one, two] = withThreads(() => {
    const ks = sizes.map((n, i) => T(randomArray(n, 30 + i), [n])), qs = sizes.map((n, i) => T(randomArray(n, 40 + i), [n]));
    momentumUpdateInPlace(ks, qs, 0.99);
    return ks.map(read);
  });
  t.ok(one.every((a, i) => bitsEqual(a, two[i]!)), '1 and 2 threads: the same bits');
  const a = T(randomArray(4, 1), [4]), b = T(randomArray(4, 2), [4]);
  const a0 = read(a);
  t.throws(() => momentumUpdateInPlace([a, b], [b, a], 0.9), { code: 'ERR_INVALID_ARGUMENT', message: /share/ }, 'q of another k');
  t.throws(() => momentumUpdateInPlace([a, a], [b, b], 0.9), { code: 'ERR_INVALID_ARGUMENT', message: /share/ }, 'the same k twice');
  t.throws(() => momentumUpdateInPlace([a], [T(randomArray(5, 3), [5])], 0.9), { code: 'ERR_SHAPE_MISMATCH' }, 'shapes differ');
  t.throws(() => momentumUpdateInPlace([a], [b], 1.5), { code: 'ERR_INVALID_ARGUMENT' }, 'm > 1');
  t.throws(() => momentumUpdateInPlace([a], [b, b], 0.5), { code: 'ERR_INVALID_ARGUMENT' }, 'arrays of different lengths');
  t.ok(bitsEqual(read(a), a0), 'nothing written by the failed calls');
});

// ---------------------------------------------------------------- errors of the fused ops

t.test('fused op errors', async (t) => {
  const d = bnInputs([2, 3, 3, 4], 1);
  const x = T(d.x, [2, 3, 3, 4]), p = bnParams(d);
  t.throws(() => batchNormTrainAddRelu(x, p, T(d.x.subarray(0, 24), [2, 3, 4])), { code: 'ERR_SHAPE_MISMATCH', message: /residual/ },
    'addRelu: residual of another shape');
  t.throws(() => batchNormTrainAddRelu(x, p, T(new Float64Array(72), [2, 3, 3, 4])), { code: 'ERR_DTYPE_MISMATCH' }, 'addRelu: float64 residual');
  t.throws(() => batchNormReluBackward(x, T(d.x.subarray(0, 24), [6, 4]), x, p.weight, p.bias, p.bias), { code: 'ERR_SHAPE_MISMATCH', message: /reluOutput/ },
    'reluBackward: y of another shape');
  t.throws(() => batchNormReluBackward(x, T(new Float64Array(72), [2, 3, 3, 4]), x, p.weight, p.bias, p.bias), { code: 'ERR_DTYPE_MISMATCH' },
    'reluBackward: float64 y');
  const g: ops.ConvGeometry = { outChannels: 4, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
  const dy = T(randomArray(72, 2), [2, 3, 3, 4]), w = T(randomArray(144, 3), [4, 4, 3, 3]);
  t.throws(() => conv2dBackwardDataEpilogue(dy, w, g, [3, 3], { residual: T(randomArray(64, 4), [2, 2, 4, 4]) }),
    { code: 'ERR_SHAPE_MISMATCH', message: /residual.*\[2, 3, 3, 4\]/ }, 'dgrad: residual not dx\'s shape');
  t.throws(() => conv2dBackwardDataEpilogue(dy, w, g, [3, 3], { reluOutput: T(randomArray(72, 4), [2, 3, 12]) }),
    { code: 'ERR_SHAPE_MISMATCH', message: /reluOutput/ }, 'dgrad: reluOutput of rank 3');
  t.throws(() => conv2dBackwardDataEpilogue(dy, w, g, [3, 3], { residual: T(new Float64Array(72), [2, 3, 3, 4]) }),
    { code: 'ERR_DTYPE_MISMATCH' }, 'dgrad: float64 residual');
  t.throws(() => conv2dBackwardDataEpilogue(dy, w, g, [3] as unknown as [number, number], {}), { code: 'ERR_INVALID_ARGUMENT' },
    'dgrad: inputSize [3]');
});

// ---------------------------------------------------------------- AVX-512 and portable paths

/** Outputs of the kernels that have an AVX-512 path of their own, as one array of bit patterns. */
function isaProbe(): number[] {
  const out: number[] = [];
  const push = (x: Tensor) => out.push(...new Uint32Array(read(x).buffer));
  for (const shape of [[6, 40, 40, 10], [2, 3, 3, 301], [2, 4, 4, 2048]]) {
    const d = bnInputs(shape, 40);
    const x = T(d.x, shape), res = T(d.res, shape), dy = T(d.dy, shape), p = bnParams(d);
    const f = batchNormTrainAddRelu(x, p, res);
    const b = batchNormReluBackward(dy, f.y, x, p.weight, f.mean, f.invstd);
    const plain = batchNormBackward(dy, x, p.weight, f.mean, f.invstd);
    for (const v of [f.y, f.mean, f.invstd, f.runningMean, f.runningVar, b.dx, b.dweight, b.dbias, plain.dx]) push(v);
  }
  const px = signed(2 * 9 * 9 * 70, 50).map((v, i) => (i % 13 === 0 ? NaN : i % 7 === 0 ? 0.5 : v));
  push(maxPool2dBackward(T(randomArray(2 * 5 * 5 * 70, 51), [2, 5, 5, 70]), T(px, [2, 9, 9, 70]),
    { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }));
  return out;
}

if (process.env.SSL_INV_FUSED_PROBE) {
  process.stdout.write(`PROBE ${JSON.stringify(isaProbe())}\n`);
}

// The whole file again with the ISA capped (SSL_INV_ISA is read once per process, so in child
// processes): the portable batch-norm, ReLU-mask, epilogue and max-pool loops, and the AVX2 / portable
// GEMM tiles, pass every check above; and the kernels with an AVX-512 path of their own give the
// parent's bits.
t.test('the same checks with the AVX2 and portable kernels, and the same bits as AVX-512',
  { skip: process.env.SSL_INV_ISA ? 'a child run' : false }, async (t) => {
    const mine = isaProbe();
    for (const isa of ['avx2', 'generic']) {
      const env: NodeJS.ProcessEnv = { SSL_INV_ISA: isa, SSL_INV_FUSED_PROBE: '1' };
      for (const [k, v] of Object.entries(process.env)) if (!/^(TAP|_TAPJS|NODE_OPTIONS$|SSL_INV_ISA$)/.test(k)) env[k] = v;
      const r = spawnSync(process.execPath, [...process.execArgv, __filename],
        { env, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
      const out = r.stdout ?? '';
      const failed = out.split('\n').filter((l) => /^\s*not ok/.test(l));
      t.equal(r.status, 0, `SSL_INV_ISA=${isa}: exit status 0${r.status !== 0 ? '\n' + failed.join('\n') + (r.stderr ?? '') : ''}`);
      t.same(failed, [], `SSL_INV_ISA=${isa}: no failed assertion`);
      t.match(out, new RegExp(`# isa: ${isa}`), `SSL_INV_ISA=${isa}: ran with the ISA capped`);
      const line = out.split('\n').find((l) => l.startsWith('PROBE '));
      t.ok(line, `SSL_INV_ISA=${isa}: the child run printed its outputs`);
      if (!line) continue;
      const theirs = JSON.parse(line.slice(6)) as number[];
      const bad = mine.findIndex((v, i) => v !== theirs[i]);
      t.ok(theirs.length === mine.length && bad === -1,
        `SSL_INV_ISA=${isa} and ${native().info().isa}: batch norm, ReLU masks and max-pool backward give the same bits` +
        (bad < 0 ? '' : ` (first difference at ${bad})`));
    }
  });
