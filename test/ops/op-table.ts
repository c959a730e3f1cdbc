// The table of op cases, run against the float64 references of test/helpers/reference.ts on every
// backend present: the CPU under each instruction set (cpu-ops-*.test.ts) and each CUDA device
// (cuda-ops.test.ts, in fp32, tf32 and bf16 for the convolutions).
// Shapes cover odd sizes, padding borders, C = 3, stride 2 with odd H, 1x1 convs (the plain-GEMM
// path), GEMM-K larger than one cache block (kc = 256) with channel runs crossing block edges, and
// output-channel counts that leave partial register tiles. Exported as a function so the same table
// runs under every instruction set (cpu-ops-*.test.ts set SSL_INV_ISA before the addon loads) and on
// every device. Inputs are made on the host and moved to the device under test; results come back
// with toFloat32Array().
import { Test } from 'tap';
import * as ops from '../../src/ops';
import { tensor, Tensor } from '../../src/tensor';
import { native } from '../../src/native';
import { runsWgmma } from '../helpers/wgmma';
import { tuningLabel as label, withKernelLaunches } from '../helpers/kernel-launches';
import { clearConvTuning, convAutotune, convTuning, ConvTuningRecord } from '../../src/device';
import { dgemm } from '../../src/linalg';
import { multinomialLossGrad } from '../../src/probes/eigen';
import {
  ConvCase, bf16Bits, check, conv2dRef, maxPoolRef, mocoLossRef, outSize, randomArray, roundBf16, toNchw, toNhwc,
} from '../helpers/reference';

const FP32_RTOL = 1e-5;
/** Relative tolerances of docs/KERNELS.md by convolution precision (bound: rtol * sum |x||w|). */
const CONV_RTOL: Record<ops.Precision, number> = { fp32: 1e-5, tf32: 2e-3, bf16: 1.5e-2 };

export interface OpTableOptions {
  /** 'cpu' (default) or 'cuda:N'. */
  device?: string;
  /** Convolution precisions to run (default fp32 only). */
  precisions?: ops.Precision[];
}

/** The device the table is running on; `T` creates its inputs there. */
let DEVICE = 'cpu';

/** Whether DEVICE runs the sm_90a wgmma convolution (test/helpers/wgmma.ts). */
const hasWgmma = () => runsWgmma(DEVICE);

function T(a: Float32Array | Float64Array, shape: number[]): Tensor {
  const host = tensor(a, shape);
  if (DEVICE === 'cpu') return host;
  try {
    return host.to(DEVICE);
  } finally {
    host.dispose();
  }
}

export const CONV_CASES: (ConvCase & { name: string })[] = [
  { name: '3x3 pad 1, C=3', n: 1, c: 3, h: 7, w: 7, k: 5, r: 3, s: 3, stride: 1, pad: 1 },
  { name: 'stem 7x7/2 pad 3, odd H/W', n: 2, c: 3, h: 11, w: 9, k: 8, r: 7, s: 7, stride: 2, pad: 3 },
  { name: '1x1/1 (plain GEMM path)', n: 1, c: 16, h: 9, w: 9, k: 32, r: 1, s: 1, stride: 1, pad: 0 },
  { name: '1x1/2 odd H', n: 2, c: 16, h: 9, w: 9, k: 32, r: 1, s: 1, stride: 2, pad: 0 },
  { name: '3x3/2 odd channels', n: 1, c: 5, h: 6, w: 6, k: 7, r: 3, s: 3, stride: 2, pad: 1 },
  { name: '3x3 C=64 K=40', n: 1, c: 64, h: 14, w: 14, k: 40, r: 3, s: 3, stride: 1, pad: 1 },
  { name: 'K-blocks cross channel runs (C=300)', n: 1, c: 300, h: 5, w: 5, k: 17, r: 3, s: 3, stride: 1, pad: 1 },
  { name: '1x1 image', n: 3, c: 8, h: 1, w: 1, k: 4, r: 1, s: 1, stride: 1, pad: 0 },
  { name: '5x5 pad 2', n: 1, c: 4, h: 5, w: 5, k: 6, r: 5, s: 5, stride: 1, pad: 2 },
  { name: '3x3/2 no padding', n: 1, c: 2, h: 13, w: 13, k: 33, r: 3, s: 3, stride: 2, pad: 0 },
  { name: '3x3/2 odd H, 65 outputs', n: 2, c: 33, h: 17, w: 15, k: 65, r: 3, s: 3, stride: 2, pad: 1 },
  { name: '1x1 deep K=1024', n: 1, c: 1024, h: 3, w: 3, k: 48, r: 1, s: 1, stride: 1, pad: 0 },
  { name: 'rectangular kernel window at the border', n: 1, c: 3, h: 4, w: 3, k: 2, r: 3, s: 3, stride: 1, pad: 1 },
  { name: '3x3 on a 1x1 map (only the centre tap is live)', n: 3, c: 256, h: 1, w: 1, k: 40, r: 3, s: 3, stride: 1, pad: 1 },
  { name: '3x3 on a one-row map (one live kernel row)', n: 2, c: 256, h: 1, w: 5, k: 33, r: 3, s: 3, stride: 1, pad: 1 },
  { name: '3x3/2 on a 2x2 map', n: 2, c: 256, h: 2, w: 2, k: 20, r: 3, s: 3, stride: 2, pad: 1 },
  { name: '3x3 on a 2x2 map, C=256 (CPU: four border regions)', n: 2, c: 256, h: 2, w: 2, k: 20, r: 3, s: 3, stride: 1, pad: 1 },
  { name: '3x3 on a 4x3 map, C=512 (CPU: nine border regions)', n: 2, c: 512, h: 4, w: 3, k: 12, r: 3, s: 3, stride: 1, pad: 1 },
  { name: '3x3 on a 2x2 map, C=128 (CPU: regions of whole K blocks)', n: 2, c: 128, h: 2, w: 2, k: 9, r: 3, s: 3, stride: 1, pad: 1 },
];

/**
 * Convolutions whose windows lose different taps to the padding at different output positions, as
 * on the small maps of the last stages (the CPU's border regions, native/cpu/conv2d.cc). Each must
 * give the bits of the same convolution of the input zero-padded by hand (no padding left, so the
 * plain GEMM, whose padding taps add exact zeros): checked with and without the epilogue.
 */
const BORDER_CASES: (ConvCase & { name: string })[] = [
  ...CONV_CASES.filter((p) => /border regions|whole K blocks|on a 2x2 map|one-row map/.test(p.name)),
  { name: '3x3/2 on a 5x5 map, C=384', n: 1, c: 384, h: 5, w: 5, k: 7, r: 3, s: 3, stride: 2, pad: 1 },
  { name: '5x5 pad 2 on a 3x4 map, C=256', n: 1, c: 256, h: 3, w: 4, k: 5, r: 5, s: 5, stride: 1, pad: 2 },
  { name: '3x3 pad 3 on a 1x1 map (windows with no live tap)', n: 2, c: 256, h: 1, w: 1, k: 6, r: 3, s: 3, stride: 1, pad: 3 },
  { name: '3x3 on a 3x3 map, C=320', n: 2, c: 320, h: 3, w: 3, k: 8, r: 3, s: 3, stride: 1, pad: 1 },
];

function convInputs(p: ConvCase, seed: number) {
  const P = outSize(p.h, p.r, p.stride, p.pad), Q = outSize(p.w, p.s, p.stride, p.pad);
  return {
    P, Q,
    x: randomArray(p.n * p.c * p.h * p.w, seed),
    w: randomArray(p.k * p.c * p.r * p.s, seed + 1, 0.5),
    bias: randomArray(p.k, seed + 2),
    scale: randomArray(p.k, seed + 3).map((v) => 0.5 + Math.abs(v)),
    residual: randomArray(p.n * p.k * P * Q, seed + 4),
  };
}

/** Runs conv2d through the public ops, in NCHW at the edges; returns NCHW float32. */
function runConv(p: ConvCase, d: ReturnType<typeof convInputs>,
  ep: { bias?: boolean; residual?: boolean; relu?: boolean; scale?: boolean; precision?: ops.Precision; algo?: ops.ConvAlgo }): Float32Array {
  const keep: Tensor[] = [];
  const t = (a: Float32Array, shape: number[]) => { const x = T(a, shape); keep.push(x); return x; };
  try {
    const x = t(toNhwc(d.x, p.n, p.c, p.h, p.w), [p.n, p.h, p.w, p.c]);
    const w = t(d.w, [p.k, p.c, p.r, p.s]);
    const packed = ops.packConvWeights(w, ep.scale ? t(d.scale, [p.k]) : undefined);
    keep.push(packed);
    const e: ops.Epilogue & { precision?: ops.Precision; algo?: ops.ConvAlgo } = { relu: ep.relu ?? false, precision: ep.precision ?? 'fp32', algo: ep.algo ?? 'auto' };
    if (ep.bias) e.bias = t(d.bias, [p.k]);
    if (ep.residual) e.residual = t(toNhwc(d.residual, p.n, p.k, d.P, d.Q), [p.n, d.P, d.Q, p.k]);
    const y = ops.conv2d(x, packed, { outChannels: p.k, kernel: [p.r, p.s], stride: [p.stride, p.stride], padding: [p.pad, p.pad] }, e);
    keep.push(y);
    return toNchw(y.toFloat32Array(), p.n, p.k, d.P, d.Q);
  } finally {
    for (const x of keep) x.dispose();
  }
}

/**
 * Case p's NHWC input (xf) and packed filter (wf) on DEVICE, with its geometry, for fn; every tensor
 * made or passed through `k` is disposed afterwards.
 */
function withConvTensors(p: ConvCase, d: ReturnType<typeof convInputs>,
  fn: (c: { g: ops.ConvGeometry; xf: Tensor; wf: Tensor; k: <U extends Tensor>(y: U) => U }) => void): void {
  const keep: Tensor[] = [];
  const k = <U extends Tensor>(y: U): U => { keep.push(y); return y; };
  try {
    const g: ops.ConvGeometry = { outChannels: p.k, kernel: [p.r, p.s], stride: [p.stride, p.stride], padding: [p.pad, p.pad] };
    const xf = k(T(toNhwc(d.x, p.n, p.c, p.h, p.w), [p.n, p.h, p.w, p.c]));
    const wf = k(ops.packConvWeights(k(T(d.w, [p.k, p.c, p.r, p.s]))));
    fn({ g, xf, wf, k });
  } finally {
    for (const y of keep) y.dispose();
  }
}

function unitRows(a: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += a[r * cols + c]! ** 2;
    for (let c = 0; c < cols; c++) a[r * cols + c] = a[r * cols + c]! / Math.sqrt(s);
  }
}

export function runOpTable(t: Test, opts: OpTableOptions = {}): void {
  const device = opts.device ?? 'cpu';
  const cpu = device === 'cpu';
  t.before(() => { DEVICE = device; });
  for (const precision of opts.precisions ?? ['fp32']) {
    t.test(`conv2d (${precision}) against float64`, async (t) => {
      const rtol = CONV_RTOL[precision];
      CONV_CASES.forEach((p, i) => {
        const d = convInputs(p, 100 + i * 10);
        const plain = conv2dRef(p, d.x, d.w);
        const out = runConv(p, d, { precision });
        const r = check(out, plain.y, rtol, 1e-7, plain.mag);
        t.ok(r.ok, `${p.name}: worst ${r.worst.toFixed(3)} of tolerance, rel ${r.relNorm.toExponential(2)}${r.firstBad ? ' ' + r.firstBad : ''}`);
        // Folded-BN scale, bias, residual and ReLU in the epilogue.
        const full = conv2dRef(p, d.x, d.w, d.bias, d.scale);
        const fused = runConv(p, d, { bias: true, residual: true, relu: true, scale: true, precision });
        const ref = full.y.map((v, j) => Math.max(0, v + d.residual[j]!));
        const mag = full.mag.map((v, j) => v + Math.abs(d.residual[j]!));
        const r2 = check(fused, ref, rtol, 1e-7, mag);
        t.ok(r2.ok, `${p.name} + scale/bias/residual/relu: worst ${r2.worst.toFixed(3)}${r2.firstBad ? ' ' + r2.firstBad : ''}`);
      });
    });
  }

  t.test('conv2d on small maps: the bits of the same convolution of the input padded by hand', { skip: cpu ? false : 'the CPU border regions' }, async (t) => {
    BORDER_CASES.forEach((p, i) => {
      const d = convInputs(p, 300 + i * 10);
      const hp = p.h + 2 * p.pad, wp = p.w + 2 * p.pad;
      const xp = new Float32Array(p.n * p.c * hp * wp);
      for (let n = 0; n < p.n; n++) for (let c = 0; c < p.c; c++) for (let h = 0; h < p.h; h++) for (let w = 0; w < p.w; w++) {
        xp[((n * p.c + c) * hp + h + p.pad) * wp + w + p.pad] = d.x[((n * p.c + c) * p.h + h) * p.w + w]!;
      }
      const padded: ConvCase = { ...p, h: hp, w: wp, pad: 0 };
      const dp = { ...d, x: xp };
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
      t.ok(same(runConv(p, d, {}), runConv(padded, dp, {})), `${p.name}: conv`);
      const all = { bias: true, residual: true, relu: true, scale: true };
      t.ok(same(runConv(p, d, all), runConv(padded, dp, all)), `${p.name}: + scale/bias/residual/relu`);
    });
  });

  t.test('conv2d kernel variants: the same bits as auto in fp32 and tf32', { skip: cpu ? 'the CPU has one kernel' : false }, async (t) => {
    const variants: [ops.Precision, ops.ConvAlgo[]][] = [['fp32', ['simt-bk8', 'simt-bk16']], ['tf32', ['mma-staged', 'mma-pipelined']]];
    for (const [precision, algos] of variants) {
      CONV_CASES.forEach((p, i) => {
        const d = convInputs(p, 100 + i * 10);
        const auto = runConv(p, d, { bias: true, residual: true, relu: true, scale: true, precision });
        for (const algo of algos) {
          const out = runConv(p, d, { bias: true, residual: true, relu: true, scale: true, precision, algo });
          t.same(Array.from(out), Array.from(auto), `${p.name}: ${precision} ${algo} equals auto bit for bit`);
        }
      });
    }
  });

  t.test('conv2d dispatch: each precision and algo reaches the kernel it names (launch counts)', { skip: cpu ? 'the CPU has one kernel' : false }, async (t) => {
    // The kernels of one precision give the same bits (above), so only the launch counts tell them apart.
    // 'auto' is the default kernel here: run-time tuning (tested below) is switched off.
    const tuning = convAutotune(false);
    t.teardown(() => { convAutotune(tuning); });
    const ran = (fn: () => void): Record<string, number> => withKernelLaunches(fn).launched;
    const wide = CONV_CASES.find((p) => p.c % 8 === 0 && p.k % 2 === 0)!;  // every kernel takes it
    const stem = CONV_CASES[1]!;  // C = 3: the pipelined tf32 kernel hands it to the staged one
    const dw = convInputs(wide, 900), ds = convInputs(stem, 910);
    const cases: [string, ops.Precision, ops.ConvAlgo, typeof wide, typeof dw, string][] = [
      ['fp32 auto', 'fp32', 'auto', wide, dw, 'fp32 simt-bk8'],
      ['fp32 simt-bk8', 'fp32', 'simt-bk8', wide, dw, 'fp32 simt-bk8'],
      ['fp32 simt-bk16', 'fp32', 'simt-bk16', wide, dw, 'fp32 simt-bk16'],
      ['tf32 auto', 'tf32', 'auto', wide, dw, 'tf32 mma-staged'],
      ['tf32 mma-staged', 'tf32', 'mma-staged', wide, dw, 'tf32 mma-staged'],
      ['tf32 mma-pipelined', 'tf32', 'mma-pipelined', wide, dw, 'tf32 mma-pipelined'],
      ['tf32 mma-pipelined, C = 3', 'tf32', 'mma-pipelined', stem, ds, 'tf32 mma-staged'],
      ['bf16 on float32 tensors', 'bf16', 'auto', wide, dw, 'bf16 mma-staged'],
    ];
    for (const [what, precision, algo, p, d, kernel] of cases) {
      t.same(ran(() => runConv(p, d, { bias: true, relu: true, precision, algo })), { [kernel]: 1 }, `${what}: one launch of ${kernel}`);
    }
    withConvTensors(wide, dw, ({ g, xf, wf, k }) => {
      const xb = k(ops.toBfloat16(xf)), wb = k(ops.toBfloat16(wf));
      const algos: [ops.ConvAlgo, string][] = [['auto', 'bf16 mma-pipelined'], ['mma-pipelined', 'bf16 mma-pipelined'],
        ...(hasWgmma() ? [['wgmma', 'bf16 wgmma'] as [ops.ConvAlgo, string]] : [])];
      for (const [algo, kernel] of algos) {
        t.same(ran(() => k(ops.conv2dBf16Storage(xf, wf, g, { algo }))), { [kernel]: 1 }, `conv2dBf16Storage ${algo}: one launch of ${kernel}`);
        t.same(ran(() => k(ops.conv2d(xb, wb, g, { precision: 'bf16', algo }))), { [kernel]: 1 }, `conv2d on bfloat16 tensors, ${algo}: one launch of ${kernel}`);
      }
    });
  });

  t.test("conv2d 'auto' with run-time tuning: the default kernel's bits, the fastest agreeing kernel after (convTuning)", { skip: cpu ? 'the CPU has one kernel' : false }, async (t) => {
    const tuning = convAutotune(true);
    t.teardown(() => { convAutotune(tuning); clearConvTuning(); });
    clearConvTuning();
    const ran = (fn: () => void): Record<string, number> => withKernelLaunches(fn).launched;
    const wide = CONV_CASES.find((p) => p.c % 8 === 0 && p.k % 2 === 0)!;
    const stem = CONV_CASES[1]!;
    const dw = convInputs(wide, 930), ds = convInputs(stem, 940);
    const shapeOf = (p: typeof wide) => ({ n: p.n, h: p.h, w: p.w, c: p.c, k: p.k, r: p.r, s: p.s, strideH: p.stride, strideW: p.stride, padH: p.pad, padW: p.pad });
    /**
     * The record of the problem just tuned, checked: candidates as offered (labels), the kernels in
     * `mustAgree` admitted (same bits as the default), the widths of one kernel admitted or left out
     * together, and the choice the rule makes.
     */
    const checkRecord = (what: string, family: ConvTuningRecord['family'], p: typeof wide, epilogue: { bias: boolean; residual: boolean; relu: boolean },
      labels: string[], mustAgree: string[]): ConvTuningRecord | undefined => {
      const recs = convTuning().filter((r) => r.family === family && r.device === DEVICE && JSON.stringify(r.shape) === JSON.stringify(shapeOf(p))
        && r.bias === epilogue.bias && r.residual === epilogue.residual && r.relu === epilogue.relu);
      t.equal(recs.length, 1, `${what}: one record of the problem`);
      const r = recs[0];
      if (!r) return undefined;
      t.same(r.candidates.map(label), labels, `${what}: candidates ${labels.join(', ')}, the default first`);
      for (const c of r.candidates) {
        if (c.excluded === undefined) t.ok(c.ms! > 0, `${what}: ${label(c)} gives the default's bits and is timed (${c.ms?.toFixed(4)} ms)`);
        else if (mustAgree.includes(c.kernel)) t.fail(`${what}: ${label(c)} must give the default's bits, but: ${c.excluded}`);
        else t.match(c.excluded, /^(differs from|launch refused)/, `${what}: ${label(c)} left out: ${c.excluded}`);
      }
      for (const kernel of new Set(r.candidates.map((c) => c.kernel))) {
        const widths = r.candidates.filter((c) => c.kernel === kernel);
        if (widths.length > 1) t.equal(new Set(widths.map((c) => c.excluded?.startsWith('differs') ?? false)).size, 1, `${what}: the widths of ${kernel} give the same bits`);
      }
      const admitted = r.candidates.filter((c) => c.excluded === undefined);
      const dflt = r.candidates[0]!;
      const best = admitted.reduce((a, c) => (c.ms! < a.ms! ? c : a));
      const want = best.ms! < dflt.ms! * 0.98 ? best : dflt;
      t.equal(label({ kernel: r.chosen, blockN: r.chosenBlockN }), label(want), `${what}: ${label(want)} chosen (fastest unless within 2% of the default)`);
      return r;
    };
    const ep = { bias: true, residual: true, relu: true };
    const cases: [ops.Precision, ConvTuningRecord['family'], ops.ConvAlgo, string[]][] = [
      ['fp32', 'fp32', 'simt-bk8', ['fp32 simt-bk8', 'fp32 simt-bk16']],
      ['tf32', 'tf32', 'mma-staged', ['tf32 mma-staged', 'tf32 mma-pipelined bn64']],
    ];
    for (const [precision, family, dflt, labels] of cases) {
      const kernels = [...new Set(labels.map((l) => l.replace(/ bn\d+$/, '')))];
      const expected = runConv(wide, dw, { ...ep, scale: true, precision, algo: dflt });
      const first = withKernelLaunches(() => runConv(wide, dw, { ...ep, scale: true, precision }));
      t.same(Array.from(first.result), Array.from(expected), `${precision}: the tuning call returns the default kernel's bits`);
      t.same(Object.keys(first.launched).sort(), [...kernels].sort(), `${precision}: the tuning call runs every candidate`);
      const r = checkRecord(precision, family, wide, ep, labels, kernels);
      const again = withKernelLaunches(() => runConv(wide, dw, { ...ep, scale: true, precision }));
      t.same(again.launched, r ? { [r.chosen]: 1 } : {}, `${precision}: a tuned problem is one launch of ${r?.chosen}`);
      t.same(Array.from(again.result), Array.from(expected), `${precision}: with the same bits`);
    }
    // Only one kernel takes the C = 3 stem in tf32: nothing to tune. bf16 on float32 tensors has one kernel.
    const before = convTuning().length;
    t.same(ran(() => runConv(stem, ds, { bias: true, relu: true, precision: 'tf32' })), { 'tf32 mma-staged': 1 }, 'tf32, C = 3: one launch of the staged kernel');
    t.same(ran(() => runConv(wide, dw, { bias: true, relu: true, precision: 'bf16' })), { 'bf16 mma-staged': 1 }, 'bf16 on float32 tensors: one launch of its kernel');
    t.equal(convTuning().length, before, 'single-candidate problems are not recorded');
    // A new epilogue is a new problem.
    runConv(wide, dw, { bias: true, relu: false, precision: 'fp32' });
    t.equal(convTuning().filter((r) => r.family === 'fp32').length, 2, 'another epilogue is tuned apart');

    // bf16 in memory: mma.sync, and wgmma where the device has it (on a GPU it may differ in bits:
    // then it is left out and 'auto' stays mma.sync).
    withConvTensors(wide, dw, ({ g, xf, wf, k }) => {
      const bias = k(T(dw.bias, [wide.k]));
      const expected = k(ops.conv2dBf16Storage(xf, wf, g, { bias, relu: true, algo: 'mma-pipelined' })).toFloat32Array();
      const labels = ['bf16 mma-pipelined bn64', ...(hasWgmma() ? ['bf16 wgmma bn64'] : [])];
      const first = withKernelLaunches(() => k(ops.conv2dBf16Storage(xf, wf, g, { bias, relu: true })).toFloat32Array());
      t.same(Array.from(first.result), Array.from(expected), "bf16 in memory: the tuning call returns mma.sync's bits");
      if (!hasWgmma()) t.equal(convTuning().filter((r) => r.family === 'bf16-storage').length, 0, 'no wgmma here, one width: nothing to tune, nothing recorded');
      const r = hasWgmma() ? checkRecord('bf16 in memory', 'bf16-storage', wide, { bias: true, residual: false, relu: true }, labels, ['bf16 mma-pipelined']) : undefined;
      if (r) {
        const xb = k(ops.toBfloat16(xf)), wb = k(ops.toBfloat16(wf));
        const again = withKernelLaunches(() => k(ops.conv2d(xb, wb, g, { precision: 'bf16', bias, relu: true })));
        t.same(again.launched, { [r.chosen]: 1 }, `conv2d on bfloat16 tensors reuses the record: one launch of ${r.chosen}`);
        t.same(Array.from(k(ops.bfloat16ToFloat32(again.result)).toFloat32Array()), Array.from(expected), 'with the same bits');
      }
    });

    // 128 output channels: the tensor-core kernels are also tuned at 64 of them per block (the same bits).
    const deep = { name: 'K = 128', n: 1, c: 16, h: 6, w: 6, k: 128, r: 3, s: 3, stride: 1, pad: 1 };
    const dd = convInputs(deep, 950);
    {
      const labels = ['tf32 mma-staged', 'tf32 mma-pipelined bn128', 'tf32 mma-pipelined bn64'];
      const expected = runConv(deep, dd, { ...ep, precision: 'tf32', algo: 'mma-staged' });
      t.same(Array.from(runConv(deep, dd, { ...ep, precision: 'tf32' })), Array.from(expected), "tf32, K = 128: the staged kernel's bits");
      const r = checkRecord('tf32, K = 128', 'tf32', deep, ep, labels, ['tf32 mma-staged', 'tf32 mma-pipelined']);
      const again = withKernelLaunches(() => runConv(deep, dd, { ...ep, precision: 'tf32' }));
      t.same(again.launched, r ? { [r.chosen]: 1 } : {}, `tf32, K = 128: a tuned problem is one launch of ${r ? label({ kernel: r.chosen, blockN: r.chosenBlockN }) : '?'}`);
      t.same(Array.from(again.result), Array.from(expected), 'tf32, K = 128: with the same bits');
    }
    withConvTensors(deep, dd, ({ g, xf, wf, k }) => {
      const expected = k(ops.conv2dBf16Storage(xf, wf, g, { relu: true, algo: 'mma-pipelined' })).toFloat32Array();
      t.same(Array.from(k(ops.conv2dBf16Storage(xf, wf, g, { relu: true })).toFloat32Array()), Array.from(expected), "bf16 in memory, K = 128: mma.sync's bits");
      const labels = ['bf16 mma-pipelined bn128', 'bf16 mma-pipelined bn64', ...(hasWgmma() ? ['bf16 wgmma bn128', 'bf16 wgmma bn64'] : [])];
      checkRecord('bf16 in memory, K = 128', 'bf16-storage', deep, { bias: false, residual: false, relu: true }, labels, ['bf16 mma-pipelined']);
    });

    clearConvTuning();
    t.same(convTuning(), [], 'clearConvTuning forgets them');
    convAutotune(false);
    t.same(ran(() => runConv(wide, dw, { ...ep, precision: 'tf32' })), { 'tf32 mma-staged': 1 }, 'switched off: the default kernel, once');
    t.same(convTuning(), [], 'switched off: nothing tuned');
  });

  t.test('conv2dBf16Storage: bf16 activations in memory, within 2^-8 of the sum of the bf16-rounded inputs', async (t) => {
    if (cpu) {
      const x = T(new Float32Array(2 * 4 * 4 * 8), [2, 4, 4, 8]);
      const w = ops.packConvWeights(T(new Float32Array(8 * 8 * 9), [8, 8, 3, 3]));
      t.throws(() => ops.conv2dBf16Storage(x, w, { outChannels: 8, kernel: [3, 3], stride: [1, 1], padding: [1, 1] }),
        { code: 'ERR_DEVICE_UNAVAILABLE' }, 'a CUDA kernel');
      x.dispose(); w.dispose();
      return;
    }
    // Both kernels of bf16 in memory where the device has them: 'auto' (mma.sync) everywhere,
    // 'wgmma' on compute capability 9.0 (elsewhere it must refuse, not fall back).
    const algos: ops.ConvAlgo[] = hasWgmma() ? ['auto', 'wgmma'] : ['auto'];
    if (!hasWgmma() && process.env.SSL_INV_SKIP_WGMMA !== '1') {
      const x = T(new Float32Array(1 * 4 * 4 * 8), [1, 4, 4, 8]);
      const w = ops.packConvWeights(T(new Float32Array(8 * 8), [8, 8, 1, 1]));
      t.throws(() => ops.conv2dBf16Storage(x, w, { outChannels: 8, kernel: [1, 1], stride: [1, 1], padding: [0, 0] }, { algo: 'wgmma' }),
        { code: 'ERR_DEVICE_UNAVAILABLE' }, "'wgmma' needs compute capability 9.0");
      x.dispose(); w.dispose();
    }
    for (const algo of algos) {
      CONV_CASES.filter((p) => p.c % 8 === 0 && p.k % 2 === 0).forEach((p, i) => {
        const d = convInputs(p, 300 + i * 10);
        const keep: Tensor[] = [];
        const dev = (a: Float32Array, shape: number[]) => { const x = T(a, shape); keep.push(x); return x; };
        try {
          const x = dev(toNhwc(d.x, p.n, p.c, p.h, p.w), [p.n, p.h, p.w, p.c]);
          const packed = ops.packConvWeights(dev(d.w, [p.k, p.c, p.r, p.s]), dev(d.scale, [p.k]));
          keep.push(packed);
          const residual = dev(toNhwc(d.residual, p.n, p.k, d.P, d.Q), [p.n, d.P, d.Q, p.k]);
          const y = ops.conv2dBf16Storage(x, packed, { outChannels: p.k, kernel: [p.r, p.s], stride: [p.stride, p.stride], padding: [p.pad, p.pad] },
            { bias: dev(d.bias, [p.k]), residual, relu: true, algo });
          keep.push(y);
          const out = toNchw(y.toFloat32Array(), p.n, p.k, d.P, d.Q);
          // The reference sums what the kernel reads: x, the folded weights (w * scale in fp32, as the
          // packing computes them) and the residual, each rounded to bf16.
          const per = p.c * p.r * p.s;
          const folded = Float32Array.from(d.w, (v, j) => Math.fround(v * d.scale[Math.floor(j / per)]!));
          const ref = conv2dRef(p, roundBf16(d.x), roundBf16(folded), d.bias);
          const res = roundBf16(d.residual);
          let bad = 0, worst = 0;
          for (let j = 0; j < out.length; j++) {
            const want = Math.max(0, ref.y[j]! + res[j]!);
            const bound = Math.abs(want) * 2 ** -8 + 2e-5 * (ref.mag[j]! + Math.abs(res[j]!));
            const err = Math.abs(out[j]! - want);
            if (!(err <= bound)) bad++;
            worst = Math.max(worst, err / bound);
          }
          t.equal(bad, 0, `${p.name} (${algo}): worst ${worst.toFixed(3)} of the bound`);
        } finally {
          for (const k of keep) k.dispose();
        }
      });
    }
    const x = T(new Float32Array(1 * 4 * 4 * 12), [1, 4, 4, 12]);
    const w = ops.packConvWeights(T(new Float32Array(8 * 12), [8, 12, 1, 1]));
    t.throws(() => ops.conv2dBf16Storage(x, w, { outChannels: 8, kernel: [1, 1], stride: [1, 1], padding: [0, 0] }),
      { code: 'ERR_INVALID_ARGUMENT', message: /C % 8 == 0/ }, 'C = 12 is refused, not rounded up silently');
    x.dispose(); w.dispose();
  });

  t.test('bfloat16 tensors: rounding, padding, and the ops that take them', async (t) => {
    const special = [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN, -Infinity, 3.4e38, 1e-40, -0, 65504.5, -2.5e-39];
    const vals = Float32Array.from([...special, ...randomArray(30, 901)]);
    const x = T(vals, [5, 8]);
    const b = ops.toBfloat16(x, { padLastDimTo: 16 });
    t.equal(b.dtype, 'bfloat16');
    t.same(b.shape, [5, 16]);
    t.equal(b.device, DEVICE, 'stays on its device');
    const bits = b.toArray() as Uint16Array;
    const want = new Uint16Array(5 * 16);
    const u = new Uint32Array(vals.buffer);
    for (let r = 0; r < 5; r++) for (let j = 0; j < 8; j++) want[r * 16 + j] = bf16Bits(u[r * 8 + j]!);
    t.same(Array.from(bits), Array.from(want), 'nearest even, NaN to 0x7FFF, zeros in the padding');
    const back = ops.bfloat16ToFloat32(b);
    t.same(Array.from(back.toFloat32Array()), Array.from(b.toFloat32Array()), 'widened exactly, on the device and on the host');
    t.throws(() => ops.toBfloat16(x, { padLastDimTo: 7 }), { code: 'ERR_INVALID_ARGUMENT' }, 'padding shorter than the row');
    t.throws(() => ops.relu(b), { code: 'ERR_DTYPE_MISMATCH' }, 'a float32 op refuses bfloat16');
    for (const y of [x, b, back]) y.dispose();
    if (cpu) {
      const xc = T(new Float32Array(2 * 4 * 4 * 8), [2, 4, 4, 8]);
      const xb = ops.toBfloat16(xc);
      t.throws(() => ops.maxPool2d(xb, { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }), { code: 'ERR_DTYPE_MISMATCH' }, 'the CPU pools float32');
      for (const y of [xc, xb]) y.dispose();
      return;
    }
    // On a device: conv2d on bfloat16 tensors is the bf16-in-memory kernel, so it gives the bits of
    // conv2dBf16Storage on the same float32 inputs; the pools give those of the widened values.
    const p = { n: 2, c: 16, h: 9, w: 7, k: 24, r: 3, s: 3, stride: 2, pad: 1 };
    const d = convInputs(p, 555);
    const keep: Tensor[] = [];
    const k = <U extends Tensor>(y: U): U => { keep.push(y); return y; };
    try {
      const xf = k(T(toNhwc(d.x, p.n, p.c, p.h, p.w), [p.n, p.h, p.w, p.c]));
      const wf = k(ops.packConvWeights(k(T(d.w, [p.k, p.c, p.r, p.s])), k(T(d.scale, [p.k]))));
      const res = k(T(toNhwc(d.residual, p.n, p.k, d.P, d.Q), [p.n, d.P, d.Q, p.k]));
      const bias = k(T(d.bias, [p.k]));
      const g: ops.ConvGeometry = { outChannels: p.k, kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
      const viaStorage = k(ops.conv2dBf16Storage(xf, wf, g, { bias, residual: res, relu: true })).toFloat32Array();
      const yb = k(ops.conv2d(k(ops.toBfloat16(xf)), k(ops.toBfloat16(wf)), g, { bias, residual: k(ops.toBfloat16(res)), relu: true, precision: 'bf16' }));
      t.equal(yb.dtype, 'bfloat16', 'bfloat16 in, bfloat16 out');
      t.same(Array.from(yb.toFloat32Array()), Array.from(viaStorage), 'conv2d on bfloat16 tensors equals conv2dBf16Storage bit for bit');
      t.throws(() => ops.conv2d(k(ops.toBfloat16(xf)), k(ops.toBfloat16(wf)), g, { bias }), { code: 'ERR_INVALID_ARGUMENT' }, 'bfloat16 tensors take precision bf16');
      t.throws(() => ops.conv2d(k(ops.toBfloat16(xf)), k(ops.toBfloat16(wf)), g, { bias, precision: 'bf16', algo: 'mma-staged' }), { code: 'ERR_INVALID_ARGUMENT' },
        'bfloat16 tensors refuse the tf32 staged kernel');
      const named = k(ops.conv2d(k(ops.toBfloat16(xf)), k(ops.toBfloat16(wf)), g, { bias, residual: k(ops.toBfloat16(res)), relu: true, precision: 'bf16', algo: 'mma-pipelined' }));
      t.same(Array.from(named.toFloat32Array()), Array.from(viaStorage), "algo 'mma-pipelined' is 'auto'");
      if (hasWgmma()) {
        const viaStorageW = k(ops.conv2dBf16Storage(xf, wf, g, { bias, residual: res, relu: true, algo: 'wgmma' })).toFloat32Array();
        const yw = k(ops.conv2d(k(ops.toBfloat16(xf)), k(ops.toBfloat16(wf)), g, { bias, residual: k(ops.toBfloat16(res)), relu: true, precision: 'bf16', algo: 'wgmma' }));
        t.same(Array.from(yw.toFloat32Array()), Array.from(viaStorageW), "algo 'wgmma' on bfloat16 tensors equals conv2dBf16Storage with 'wgmma' bit for bit");
      }
      t.throws(() => ops.conv2d(xf, wf, g, { bias, precision: 'bf16', algo: 'wgmma' }), { code: 'ERR_INVALID_ARGUMENT' }, "'wgmma' refuses float32 tensors");
      const pool = { kernel: [3, 3] as [number, number], stride: [2, 2] as [number, number], padding: [1, 1] as [number, number] };
      const wide = k(ops.bfloat16ToFloat32(yb));
      t.same(Array.from(k(ops.maxPool2d(yb, pool)).toFloat32Array()), Array.from(k(ops.maxPool2d(wide, pool)).toFloat32Array()), 'max pool of bfloat16');
      t.same(Array.from(k(ops.globalAvgPool(yb)).toFloat32Array()), Array.from(k(ops.globalAvgPool(wide)).toFloat32Array()), 'average pool of bfloat16 (float32 out)');
    } finally {
      for (const y of keep) y.dispose();
    }
  });

  t.test('matmul with transposes and epilogue', { skip: cpu ? false : 'the CUDA matmul has no residual epilogue (see its own cases)' }, async (t) => {
    const shapes: [number, number, number][] = [[1, 1, 1], [5, 7, 3], [37, 45, 300], [14, 32, 256], [15, 33, 257], [3, 100, 700], [200, 3, 50]];
    shapes.forEach(([M, N, K], i) => {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const A = randomArray(M * K, 500 + i), B = randomArray(K * N, 600 + i);
        const bias = randomArray(N, 700 + i), res = randomArray(M * N, 800 + i);
        const a = T(A, ta ? [K, M] : [M, K]), b = T(B, tb ? [N, K] : [K, N]);
        const bt = T(bias, [N]), rt = T(res, [M, N]);
        const c = ops.matmul(a, b, { transA: ta, transB: tb, bias: bt, residual: rt, relu: true });
        const out = c.toFloat32Array();
        const ref = new Float64Array(M * N), mag = new Float64Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let s = 0, g = 0;
          for (let k = 0; k < K; k++) {
            const v = (ta ? A[k * M + m]! : A[m * K + k]!) * (tb ? B[n * K + k]! : B[k * N + n]!);
            s += v; g += Math.abs(v);
          }
          ref[m * N + n] = Math.max(0, s + bias[n]! + res[m * N + n]!);
          mag[m * N + n] = g + Math.abs(bias[n]!) + Math.abs(res[m * N + n]!);
        }
        const r = check(out, ref, FP32_RTOL, 1e-7, mag);
        t.ok(r.ok, `[${M}x${K}]x[${K}x${N}] ta=${ta} tb=${tb}: worst ${r.worst.toFixed(3)}${r.firstBad ? ' ' + r.firstBad : ''}`);
        for (const x of [a, b, bt, rt, c]) x.dispose();
      }
    });
  });

  t.test('matmul (cuBLAS, strict fp32) with transposes, bias and relu', { skip: cpu ? 'CPU: covered with epilogues above' : false }, async (t) => {
    const shapes: [number, number, number][] = [[1, 1, 1], [5, 7, 3], [37, 45, 300], [15, 33, 257], [200, 3, 50], [4, 6, 0]];
    shapes.forEach(([M, N, K], i) => {
      for (const [ta, tb, withBias, relu] of [[false, false, false, false], [false, true, false, false], [true, false, true, true],
        [true, true, false, true], [false, true, true, false]] as const) {
        const A = randomArray(M * K, 500 + i), B = randomArray(K * N, 600 + i), bias = randomArray(N, 700 + i);
        const a = T(A, ta ? [K, M] : [M, K]), b = T(B, tb ? [N, K] : [K, N]), bt = T(bias, [N]);
        const c = ops.matmul(a, b, { transA: ta, transB: tb, ...(withBias ? { bias: bt } : {}), relu });
        const out = c.toFloat32Array();
        const ref = new Float64Array(M * N), mag = new Float64Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let s = withBias ? bias[n]! : 0, g = withBias ? Math.abs(bias[n]!) : 0;
          for (let k = 0; k < K; k++) {
            const v = (ta ? A[k * M + m]! : A[m * K + k]!) * (tb ? B[n * K + k]! : B[k * N + n]!);
            s += v; g += Math.abs(v);
          }
          ref[m * N + n] = relu ? Math.max(0, s) : s;
          mag[m * N + n] = g;
        }
        const r = check(out, ref, FP32_RTOL, 1e-7, mag);
        t.ok(r.ok, `[${M}x${K}]x[${K}x${N}] ta=${ta} tb=${tb} bias=${withBias} relu=${relu}: worst ${r.worst.toFixed(3)}${r.firstBad ? ' ' + r.firstBad : ''}`);
        for (const x of [a, b, bt, c]) x.dispose();
      }
    });
    const a = T(randomArray(6, 1), [2, 3]), b = T(randomArray(12, 2), [3, 4]), r = T(randomArray(8, 3), [2, 4]);
    t.throws(() => ops.matmul(a, b, { residual: r }), { code: 'ERR_INVALID_ARGUMENT' }, 'the residual epilogue is refused, not skipped');
    for (const x of [a, b, r]) x.dispose();
  });

  t.test('dgemm (float64) with transposes', async (t) => {
    const shapes: [number, number, number][] = [[1, 1, 1], [5, 9, 3], [37, 45, 300], [15, 17, 257], [200, 3, 50], [4, 6, 0]];
    shapes.forEach(([M, N, K], i) => {
      for (const [ta, tb] of [[false, false], [true, true], [true, false], [false, true]] as const) {
        const A = Float64Array.from(randomArray(M * K, 1500 + i), (v) => v * (1 + 1e-9));
        const B = Float64Array.from(randomArray(K * N, 1600 + i), (v) => v / 3);
        const c = dgemm(T(A, ta ? [K, M] : [M, K]), T(B, tb ? [N, K] : [K, N]), { transA: ta, transB: tb });
        t.equal(c.device, DEVICE, 'the result stays on the device');
        const out = c.toArray() as Float64Array;
        const ref = new Float64Array(M * N), mag = new Float64Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let s = 0, g = 0;
          for (let k = 0; k < K; k++) {
            const v = (ta ? A[k * M + m]! : A[m * K + k]!) * (tb ? B[n * K + k]! : B[k * N + n]!);
            s += v; g += Math.abs(v);
          }
          ref[m * N + n] = s; mag[m * N + n] = g;
        }
        const r = check(out, ref, 1e-14, 0, mag);
        t.ok(r.ok, `[${M}x${K}]x[${K}x${N}] ta=${ta} tb=${tb}: worst ${r.worst.toFixed(3)}`);
      }
    });
    t.throws(() => dgemm(T(new Float64Array(6), [2, 3]), T(new Float64Array(6), [2, 3])), { code: 'ERR_SHAPE_MISMATCH' });
  });

  t.test('multinomialLossGrad (float64) against a float64 reference', async (t) => {
    // P problems share z's rows; -1 marks rows outside a problem. K = 101 is Caltech101's class count.
    const cases: [number, number, number, number][] = [[1, 1, 2, 1], [37, 1, 10, 3], [700, 3, 10, 5], [300, 2, 101, 8], [90, 4, 3, 300]];
    cases.forEach(([n, P, K, amp], ci) => {
      const PK = P * K;
      const z = Float64Array.from(randomArray(n * PK, 4000 + ci, amp));
      const bias = Float64Array.from(randomArray(PK, 4100 + ci));
      const y = Int32Array.from(randomArray(P * n, 4200 + ci), (v, i) => (v < -0.5 && i % 7 !== 0 ? -1 : Math.abs(Math.floor(v * 1e6)) % K));
      const Y = tensor(y, [P, n]);
      const r = multinomialLossGrad(T(z, [n, PK]), T(bias, [PK]), DEVICE === 'cpu' ? Y : Y.to(DEVICE), K);
      t.equal(r.g.device, DEVICE, 'g stays on the device');
      const g = r.g.toArray() as Float64Array;
      const refG = new Float64Array(n * PK), refLoss = new Float64Array(P), refGb = new Float64Array(PK);
      const lossMag = new Float64Array(P), gbMag = new Float64Array(PK);
      for (let i = 0; i < n; i++) for (let p = 0; p < P; p++) {
        const yi = y[p * n + i]!;
        if (yi < 0) continue;
        const raw = Array.from({ length: K }, (_, k) => z[i * PK + p * K + k]! + bias[p * K + k]!);
        const m = Math.max(...raw);
        const se = raw.reduce((a, v) => a + Math.exp(v - m), 0);
        refLoss[p] += Math.log(se) + m - raw[yi]!;
        lossMag[p] += 2 * Math.max(...raw.map(Math.abs)) + Math.log(K) + 1;
        for (let k = 0; k < K; k++) {
          const gk = Math.exp(raw[k]! - m) / se - (k === yi ? 1 : 0);
          refG[i * PK + p * K + k] = gk;
          refGb[p * K + k] += gk;
          gbMag[p * K + k] += Math.abs(gk);
        }
      }
      const rg = check(g, refG, 1e-13, 1e-300);
      t.ok(rg.ok, `n=${n} P=${P} K=${K}: g worst ${rg.worst.toExponential(2)}${rg.firstBad ? ' ' + rg.firstBad : ''}`);
      const rl = check(r.loss, refLoss, 1e-13, 0, lossMag);
      t.ok(rl.ok, `n=${n} P=${P} K=${K}: loss worst ${rl.worst.toExponential(2)}`);
      const rb = check(r.gb, refGb, 1e-13, 1e-300, gbMag);
      t.ok(rb.ok, `n=${n} P=${P} K=${K}: gb worst ${rb.worst.toExponential(2)}`);
    });
    const bad = tensor(Int32Array.from([0, 1, 5, 0]), [2, 2]);
    t.throws(() => multinomialLossGrad(T(new Float64Array(2 * 6), [2, 6]), T(new Float64Array(6), [6]), DEVICE === 'cpu' ? bad : bad.to(DEVICE), 3),
      { code: 'ERR_INVALID_ARGUMENT', message: /label 5 outside \[-1, 3\) at problem 1, row 0/ }, 'a label past K names its problem and row');
  });

  t.test('linear matches x W^T + b', async (t) => {
    const [N, I, O] = [6, 70, 33];
    const X = randomArray(N * I, 41), W = randomArray(O * I, 42), B = randomArray(O, 43);
    const y = ops.linear(T(X, [N, I]), T(W, [O, I]), T(B, [O])).toFloat32Array();
    const ref = new Float64Array(N * O), mag = new Float64Array(N * O);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
      let s = B[o]!, g = Math.abs(B[o]!);
      for (let i = 0; i < I; i++) { s += X[n * I + i]! * W[o * I + i]!; g += Math.abs(X[n * I + i]! * W[o * I + i]!); }
      ref[n * O + o] = s; mag[n * O + o] = g;
    }
    const r = check(y, ref, FP32_RTOL, 1e-7, mag);
    t.ok(r.ok, `worst ${r.worst.toFixed(3)}`);
  });

  t.test('max pool 3x3/2 pad 1 (floor), 2x2/2, NaN propagation', async (t) => {
    const cases = [[1, 3, 7, 7, 3, 2, 1], [2, 5, 8, 9, 3, 2, 1], [1, 4, 112, 111, 3, 2, 1], [1, 2, 6, 6, 2, 2, 0], [1, 3, 1, 1, 3, 2, 1]] as const;
    cases.forEach(([n, c, h, w, k, s, p], i) => {
      const x = randomArray(n * c * h * w, 900 + i);
      if (i === 1) { x[5] = NaN; x[77] = NaN; }
      const P = outSize(h, k, s, p), Q = outSize(w, k, s, p);
      const y = ops.maxPool2d(T(toNhwc(x, n, c, h, w), [n, h, w, c]), { kernel: [k, k], stride: [s, s], padding: [p, p] });
      t.same(y.shape, [n, P, Q, c], 'floor output size');
      const r = check(toNchw(y.toFloat32Array(), n, c, P, Q), maxPoolRef(x, n, c, h, w, k, s, p), 0, 0);
      t.ok(r.ok, `[${n},${c},${h},${w}] k${k}/s${s}/p${p}: exact${r.firstBad ? ' ' + r.firstBad : ''}`);
    });
    t.throws(() => ops.maxPool2d(T(new Float32Array(16), [1, 4, 4, 1]), { kernel: [3, 3], stride: [2, 2], padding: [2, 2] }),
      { code: 'ERR_INVALID_ARGUMENT' }, 'padding over half the kernel');
  });

  t.test('global average pool', async (t) => {
    const [n, c, h, w] = [3, 37, 7, 5];
    const x = randomArray(n * c * h * w, 1000);
    const y = ops.globalAvgPool(T(toNhwc(x, n, c, h, w), [n, h, w, c])).toFloat32Array();
    const ref = new Float64Array(n * c);
    for (let i = 0; i < n * c; i++) { let s = 0; for (let j = 0; j < h * w; j++) s += x[i * h * w + j]!; ref[i] = s / (h * w); }
    const r = check(y, ref, FP32_RTOL, 1e-7);
    t.ok(r.ok, `worst ${r.worst.toFixed(3)}`);
  });

  t.test('batch norm inference, relu, add', async (t) => {
    const [rows, c] = [50, 19];
    const x = randomArray(rows * c, 1100);
    const g = randomArray(c, 1101), b = randomArray(c, 1102), m = randomArray(c, 1103);
    const v = randomArray(c, 1104).map((q) => 0.1 + Math.abs(q));
    const y = ops.batchNormInference(T(x, [rows, c]), {
      weight: T(g, [c]), bias: T(b, [c]), runningMean: T(m, [c]), runningVar: T(v, [c]), eps: 1e-5,
    }).toFloat32Array();
    const ref = new Float64Array(rows * c);
    for (let i = 0; i < rows; i++) for (let j = 0; j < c; j++) ref[i * c + j] = (x[i * c + j]! - m[j]!) / Math.sqrt(v[j]! + 1e-5) * g[j]! + b[j]!;
    t.ok(check(y, ref, FP32_RTOL, 1e-6).ok, 'batch norm');
    const xr = randomArray(100, 1200); xr[3] = NaN;
    const relu = ops.relu(T(xr, [100])).toFloat32Array();
    t.ok(check(relu, Array.from(xr, (q) => (Number.isNaN(q) ? NaN : Math.max(0, q))), 0, 0).ok, 'relu keeps NaN');
    const a2 = randomArray(100, 1201);
    const sum = ops.add(T(xr, [100]), T(a2, [100]), { relu: true }).toFloat32Array();
    t.ok(check(sum, Array.from(xr, (q, i) => Math.max(0, Math.fround(q + a2[i]!)) || (Number.isNaN(q) ? NaN : 0)), 0, 0).ok, 'add + relu');
    t.throws(() => ops.add(T(xr, [100]), T(a2, [10, 10])), { code: 'ERR_SHAPE_MISMATCH' });
  });

  t.test('layout round trip is bit-exact', async (t) => {
    const x = randomArray(2 * 5 * 7 * 3, 1300);
    const nhwc = ops.nchwToNhwc(T(x, [2, 5, 7, 3]));
    t.same(nhwc.shape, [2, 7, 3, 5]);
    t.same(Array.from(nhwc.toFloat32Array()), Array.from(toNhwc(x, 2, 5, 7, 3)));
    t.same(Array.from(ops.nhwcToNchw(nhwc).toFloat32Array()), Array.from(x));
  });

  t.test('mocoLoss against float64', async (t) => {
    // Cases 4 and 5 are MoCo-like: unit rows, the positive key close to its query, so the positive
    // term carries real probability (with random keys it is negligible and would test nothing).
    const cases: [number, number, number, number, number, boolean][] = [
      [5, 17, 300, 0.2, 1, false], [8, 128, 1000, 0.07, 1, false], [3, 9, 5000, 0.5, 4, false],
      [6, 128, 200, 0.2, 1, true], [4, 33, 2000, 0.07, 1, true],
      // Three column blocks of the CPU kernel (4096) and a sharp soft-max over random keys: each
      // row's maximum grows from block to block, so the online rescaling of the running sums counts.
      [3, 16, 9000, 0.05, 1, false]];
    cases.forEach(([N, D, K, temp, amp, moco], i) => {
      const q = randomArray(N * D, 3000 + i, amp), kp = randomArray(N * D, 3100 + i, amp), queue = randomArray(D * K, 3200 + i, amp);
      if (moco) {
        for (let j = 0; j < N * D; j++) kp[j] = q[j]! + 0.1 * kp[j]!;
        unitRows(q, N, D); unitRows(kp, N, D);
        for (let c = 0; c < K; c++) { let s = 0; for (let r = 0; r < D; r++) s += queue[r * K + c]! ** 2; for (let r = 0; r < D; r++) queue[r * K + c] = queue[r * K + c]! / Math.sqrt(s); }
      }
      const { loss, dq } = ops.mocoLoss(T(q, [N, D]), T(kp, [N, D]), T(queue, [D, K]), temp);
      const ref = mocoLossRef(q, kp, queue, N, D, K, temp);
      const rl = check(loss.toFloat32Array(), [ref.loss], FP32_RTOL, 1e-7, [ref.lossMag]);
      t.ok(rl.ok, `${moco ? 'MoCo-like ' : ''}N=${N} D=${D} K=${K} T=${temp}: loss ${loss.toFloat32Array()[0]} vs ${ref.loss}, worst ${rl.worst.toFixed(3)}`);
      const rg = check(dq.toFloat32Array(), ref.dq, FP32_RTOL, 1e-9, ref.dqMag);
      t.ok(rg.ok, `N=${N} D=${D} K=${K}: dq worst ${rg.worst.toFixed(3)}${rg.firstBad ? ' ' + rg.firstBad : ''}`);
    });
  });

  t.test('results do not depend on the thread count', { skip: cpu ? false : 'CPU threads' }, async (t) => {
    const p = CONV_CASES[10]!;
    const d = convInputs(p, 77);
    const threads = native().info().threads;
    const a = runConv(p, d, { bias: true, relu: true });
    ops.setNumThreads(1);
    const b = runConv(p, d, { bias: true, relu: true });
    ops.setNumThreads(threads);
    t.same(Array.from(a), Array.from(b), 'bitwise equal with 1 and all threads');
  });

  t.test('argument errors are typed', async (t) => {
    const x = T(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
    const w = ops.packConvWeights(T(new Float32Array(8 * 3 * 3 * 3), [8, 3, 3, 3]));
    const g = { outChannels: 8, kernel: [3, 3] as [number, number], stride: [1, 1] as [number, number], padding: [1, 1] as [number, number] };
    t.throws(() => ops.conv2d(x, w, { ...g, outChannels: 9 }), { code: 'ERR_SHAPE_MISMATCH' }, 'packed weights of another shape');
    t.throws(() => ops.conv2d(x, w, g, { algo: 'fast' as ops.ConvAlgo }), { code: 'ERR_INVALID_ARGUMENT' }, 'an unknown algo');
    if (cpu) t.throws(() => ops.conv2d(x, w, g, { algo: 'simt-bk16' }), { code: 'ERR_INVALID_ARGUMENT' }, 'the CPU has one kernel');
    else {
      t.throws(() => ops.conv2d(x, w, g, { algo: 'simt-bk16', precision: 'tf32' }), { code: 'ERR_INVALID_ARGUMENT' }, 'an fp32 variant with tf32');
      t.throws(() => ops.conv2d(x, w, g, { algo: 'mma-pipelined' }), { code: 'ERR_INVALID_ARGUMENT' }, 'a tf32 variant with fp32');
      t.throws(() => ops.conv2d(x, w, g, { algo: 'mma-staged', precision: 'bf16' }), { code: 'ERR_INVALID_ARGUMENT' }, 'bf16 takes auto');
    }
    t.ok(ops.conv2d(x, w, g, { algo: 'auto' }), "algo 'auto' runs everywhere");
    t.throws(() => ops.conv2d(x, w, { ...g, stride: [0, 1] }), { code: 'ERR_INVALID_ARGUMENT' });
    t.throws(() => ops.conv2d(x, w, { ...g, kernel: [9, 9] }), /./);
    t.throws(() => ops.conv2d(T(new Float64Array(96), [2, 4, 4, 3]), w, g), { code: 'ERR_DTYPE_MISMATCH' });
    t.throws(() => ops.conv2d(x, w, g, { residual: T(new Float32Array(3), [3]) }), { code: 'ERR_SHAPE_MISMATCH' });
    t.throws(() => ops.matmul(T(new Float32Array(6), [2, 3]), T(new Float32Array(6), [2, 3])), { code: 'ERR_SHAPE_MISMATCH' });
    x.dispose();
    t.throws(() => ops.conv2d(x, w, g), { code: 'ERR_TENSOR_DISPOSED' });
  });
}
