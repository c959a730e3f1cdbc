/**
 * The CUDA convolution's kernel variants, timed side by side on one GPU, to decide what
 * ConvAlgo 'auto' should run (native/cuda/conv2d.cu PickSimt) from measurements rather than guesses.
 *
 *   node build-bench/bench/device/conv-tune.js [--device cuda:0] [--batch 256] [--shapes 4,5,11]
 *        [--no-net] [--no-bf16] [--iters 10] [--torch torch.json] [--out FILE]
 *
 * Variants: fp32 'simt-bk8' / 'simt-bk16' and tf32 'mma-staged' / 'mma-pipelined', each beside its
 * precision's 'auto' (which run-time tuning points at the fastest variant with the default's bits,
 * per shape; its choices are written as conv_tuning; SSL_INV_CONV_AUTOTUNE=0 times the plain default).
 * 1. Bits: on each shape at batch 2, every variant's output equals its precision's 'auto' bit for bit
 *    (they sum the same terms in the same order; the op table checks it on odd shapes too).
 * 2. ResNet-50 at batch 256, 224 x 224, img/s with each variant for every convolution, all variants
 *    once and then all again, so that clock drift shows as a difference between the two rounds
 *    rather than between the variants.
 * 3. Each distinct ResNet-50 convolution (bench-util CONV_SHAPES) with the network's epilogue (bias
 *    + ReLU): ms and TFLOP/s per variant, and which is faster. The first shape is timed again at the
 *    end (drift check).
 * 4. The bf16 tier on the same shapes: the current bf16 path (fp32 activations rounded while staged,
 *    ops.conv2d precision 'bf16') and the bf16-in-memory kernels (native/cuda/conv2d_pipelined.cu,
 *    and on compute capability 9.0 native/cuda/conv2d_wgmma.cu; each timed alone with CUDA events;
 *    the stem's 3 channels padded to 8), beside PyTorch's bf16 channels-last cuDNN time from
 *    --torch FILE (torch_baseline.py, same run) when given. The network round (2.) also runs
 *    bfloat16 activations through each of them.
 * Prints a table; writes everything to --out (default bench/results/<date>-<card>-conv-tune.json).
 * `--device cpu --batch 2 --iters 1` dry-runs the script (the CPU has one kernel, 'auto'); with the
 * emulated-device addon (SSL_INV_ADDON=build-emu/Release/ssl_inv.node, see test/cuda-emu/addon-emu.test.ts),
 * `--batch 1 --shapes 19,22 --iters 1 --no-net` dry-runs every GPU branch in about 90 s.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convAutotune, convTuning, cudaInfo, resolveDevice } from '../../src/device';
import { ResNetFeatures } from '../../src/nn/resnet';
import * as ops from '../../src/ops';
import { native } from '../../src/native';
import { CONV_SHAPES, onDevice, randomF32, randomParams, timeLoop } from './bench-util';
import { withKernelLaunches } from '../../test/helpers/kernel-launches';
import { runsWgmma } from '../../test/helpers/wgmma';

const argv = process.argv.slice(2);
const arg = (n: string) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
/** Set by main() once the device is checked. */
let DEVICE = 'cpu';
const BATCH = Number(arg('--batch') ?? 256);
const ITERS = Number(arg('--iters') ?? 10);
/** A kernel variant: a precision and an algo of it; `key` names it in the results ('fp32:simt-bk16'). */
interface Variant { precision: ops.Precision; algo: ops.ConvAlgo; key: string; storage?: boolean }
const variant = (precision: ops.Precision, algo: ops.ConvAlgo): Variant => ({ precision, algo, key: `${precision}:${algo}` });
/** Whether DEVICE runs the sm_90a wgmma convolution (test/helpers/wgmma.ts). */
const hasWgmma = () => runsWgmma(DEVICE);
/** The variants timed: all of them on a GPU; on the CPU (a dry run of this script's plumbing) its one kernel. */
let VARIANTS: Variant[] = [
  variant('fp32', 'auto'), variant('fp32', 'simt-bk8'), variant('fp32', 'simt-bk16'),
  variant('tf32', 'auto'), variant('tf32', 'mma-staged'), variant('tf32', 'mma-pipelined'),
];
const log = (m: string) => process.stderr.write(`${m}\n`);
const failures: string[] = [];

function record(ok: boolean, what: string): void {
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${what}\n`);
  if (!ok) failures.push(what);
}

type Shape = (typeof CONV_SHAPES)[number];

/** x, packed weights, bias and the geometry of one shape at batch n. */
function convInputs([cin, cout, k, s, h]: Shape, n: number) {
  const pad = Math.floor(k / 2);
  const x = onDevice(DEVICE, randomF32(n * h * h * cin, 5), [n, h, h, cin]);
  const raw = onDevice(DEVICE, randomF32(cout * cin * k * k, 6, 0.1), [cout, cin, k, k]);
  const w = ops.packConvWeights(raw);
  raw.dispose();
  const bias = onDevice(DEVICE, randomF32(cout, 7), [cout]);
  const g: ops.ConvGeometry = { outChannels: cout, kernel: [k, k], stride: [s, s], padding: [pad, pad] };
  const q = Math.floor((h + 2 * pad - k) / s) + 1;
  return { x, w, bias, g, flops: 2 * n * q * q * cout * cin * k * k, dispose: () => { x.dispose(); w.dispose(); bias.dispose(); } };
}

function checkBits(shapes: Shape[]): void {
  for (const sh of shapes) {
    const c = convInputs(sh, 2);
    const run = (v: Variant) => {
      const y = ops.conv2d(c.x, c.w, c.g, { bias: c.bias, relu: true, precision: v.precision, algo: v.algo });
      try { return y.toFloat32Array(); } finally { y.dispose(); }
    };
    for (const v of VARIANTS.filter((x) => x.algo !== 'auto')) {
      const ref = run(variant(v.precision, 'auto')), out = run(v);
      let diff = 0;
      for (let i = 0; i < ref.length; i++) if (out[i] !== ref[i] && !(Number.isNaN(out[i]) && Number.isNaN(ref[i]))) diff++;
      record(diff === 0, `${sh.join('/')}: ${v.key} equals ${v.precision}:auto bit for bit (${diff} of ${ref.length} differ)`);
    }
    c.dispose();
  }
}

/** Each network variant's img/s per round, and the convolution kernels its first round launched. */
async function network(): Promise<{ rates: Record<string, number[]>; kernels: Record<string, Record<string, number>> }> {
  const params = randomParams('resnet50', 41);
  const x = onDevice(DEVICE, randomF32(BATCH * 3 * 224 * 224, 42), [BATCH, 3, 224, 224]);
  const rates: Record<string, number[]> = {};
  const kernels: Record<string, Record<string, number>> = {};
  // The whole network also in bf16 (activations in float32, as the staged kernel reads them) and
  // with bfloat16 activations (the bf16-in-memory kernel), beside the fp32 and tf32 variants.
  const netVariants: Variant[] = DEVICE === 'cpu' ? VARIANTS
    : [...VARIANTS, variant('bf16', 'auto'), { ...variant('bf16', 'auto'), key: 'bf16:bfloat16-activations', storage: true },
      ...(hasWgmma() ? [{ ...variant('bf16', 'wgmma'), key: 'bf16:bfloat16-activations-wgmma', storage: true }] : [])];
  for (let round = 0; round < 2; round++) {
    for (const v of netVariants) {
      const net = await ResNetFeatures.load('resnet50', params, v.storage
        ? { device: DEVICE, precision: 'bf16', activations: 'bfloat16', convAlgo: v.algo }
        : { device: DEVICE, precision: v.precision, convAlgo: v.algo });
      const { result: ms, launched } = withKernelLaunches(() => timeLoop(DEVICE, () => net.forward(x).dispose(), ITERS));
      net.dispose();
      (rates[v.key] ??= []).push(Math.round(BATCH / (ms / 1e3) * 10) / 10);
      kernels[v.key] ??= launched;
      const ran = Object.entries(launched).map(([k, n]) => `${n} x ${k}`).join(', ');
      log(`resnet50 b${BATCH} ${v.key} (round ${round + 1}): ${rates[v.key]!.at(-1)} img/s${round === 0 && ran ? ` (${ran})` : ''}`);
    }
  }
  x.dispose();
  return { rates, kernels };
}

function shapes(list: Shape[]): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const timeShape = (sh: Shape) => {
    const c = convInputs(sh, BATCH);
    const row: Record<string, unknown> = { cin: sh[0], cout: sh[1], k: sh[2], stride: sh[3], h: sh[4] };
    for (const v of VARIANTS) {
      const ms = timeLoop(DEVICE, () => ops.conv2d(c.x, c.w, c.g, { bias: c.bias, relu: true, precision: v.precision, algo: v.algo }).dispose(), ITERS);
      row[`${v.key}_ms`] = Math.round(ms * 1e4) / 1e4;
      row[`${v.key}_tflops`] = Math.round(c.flops / (ms * 1e-3) / 1e12 * 10) / 10;
    }
    c.dispose();
    return row;
  };
  for (const sh of list) {
    const row = timeShape(sh);
    // The fastest named variant of each precision.
    for (const precision of [...new Set(VARIANTS.map((v) => v.precision))]) {
      const named = VARIANTS.filter((v) => v.precision === precision && v.algo !== 'auto');
      if (named.length) row[`${precision}_best`] = named.reduce((a, b) => ((row[`${b.key}_ms`] as number) < (row[`${a.key}_ms`] as number) ? b : a)).algo;
    }
    log(`conv ${sh.join('/')}: ${VARIANTS.map((v) => `${v.key} ${row[`${v.key}_ms`]} ms`).join(', ')}`);
    rows.push(row);
  }
  const again = timeShape(list[0]!);
  log(`drift check ${list[0]!.join('/')}: ${VARIANTS.map((v) => `${v.key} ${again[`${v.key}_ms`]} ms`).join(', ')}`);
  rows.push({ ...again, driftCheck: true });
  return rows;
}

/** ms of the current bf16 path and of the bf16-in-memory kernel (kernel alone) per shape. */
function bf16Tier(list: Shape[], torch: Record<string, number>[] | undefined): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const sh of list) {
    const [cin, cout, k, s, h] = sh;
    const row: Record<string, unknown> = { cin, cout, k, stride: s, h };
    const c = convInputs(sh, BATCH);
    row.bf16_ms = Math.round(timeLoop(DEVICE, () => ops.conv2d(c.x, c.w, c.g, { bias: c.bias, relu: true, precision: 'bf16' }).dispose(), ITERS) * 1e4) / 1e4;
    const flops = c.flops;
    // The bf16-in-memory kernel needs C % 8 == 0: the stem's input and filter get zero channels (the
    // other shapes reuse their inputs: making a 0.8 GB input on the host takes seconds).
    const padded = cin % 8 === 0 ? c : convInputs([Math.ceil(cin / 8) * 8, cout, k, s, h], BATCH);
    const g = padded.g;
    const opts = { outChannels: g.outChannels, kernelH: k, kernelW: k, strideH: s, strideW: s, padH: g.padding[0], padW: g.padding[1], bias: padded.bias.handle, relu: true };
    row.bf16nhwc_ms = Math.round(native().benchConv2dBf16Nhwc(padded.x.handle, padded.w.handle, opts, ITERS) * 1e4) / 1e4;
    row.bf16nhwc_tflops = Math.round(flops / ((row.bf16nhwc_ms as number) * 1e-3) / 1e12 * 10) / 10;
    if (hasWgmma()) {
      row.bf16wgmma_ms = Math.round(native().benchConv2dBf16Nhwc(padded.x.handle, padded.w.handle, { ...opts, algo: 'wgmma' }, ITERS) * 1e4) / 1e4;
      row.bf16wgmma_tflops = Math.round(flops / ((row.bf16wgmma_ms as number) * 1e-3) / 1e12 * 10) / 10;
    }
    if (padded !== c) padded.dispose();
    c.dispose();
    const t = torch?.find((r) => r.cin === cin && r.cout === cout && r.k === k && r.stride === s && r.h === h);
    if (t) row.torch_bf16_ms = t.bf16_ms;
    log(`bf16 ${sh.join('/')}: staged ${row.bf16_ms} ms, in memory ${row.bf16nhwc_ms} ms${row.bf16wgmma_ms !== undefined ? `, wgmma ${row.bf16wgmma_ms} ms` : ''}${t ? `, cuDNN ${t.bf16_ms} ms` : ''}`);
    rows.push(row);
  }
  return rows;
}

async function main(): Promise<void> {
  DEVICE = resolveDevice(arg('--device') ?? 'cuda:0', '--device');
  if (DEVICE === 'cpu') VARIANTS = [variant('fp32', 'auto')];
  const card = cudaInfo().devices[Number(DEVICE.split(':')[1])]?.name ?? 'unknown';
  const pick = arg('--shapes')?.split(',').map(Number);
  const list = pick ? pick.map((i) => CONV_SHAPES[i]!).filter(Boolean) : CONV_SHAPES;
  const result: Record<string, unknown> = { date: new Date().toISOString(), device: DEVICE, card, batch: BATCH, iters: ITERS, variants: VARIANTS.map((v) => v.key) };
  checkBits(list);
  if (!argv.includes('--no-net')) {
    const { rates, kernels } = await network();
    result.resnet50_img_s = rates;
    result.resnet50_conv_kernels = kernels;
  }
  result.conv_shapes = shapes(list);
  const torchFile = arg('--torch');
  const torch = torchFile && fs.existsSync(torchFile)
    ? (JSON.parse(fs.readFileSync(torchFile, 'utf8')) as { conv_shapes?: Record<string, number>[] }).conv_shapes : undefined;
  if (DEVICE !== 'cpu' && !argv.includes('--no-bf16')) result.bf16_tier = bf16Tier(list, torch);
  // What run-time tuning chose for the 'auto' variants above (src/device.ts convAutotune).
  result.conv_autotune = convAutotune();
  result.conv_tuning = convTuning();
  result.failures = failures;
  const slug = card.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const out = arg('--out') ?? path.join('bench', 'results', `${new Date().toISOString().slice(0, 10)}-${slug}-conv-tune.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  const rows = (result.conv_shapes as Record<string, unknown>[]).filter((r) => !r.driftCheck);
  const lines = [`| conv (Cin/Cout/k/s/H) | ${VARIANTS.map((v) => `${v.key} ms`).join(' | ')} |`, `|---|${VARIANTS.map(() => '---|').join('')}`];
  for (const r of rows) lines.push(`| ${r.cin}/${r.cout}/${r.k}/${r.stride}/${r.h} | ${VARIANTS.map((v) => r[`${v.key}_ms`]).join(' | ')} |`);
  const tier = result.bf16_tier as Record<string, number>[] | undefined;
  if (tier) {
    // The faster of the two bf16-in-memory kernels (mma.sync, wgmma where present) against cuDNN.
    const best = (r: Record<string, number>) => Math.min(r.bf16nhwc_ms!, r.bf16wgmma_ms ?? Infinity);
    lines.push('', '| conv (Cin/Cout/k/s/H) | bf16 staged ms | bf16 in memory ms | wgmma ms | cuDNN bf16 ms | best / cuDNN speed |', '|---|---|---|---|---|---|');
    for (const r of tier) {
      lines.push(`| ${r.cin}/${r.cout}/${r.k}/${r.stride}/${r.h} | ${r.bf16_ms} | ${r.bf16nhwc_ms} | ${r.bf16wgmma_ms ?? '-'} | ${r.torch_bf16_ms ?? '-'} | ${r.torch_bf16_ms ? (r.torch_bf16_ms / best(r)).toFixed(2) + 'x' : '-'} |`);
    }
    const sum = (key: string) => tier.reduce((a, r) => a + (r[key] ?? NaN), 0);
    // Without --torch (or without the wgmma kernel) there is nothing to sum: '-' rather than NaN.
    const cell = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(2));
    const torchSum = sum('torch_bf16_ms'), bestSum = tier.reduce((a, r) => a + best(r), 0);
    lines.push(`| sum | ${cell(sum('bf16_ms'))} | ${cell(sum('bf16nhwc_ms'))} | ${cell(sum('bf16wgmma_ms'))} | ${cell(torchSum)} | ${Number.isNaN(torchSum) ? '-' : `${(torchSum / bestSum).toFixed(2)}x`} |`);
  }
  const net = result.resnet50_img_s as Record<string, number[]> | undefined;
  if (net) lines.push('', ...Object.entries(net).map(([key, r]) => `ResNet-50 b${BATCH} ${key}: ${r.join(' / ')} img/s`));
  process.stdout.write(`${lines.join('\n')}\n${failures.length} failure(s); results in ${out}\n`);
  process.exitCode = failures.length ? 1 : 0;
}

main().catch((e: unknown) => {
  process.stderr.write(`conv-tune: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 2;
});
