/**
 * The one-command GPU check (see ../shared/device/README.md and bench/device/run.sh).
 *
 *   node build-bench/bench/device/check.js [--device cuda:0] [--torch BASELINE.json]
 *        [--torch-parity DIR] [--parity-only | --timing-only] [--quick] [--out FILE]
 *
 * 1. Correctness first: the op table of `npm test` (test/ops/op-table.ts) on the device in fp32,
 *    tf32 and bf16 (kernel variants and the bf16-in-memory convolution included); the covariance's
 *    SYRK variants against the float64 CPU covariance; run-to-run determinism; an out-of-memory request that must fail with
 *    ERR_OUT_OF_MEMORY and leave the process usable; whole ResNet-18/50 features on the device
 *    against the CPU backend; and, with --torch-parity DIR (written by torch_parity.py on the same
 *    machine), against PyTorch's own GPU features of the same checkpoint.
 * 2. Then timing, ours (host clock around synchronised loops): ResNet-50 inference at batch 256,
 *    224x224, in fp32 / tf32 / bf16; each distinct ResNet-50 convolution shape; the covariance of
 *    50,000 x 2,048; the MoCo loss forward + backward (N 256, K 65,536, dim 128); an input batch
 *    copied to the device as float32 against uint8 normalised there.
 * 3. With --torch BASELINE.json (torch_baseline.py, same run), one table of ratios; everything is
 *    written to --out (default bench/results/<date>-<card>.json).
 * `--timing-only` leaves part 1 out (for a rerun of the timings on a card whose parity run passed with
 * the same build; each timed network still checks which kernels it ran).
 * `--device cpu --quick` dry-runs the script on a machine without a GPU (small sizes). With the
 * emulated-device addon (SSL_INV_ADDON=build-emu/Release/ssl_inv.node, see test/cuda-emu/addon-emu.test.ts),
 * `--quick --parity-only` runs every parity check's device branch there, in about 7 minutes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runOpTable } from '../../test/ops/op-table';
import { convAutotune, convTuning, cudaInfo, deviceMemoryStats } from '../../src/device';
import { loadFeatureExtractor } from '../../src/eval/model-loader';
import { readNpySync } from '../../src/io/npy';
import { decodeImageFile } from '../../src/data/decode';
import { fitLogisticRegression, logisticObjective, predictLogistic } from '../../src/probes/logistic';
import { makeClassification } from '../../test/probes/data';
import { CovarianceAccumulator, CovarianceSyrk } from '../../src/linalg';
import { ResNetFeatures } from '../../src/nn/resnet';
import { Arch } from '../../src/nn/resnet-spec';
import * as ops from '../../src/ops';
import { empty, tensor, Tensor } from '../../src/tensor';
import { MiniTest } from './mini-tap';
import { CONV_SHAPES, onDevice as onDeviceOf, randomF32, randomParams, timeLoop as timeLoopOn } from './bench-util';
import { tuningLabel, withKernelLaunches } from '../../test/helpers/kernel-launches';
import { testImage } from '../../test/helpers/test-image';
import { runsWgmma } from '../../test/helpers/wgmma';
import { SYNTHETIC_TRANSFORMS, defaultK, transformGrid } from '../../src/transforms/grid';
import { makeViews } from '../../src/transforms/views';
import { makeViewsOnDevice } from '../../src/transforms/views-device';
import { makeViewsOfImages } from '../../src/transforms/views-batch';
import { evaluateSynthetic } from '../../src/eval/synthetic';

const argv = process.argv.slice(2);
const flag = (n: string) => argv.includes(n);
const arg = (n: string) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
const DEVICE = arg('--device') ?? 'cuda:0';
const QUICK = flag('--quick');
const PRECISIONS: ops.Precision[] = DEVICE === 'cpu' ? ['fp32'] : ['fp32', 'tf32', 'bf16'];
/** Normwise relative tolerances for whole networks by precision (docs/KERNELS.md; fp32: the 1e-4 of the acceptance). */
const NET_TOL: Record<ops.Precision, number> = { fp32: 1e-4, tf32: 2e-3 * 4, bf16: 1.5e-2 * 4 };

const log = (m: string) => process.stderr.write(`${m}\n`);
const failures: string[] = [];

/** Inputs on the device this check runs on. */
const onDevice = (a: Float32Array, shape: number[]): Tensor => onDeviceOf(DEVICE, a, shape);
const timeLoop = (fn: () => void, iters: number, warmup = 2): number => timeLoopOn(DEVICE, fn, iters, warmup);

function relErr(out: Float32Array, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < out.length; i++) { num += (out[i]! - ref[i]!) ** 2; den += ref[i]! ** 2; }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/** n x d float32 rows around 3 (per-column offsets) and their float64 CPU covariance. */
function covarianceCase(n: number, d: number, seed: number): [Float32Array, Float64Array] {
  const x = Float32Array.from(randomF32(n * d, seed), (v, i) => v + 3 + 0.001 * (i % d));
  const acc = new CovarianceAccumulator(d);
  acc.add(tensor(Float64Array.from(x), [n, d]));
  const want = acc.covariance();
  acc.dispose();
  return [x, want];
}

function record(ok: boolean, what: string): void {
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${what}\n`);
  if (!ok) failures.push(what);
}

async function parity(result: Record<string, unknown>): Promise<void> {
  // 1. The op table.
  const t = new MiniTest(`op table on ${DEVICE}`);
  runOpTable(t as never, { device: DEVICE, precisions: PRECISIONS });
  const table = await t.run();
  const bad = table.filter((a) => !a.ok);
  failures.push(...bad.map((a) => a.name));
  result.opTable = { assertions: table.length, failed: bad.map((a) => a.name) };
  log(`op table: ${table.length - bad.length}/${table.length} passed`);

  // 1b. The covariance's SYRK variants against the float64 CPU covariance of the same float32 rows
  //     (two chunks, 4,100 x 516: five column blocks, a partial one, sub-chunks ending mid-tile).
  if (DEVICE !== 'cpu') {
    const [cn, cd] = [4100, 516];
    const [xs, want] = covarianceCase(cn, cd, 91);
    const covRows: Record<string, number> = {};
    const bits: Partial<Record<CovarianceSyrk, Float64Array>> = {};
    for (const syrk of ['simt', 'simt-bk16', '3xtf32'] as const) {
      const acc = new CovarianceAccumulator(cd, { device: DEVICE, syrk });
      for (const [a, b] of [[0, 1234], [1234, cn]] as const) {
        const chunk = onDevice(xs.slice(a * cd, b * cd), [b - a, cd]);
        acc.add(chunk);
        chunk.dispose();
      }
      const got = acc.covariance();
      acc.dispose();
      bits[syrk] = got;
      const e = relErr(Float32Array.from(got), want);
      covRows[syrk] = e;
      record(e <= 1e-5, `covariance ${cn}x${cd} on ${DEVICE}, syrk ${syrk}, vs float64 CPU: rel ${e.toExponential(2)} (limit 1e-5)`);
    }
    const sameBits = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
    record(sameBits(bits['simt-bk16']!, bits.simt!), `covariance on ${DEVICE}: syrk simt-bk16 gives the bits of simt`);
    // Two full default sub-chunks (8,192 rows): each accumulator of the tensor-core SYRK runs 512 k8
    // steps, where the tensor cores' truncating rounding would bias the diagonal's sums of squares if
    // the MMAs were chained into the accumulators (covariance_tf32x3.cu). Diagonal entries, each
    // against its own float64 value, as well as the Frobenius error.
    const [ln, ld] = [8192, 256];
    const [xl, wantL] = covarianceCase(ln, ld, 92);
    for (const syrk of ['simt', '3xtf32'] as const) {
      const acc = new CovarianceAccumulator(ld, { device: DEVICE, syrk });
      const chunk = onDevice(xl, [ln, ld]);
      acc.add(chunk);
      chunk.dispose();
      const got = acc.covariance();
      acc.dispose();
      let diag = 0;
      for (let i = 0; i < ld; i++) diag = Math.max(diag, Math.abs(got[i * ld + i]! - wantL[i * ld + i]!) / Math.abs(wantL[i * ld + i]!));
      const e = relErr(Float32Array.from(got), wantL);
      covRows[`${syrk}_${ln}x${ld}`] = e;
      covRows[`${syrk}_${ln}x${ld}_diagonal`] = diag;
      record(e <= 1e-5 && diag <= 1e-5,
        `covariance ${ln}x${ld} (two 4,096-row sub-chunks) on ${DEVICE}, syrk ${syrk}: rel ${e.toExponential(2)}, worst diagonal ${diag.toExponential(2)} (limit 1e-5)`);
    }
    result.covarianceVsCpu = covRows;
  }

  // 2. Determinism: the same conv and MoCo loss twice, bit for bit.
  const x = onDevice(randomF32(2 * 28 * 28 * 64, 7), [2, 28, 28, 64]);
  const w = ops.packConvWeights(onDevice(randomF32(64 * 64 * 9, 8, 0.1), [64, 64, 3, 3]));
  const g: ops.ConvGeometry = { outChannels: 64, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
  for (const precision of PRECISIONS) {
    const a = ops.conv2d(x, w, g, { precision }).toFloat32Array();
    const b = ops.conv2d(x, w, g, { precision }).toFloat32Array();
    record(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)) === 0, `conv2d ${precision} is bit-identical run to run`);
  }
  const q = onDevice(randomF32(256 * 128, 9), [256, 128]), kp = onDevice(randomF32(256 * 128, 10), [256, 128]);
  const queue = onDevice(randomF32(128 * 4096, 11), [128, 4096]);
  const l1 = ops.mocoLoss(q, kp, queue, 0.2), l2 = ops.mocoLoss(q, kp, queue, 0.2);
  record(Buffer.compare(Buffer.from(l1.dq.toFloat32Array().buffer), Buffer.from(l2.dq.toFloat32Array().buffer)) === 0 &&
    l1.loss.toFloat32Array()[0] === l2.loss.toFloat32Array()[0], 'mocoLoss is bit-identical run to run');

  // 3. Out of memory: a typed error, and the device still works afterwards.
  if (DEVICE !== 'cpu') {
    let oom = '';
    try {
      empty('float32', [2 ** 40], DEVICE).dispose();  // 4 TiB
    } catch (e) { oom = (e as { code?: string }).code ?? String(e); }
    record(oom === 'ERR_OUT_OF_MEMORY', `a 4 TiB device tensor is ERR_OUT_OF_MEMORY (got ${oom})`);
    const after = ops.relu(x).toFloat32Array();
    record(after.length === x.size, 'the device works after the out-of-memory error');
    result.allocator = deviceMemoryStats(DEVICE);
  }
  for (const tt of [x, w, q, kp, queue, l1.loss, l1.dq, l2.loss, l2.dq]) tt.dispose();

  // 4. The synthetic views built on the device against the CPU's, bit for bit, every transform.
  if (DEVICE !== 'cpu') {
    const img = testImage();
    const vo = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], deformSeed: 3 };
    for (const tr of SYNTHETIC_TRANSFORMS) {
      // 16 views of the 256-view grids (deform's grid is fixed: its first 16 views).
      const grid = tr === 'deform' ? transformGrid(tr, 256, 64, 56) : transformGrid(tr, defaultK(tr) === 256 ? 16 : defaultK(tr), 64, 56);
      const k = Math.min(grid.k, 16);
      const a = makeViews(img, grid, 0, k, vo), b = makeViewsOnDevice(img, grid, 0, k, vo, DEVICE);
      const x = a.toFloat32Array(), y = b.toFloat32Array();
      let diff = 0;
      for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) diff++;
      record(diff === 0, `views of ${tr} (${k}) on ${DEVICE} equal the CPU's bit for bit (${diff} of ${x.length} differ)`);
      a.dispose(); b.dispose();
    }
    // The same on real photos of odd sizes (the decode fixtures), at the evaluation's 256/224: issue
    // 4 asks for GPU parity with the CPU within 1/255 (one uint8 step, 1 / (255 std) after
    // normalisation); we report exact equality and the largest difference in uint8 steps.
    const photos = ['china_224x300_progressive.jpg', 'chelsea_gray_301x225.jpg', 'astronaut_la_80x80.png'];
    const rows: Record<string, { differing: number; values: number; maxSteps: number }> = {};
    for (const name of QUICK ? photos.slice(2) : photos) {
      const file = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'images', 'inputs', name);
      const photo = await decodeImageFile(file);
      for (const tr of SYNTHETIC_TRANSFORMS) {
        const grid = transformGrid(tr, tr === 'deform' ? 256 : defaultK(tr) === 256 ? 16 : defaultK(tr), 256, 224);
        const k = Math.min(grid.k, 8);
        const a = makeViews(photo, grid, 0, k, vo), b = makeViewsOnDevice(photo, grid, 0, k, vo, DEVICE);
        const x = a.toFloat32Array(), y = b.toFloat32Array();
        let diff = 0, maxSteps = 0;
        const plane = x.length / (k * 3);
        for (let i = 0; i < x.length; i++) {
          if (Object.is(x[i], y[i])) continue;
          diff++;
          const std = vo.std[Math.floor(i / plane) % 3]!;
          maxSteps = Math.max(maxSteps, Math.abs(x[i]! - y[i]!) * std * 255);
        }
        rows[`${name}/${tr}`] = { differing: diff, values: x.length, maxSteps };
        record(maxSteps <= 1.0001, `views of ${tr} (${k}) of ${name} (${photo.width}x${photo.height}) on ${DEVICE} vs the CPU: ` +
          `${diff} of ${x.length} values differ, at most ${maxSteps.toFixed(3)} uint8 steps (limit 1)`);
        a.dispose(); b.dispose();
      }
    }
    result.photoViewsVsCpu = rows;
    // The synthetic evaluation's batches: each photo's clean input (ViewsInto.cleanSlot) in the rows
    // before the views of all of them, against preprocess() and makeViews on the CPU.
    const all = await Promise.all((QUICK ? photos.slice(2) : photos).map((name) =>
      decodeImageFile(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'images', 'inputs', name))));
    for (const tr of ['h_flip', 'rotation'] as const) {
      const grid = transformGrid(tr, tr === 'rotation' ? 4 : 2, 256, 224);
      const vos = all.map((_, i) => ({ ...vo, deformSeed: i }));
      const a = makeViewsOfImages(all, grid, 0, grid.k, vos, 'cpu', true), b = makeViewsOfImages(all, grid, 0, grid.k, vos, DEVICE, true);
      const x = a.toFloat32Array(), y = b.toFloat32Array();
      let diff = 0;
      for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) diff++;
      record(diff === 0, `clean inputs + ${tr} views of ${all.length} photos in one batch on ${DEVICE} equal the CPU's bit for bit (${diff} of ${x.length} differ)`);
      a.dispose(); b.dispose();
    }
  }

  // 4b. Logistic regression with the solver's vectors on the device against the host solver on the
  // same data: converged fits must reach the same objective (relative 1e-7: both stop where the relative
  // decrease falls under 2.2e-9, which rounding can move by an iteration) and the same predictions.
  if (DEVICE !== 'cpu') {
    const g = makeClassification(9, 2000, 64, 5, 0.6, 0.2);
    const xh = tensor(g.X, [2000, 64]);
    const xd = xh.to(DEVICE);
    const rows: Record<string, unknown> = {};
    for (const C of [0.01, 1, 100]) {
      const a = fitLogisticRegression(xh, g.y, { C, maxIter: 300 }), b = fitLogisticRegression(xd, g.y, { C, maxIter: 300 });
      const fa = logisticObjective(a, xh, g.y, C), fb = logisticObjective(b, xh, g.y, C);
      const pa = predictLogistic(a, xh), pb = predictLogistic(b, xh);
      const same = pa.filter((v, i) => v === pb[i]).length / pa.length;
      const rel = Math.abs(fa - fb) / Math.abs(fa);
      rows[`C=${C}`] = { cpu: { f: fa, nit: a.nIter, status: a.status }, device: { f: fb, nit: b.nIter, status: b.status }, rel, samePredictions: same };
      record(a.status === 'converged-pgtol' || a.status === 'converged-factr' ? rel <= 1e-7 && same >= 0.999 : same >= 0.99,
        `logistic regression C=${C} on ${DEVICE} vs the CPU: objective rel ${rel.toExponential(2)}, iterations ${b.nIter} vs ${a.nIter} (${a.status}), ` +
        `${(same * 100).toFixed(2)}% of predictions equal`);
    }
    xh.dispose(); xd.dispose();
    result.logisticVsCpu = rows;
  }

  // 5. Whole networks: device features against the CPU backend on the same weights.
  const nets: { arch: Arch; size: number; batch: number }[] = [{ arch: 'resnet18', size: 64, batch: 2 }, { arch: 'resnet50', size: QUICK ? 64 : 224, batch: 2 }];
  const netRows: Record<string, number> = {};
  for (const n of nets) {
    const params = randomParams(n.arch, 31);
    const cpuNet = await ResNetFeatures.load(n.arch, params);
    const input = randomF32(n.batch * 3 * n.size * n.size, 32);
    const xin = tensor(input, [n.batch, 3, n.size, n.size]);
    const ref = cpuNet.features(xin);
    cpuNet.dispose();
    for (const precision of PRECISIONS) {
      const net = await ResNetFeatures.load(n.arch, params, { device: DEVICE, precision });
      const f = net.features(xin);
      net.dispose();
      const e = relErr(f, ref);
      netRows[`${n.arch}-${precision}`] = e;
      record(e <= NET_TOL[precision], `${n.arch} @${n.size} features on ${DEVICE} (${precision}) vs the CPU backend: rel ${e.toExponential(2)} (limit ${NET_TOL[precision]})`);
    }
    if (DEVICE !== 'cpu') {
      // bf16 activations in memory (each layer's output rounded to bf16): same tolerance as bf16; on
      // compute capability 9.0 also through Hopper's wgmma kernel.
      const kernels: ops.ConvAlgo[] = runsWgmma(DEVICE) ? ['auto', 'wgmma'] : ['auto'];
      for (const convAlgo of kernels) {
        const net = await ResNetFeatures.load(n.arch, params, { device: DEVICE, precision: 'bf16', activations: 'bfloat16', convAlgo });
        const f = net.features(xin);
        net.dispose();
        const e = relErr(f, ref);
        const tag = convAlgo === 'auto' ? '' : `, ${convAlgo} kernel`;
        netRows[`${n.arch}-bf16-storage${convAlgo === 'auto' ? '' : `-${convAlgo}`}`] = e;
        record(e <= NET_TOL.bf16, `${n.arch} @${n.size} features on ${DEVICE} (bf16, bfloat16 activations${tag}) vs the CPU backend: rel ${e.toExponential(2)} (limit ${NET_TOL.bf16})`);
      }
    }
    xin.dispose();
  }
  result.networkVsCpu = netRows;

  // 5b. The synthetic evaluation end to end on the device (views and the clean inputs built there,
  // passes started ahead of the host metrics) against the same evaluation on the CPU: ResNet-18, the
  // photo fixtures, rotation with 8 views in passes of 4 rows (chunks; the clean input in the first).
  {
    const params = randomParams('resnet18', 41);
    const cpuNet = await ResNetFeatures.load('resnet18', params);
    const devNet = await ResNetFeatures.load('resnet18', params, { device: DEVICE });
    const d = cpuNet.featureDim;
    const chol = new Float32Array(d * d), inv = new Float64Array(d * d);
    for (let i = 0; i < d; i++) { chol[i * d + i] = 1; inv[i * d + i] = 1; }
    const whitening = { dim: d, mean: new Float32Array(d).fill(0.01), chol, inv };
    const files = ['china_224x300_progressive.jpg', 'chelsea_gray_301x225.jpg', 'astronaut_la_80x80.png']
      .map((name) => path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'images', 'inputs', name));
    const rows: Record<string, unknown> = {};
    for (const [tr, k, batch] of [['rotation', 8, 4], ['h_flip', 2, 64], ['deform', 256, 256]] as const) {
      const grid = transformGrid(tr, k, 64, 56);
      const run = (model: ResNetFeatures, device: string) => evaluateSynthetic({
        model, whitening, files, grid, numImages: tr === 'deform' ? 2 : 5, seed: 0, batchSize: batch, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], device,
      });
      const a = await run(cpuNet, 'cpu'), b = await run(devNet, DEVICE);
      const rel = (x: number[], y: number[]) => Math.max(...x.map((v, i) => Math.abs(v - y[i]!) / Math.max(Math.abs(v), 1e-12)));
      const eD = rel(a.distance, b.distance), eS = rel(a.similarity, b.similarity);
      rows[tr] = { distanceRel: eD, similarityRel: eS };
      record(eD <= 1e-4 && eS <= 1e-4 && a.sampled.join() === b.sampled.join(),
        `synthetic evaluation of ${tr} (k ${grid.k}, batch ${batch}) on ${DEVICE} vs the CPU: distance rel ${eD.toExponential(2)}, similarity rel ${eS.toExponential(2)} (limit 1e-4)`);
    }
    cpuNet.dispose(); devNet.dispose();
    result.syntheticVsCpu = rows;
  }

  // 6. Against PyTorch's own GPU features of the same checkpoints (torch_parity.py output).
  const dir = arg('--torch-parity');
  if (dir) {
    const rows: Record<string, number> = {};
    for (const arch of ['resnet18', 'resnet50'] as const) {
      const file = path.join(dir, `${arch}.pth`);
      if (!fs.existsSync(file)) { record(false, `${file} exists`); continue; }
      const x = readNpySync(path.join(dir, `${arch}-input.npy`));
      const want = readNpySync(path.join(dir, `${arch}-features-fp32.npy`));
      const model = await loadFeatureExtractor(file, { device: DEVICE });
      const xt = tensor(x.data as Float32Array, [...x.shape]);
      const f = model.net.features(xt);
      xt.dispose();
      model.net.dispose();
      const e = relErr(f, want.data as Float32Array);
      rows[arch] = e;
      record(e <= 1e-4, `${arch} features on ${DEVICE} (fp32) vs PyTorch ${fs.readFileSync(path.join(dir, 'torch-version.txt'), 'utf8').trim()}: rel ${e.toExponential(2)} (limit 1e-4)`);
    }
    result.networkVsTorch = rows;
  }
}

async function bench(result: Record<string, unknown>): Promise<void> {
  const batch = QUICK ? 2 : 256, size = QUICK ? 64 : 224;
  // ResNet-50 inference, input already on the device (as the PyTorch baseline's).
  const params = randomParams('resnet50', 41);
  const xin = onDevice(randomF32(batch * 3 * size * size, 42), [batch, 3, size, size]);
  const inference: Record<string, number> = {};
  // Which convolution kernels each timed network ran (launch counts over its timing loop): every
  // timing must come from the kernels its label names, or the check fails. 'auto' names a precision's
  // kernels with the same bits, among which run-time tuning (src/device.ts convAutotune) picks per
  // shape; one forward pass before the count does the tuning, so the count shows what was chosen.
  const kernels: Record<string, Record<string, number>> = {};
  const timeNet = (key: string, net: ResNetFeatures, allowed: string[]) => {
    net.forward(xin).dispose();
    const { result: ms, launched } = withKernelLaunches(() => timeLoop(() => net.forward(xin).dispose(), QUICK ? 1 : 10));
    inference[key] = Math.round((batch / (ms / 1e3)) * 10) / 10;
    kernels[key] = launched;
    log(`resnet50 b${batch} ${key}: ${inference[key]} img/s (${Object.entries(launched).map(([k, n]) => `${n} x ${k}`).join(', ') || 'no CUDA convolutions'})`);
    if (DEVICE !== 'cpu') {
      const ran = Object.keys(launched);
      record(ran.length > 0 && ran.every((k) => allowed.includes(k)), `resnet50 ${key} timing ran ${allowed.join(' / ')} convolutions only (${ran.join(', ')})`);
    }
  };
  const AUTO_KERNELS: Record<ops.Precision | 'bf16-bfloat16', string[]> = {
    fp32: ['fp32 simt-bk8', 'fp32 simt-bk16'], tf32: ['tf32 mma-staged', 'tf32 mma-pipelined'], bf16: ['bf16 mma-staged'],
    'bf16-bfloat16': ['bf16 mma-pipelined', 'bf16 wgmma'],
  };
  log(`run-time tuning of the convolutions' 'auto': ${convAutotune() ? 'on' : 'off'}`);
  for (const precision of PRECISIONS) {
    const net = await ResNetFeatures.load('resnet50', params, { device: DEVICE, precision });
    timeNet(precision, net, AUTO_KERNELS[precision]);
    net.dispose();
  }
  // bf16 with bfloat16 activations between layers (PyTorch's bf16 inference stores them so): 'auto'
  // (mma.sync, or wgmma where tuning finds it faster with the same bits) and, on compute capability
  // 9.0, every convolution through the wgmma kernel.
  if (DEVICE !== 'cpu') {
    for (const convAlgo of (runsWgmma(DEVICE) ? ['auto', 'wgmma'] : ['auto']) as ops.ConvAlgo[]) {
      const key = convAlgo === 'auto' ? 'bf16-bfloat16' : `bf16-bfloat16-${convAlgo}`;
      const net = await ResNetFeatures.load('resnet50', params, { device: DEVICE, precision: 'bf16', activations: 'bfloat16', convAlgo });
      timeNet(key, net, convAlgo === 'wgmma' ? ['bf16 wgmma'] : AUTO_KERNELS['bf16-bfloat16']);
      net.dispose();
    }
  }
  // The same networks with tuning off (each precision's default kernel everywhere), to measure what
  // the tuning gains in the same run.
  if (DEVICE !== 'cpu' && convAutotune()) {
    convAutotune(false);
    try {
      for (const [key, precision] of [['fp32', 'fp32'], ['tf32', 'tf32'], ['bf16-bfloat16', 'bf16']] as const) {
        const net = await ResNetFeatures.load('resnet50', params, { device: DEVICE, precision, ...(key === 'bf16-bfloat16' ? { activations: 'bfloat16' as const } : {}) });
        timeNet(`${key}-untuned`, net, [AUTO_KERNELS[key][0]!]);  // the first of each family is its default
        net.dispose();
      }
    } finally {
      convAutotune(true);
    }
  }
  xin.dispose();
  result.resnet50_inference_img_s = inference;
  result.resnet50_conv_kernels = kernels;

  // Each distinct ResNet-50 convolution at batch 256.
  const convs: Record<string, unknown>[] = [];
  for (const [cin, cout, k, s, h] of QUICK ? CONV_SHAPES.slice(0, 3) : CONV_SHAPES) {
    const hh = QUICK ? Math.min(h, 28) : h;
    const p = Math.floor(k / 2), q = Math.floor((hh + 2 * p - k) / s) + 1;
    const x = onDevice(randomF32(batch * hh * hh * cin, 5), [batch, hh, hh, cin]);
    const w = ops.packConvWeights(onDevice(randomF32(cout * cin * k * k, 6, 0.1), [cout, cin, k, k]));
    const flops = 2 * batch * q * q * cout * cin * k * k;
    const row: Record<string, unknown> = { cin, cout, k, stride: s, h: hh };
    for (const precision of PRECISIONS) {
      const ms = timeLoop(() => ops.conv2d(x, w, { outChannels: cout, kernel: [k, k], stride: [s, s], padding: [p, p] }, { precision }).dispose(), QUICK ? 1 : 10);
      row[`${precision}_ms`] = Math.round(ms * 1e4) / 1e4;
      row[`${precision}_tflops`] = Math.round(flops / (ms * 1e-3) / 1e12 * 10) / 10;
    }
    log(`conv ${cin}->${cout} k${k}/s${s} @${hh}: ${PRECISIONS.map((pr) => `${pr} ${row[`${pr}_ms`]} ms`).join(', ')}`);
    convs.push(row);
    x.dispose(); w.dispose();
  }
  result.conv_shapes = convs;
  // What the tuning chose for every problem above, and what it left out and why.
  const tuning = convTuning();
  result.conv_tuning = tuning;
  for (const family of ['fp32', 'tf32', 'bf16-storage'] as const) {
    const recs = tuning.filter((r) => r.family === family);
    if (recs.length === 0) continue;
    const chosen: Record<string, number> = {};
    const label = (kernel: string, blockN?: number) => tuningLabel({ kernel, blockN });
    for (const r of recs) chosen[label(r.chosen, r.chosenBlockN)] = (chosen[label(r.chosen, r.chosenBlockN)] ?? 0) + 1;
    const left = recs.flatMap((r) => r.candidates.filter((c) => c.excluded !== undefined).map((c) => `${label(c.kernel, c.blockN)}: ${c.excluded}`));
    log(`tuning, ${family}: ${recs.length} problems; chosen ${Object.entries(chosen).map(([k, n]) => `${k} x ${n}`).join(', ')}` +
      `${left.length ? `; left out: ${[...new Set(left)].slice(0, 4).join('; ')}${left.length > 4 ? ` (${left.length} in all)` : ''}` : ''}`);
    // fp32 and tf32 variants compute the same sums in the same order, and so do the tile widths of one
    // kernel: a difference there is a bug. (wgmma against mma.sync is for the hardware to say.)
    const differ = recs.flatMap((r) => r.candidates.filter((c) => c.excluded?.startsWith('differs')
      && (family !== 'bf16-storage' || c.kernel === r.candidates[0]!.kernel)).map((c) => `${label(c.kernel, c.blockN)}: ${c.excluded}`));
    record(differ.length === 0, `tuning, ${family}: every variant that must agree gave the default kernel's bits${differ.length ? ` (${differ[0]})` : ''}`);
    if (family === 'bf16-storage') {
      // The widths of the wgmma kernel agree with one another: all left out, or none, per problem.
      const split = recs.filter((r) => new Set(r.candidates.filter((c) => c.kernel === 'bf16 wgmma').map((c) => c.excluded?.startsWith('differs') ?? false)).size > 1);
      record(split.length === 0, `tuning, bf16-storage: the wgmma widths agree with one another${split.length ? ` (not on ${JSON.stringify(split[0]!.shape)})` : ''}`);
    }
  }

  // Covariance of 50,000 x 2,048 (one chunk, statistics on the device).
  const [n, d] = QUICK ? [2000, 256] : [50000, 2048];
  const xc = onDevice(randomF32(n * d, 77, 2).map((v) => v + 3), [n, d]);
  const covTime = (syrk: CovarianceSyrk) => {
    const acc = new CovarianceAccumulator(d, { device: DEVICE, syrk });
    const ms = timeLoop(() => acc.add(xc), QUICK ? 1 : 5, 1);
    acc.dispose();
    return Math.round(ms * 1e3) / 1e3;
  };
  const covMs = covTime('auto');
  const cov16 = DEVICE === 'cpu' ? undefined : covTime('simt-bk16');
  const cov3 = DEVICE === 'cpu' ? undefined : covTime('3xtf32');
  xc.dispose();
  result.covariance = { n, d, ms: covMs, ...(cov16 !== undefined ? { ms_simt_bk16: cov16 } : {}), ...(cov3 !== undefined ? { ms_3xtf32: cov3 } : {}) };
  log(`covariance ${n}x${d}: ${covMs.toFixed(3)} ms${cov16 !== undefined ? `, simt-bk16 SYRK ${cov16.toFixed(3)} ms` : ''}${cov3 !== undefined ? `, 3xtf32 SYRK ${cov3.toFixed(3)} ms` : ''}`);

  // Views of one 500 x 375 image, k = 256, built on the device (issue 4's target: at least as fast as
  // a ResNet-50 fp32 forward pass of the same views).
  const photo = testImage(QUICK ? 61 : 500, QUICK ? 47 : 375);
  const viewRates: Record<string, number> = {};
  for (const tr of ['rotation', 'hue', 'blur'] as const) {
    const k = QUICK ? 16 : 256;
    const grid = transformGrid(tr, k, QUICK ? 64 : 256, QUICK ? 56 : 224);
    const vo = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    const ms = DEVICE === 'cpu' ? timeLoop(() => makeViews(photo, grid, 0, k, vo).dispose(), 1, 0)
      : timeLoop(() => makeViewsOnDevice(photo, grid, 0, k, vo, DEVICE).dispose(), QUICK ? 1 : 5, 1);
    viewRates[tr] = Math.round(k / (ms / 1e3));
    log(`views ${tr} k=${k}: ${viewRates[tr]} views/s`);
  }
  result.views_per_s = viewRates;

  // A batch of input images to the device, as the loaders hand it over: float32 NCHW moved (what a
  // float32 host batch costs), against uint8 NHWC moved and normalised there (data/device-input.ts).
  {
    const [bn, side] = QUICK ? [2, 64] : [256, 224];
    const px = Uint8Array.from({ length: bn * side * side * 3 }, (_, i) => (i * 131 + (i >> 8)) & 255);
    const hostU8 = tensor(px, [bn, side, side, 3]);
    const norm = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    const hostF32 = ops.normalizeImagesU8(hostU8, norm);
    const f32Ms = timeLoop(() => hostF32.to(DEVICE).dispose(), QUICK ? 1 : 10);
    const u8Ms = timeLoop(() => { const d = hostU8.to(DEVICE); ops.normalizeImagesU8(d, norm).dispose(); d.dispose(); }, QUICK ? 1 : 10);
    hostU8.dispose();
    hostF32.dispose();
    result.input_copy = { batch: bn, side, float32_ms: Math.round(f32Ms * 1e3) / 1e3, uint8_normalised_ms: Math.round(u8Ms * 1e3) / 1e3 };
    log(`input batch ${bn}x${side}x${side} to ${DEVICE}: float32 ${f32Ms.toFixed(3)} ms, uint8 + normalise there ${u8Ms.toFixed(3)} ms`);
  }

  // MoCo loss forward + backward.
  const [N, K, D] = QUICK ? [16, 4096, 128] : [256, 65536, 128];
  const q = onDevice(randomF32(N * D, 1), [N, D]), kp = onDevice(randomF32(N * D, 2), [N, D]), queue = onDevice(randomF32(D * K, 3), [D, K]);
  const mocoMs = timeLoop(() => { const r = ops.mocoLoss(q, kp, queue, 0.2); r.loss.dispose(); r.dq.dispose(); }, QUICK ? 2 : 20);
  for (const tt of [q, kp, queue]) tt.dispose();
  result.moco_loss = { n: N, k: K, dim: D, ms: Math.round(mocoMs * 1e4) / 1e4 };
  log(`moco loss N${N} K${K}: ${mocoMs.toFixed(4)} ms`);
}

function ratioTable(ours: Record<string, any>, torch: Record<string, any>): string[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const rows: [string, number | undefined, number | undefined, string][] = [];
  for (const p of PRECISIONS) rows.push([`ResNet-50 b256 ${p} img/s`, ours.resnet50_inference_img_s?.[p], torch.resnet50_inference_img_s?.[p], 'higher']);
  for (const key of ['bf16-bfloat16', 'bf16-bfloat16-wgmma']) {
    if (ours.resnet50_inference_img_s?.[key] !== undefined) {
      rows.push([`ResNet-50 b256 ${key} img/s (vs torch bf16; not the default)`, ours.resnet50_inference_img_s[key], torch.resnet50_inference_img_s?.bf16, 'higher']);
    }
  }
  // What run-time tuning gains: tuned over untuned, both ours (the 'torch' column holds the untuned).
  for (const key of ['fp32', 'tf32', 'bf16-bfloat16']) {
    if (ours.resnet50_inference_img_s?.[`${key}-untuned`] !== undefined) {
      rows.push([`ResNet-50 b256 ${key} img/s, tuned (vs ours untuned)`, ours.resnet50_inference_img_s[key], ours.resnet50_inference_img_s[`${key}-untuned`], 'higher']);
    }
  }
  rows.push(['covariance 50000x2048 ms', ours.covariance?.ms, torch.covariance?.ms, 'lower']);
  rows.push(['covariance 50000x2048 ms, simt-bk16 SYRK (the same bits; not the default)', ours.covariance?.ms_simt_bk16, torch.covariance?.ms, 'lower']);
  rows.push(['covariance 50000x2048 ms, 3xtf32 SYRK (not the default)', ours.covariance?.ms_3xtf32, torch.covariance?.ms, 'lower']);
  for (const tr of ['rotation', 'hue', 'blur']) {
    rows.push([`views ${tr} k=256 views/s (vs ResNet-50 fp32 img/s, ours)`, ours.views_per_s?.[tr], ours.resnet50_inference_img_s?.fp32, 'higher']);
  }
  rows.push(['MoCo loss fwd+bwd ms', ours.moco_loss?.ms, torch.moco_loss?.ms, 'lower']);
  rows.push(['input batch 256x224 to the device ms, uint8 + normalise there (vs ours float32 copy)', ours.input_copy?.uint8_normalised_ms, ours.input_copy?.float32_ms, 'lower']);
  const convOurs = (ours.conv_shapes ?? []) as Record<string, number>[], convTorch = (torch.conv_shapes ?? []) as Record<string, number>[];
  for (const p of PRECISIONS) {
    if (convOurs.length && convOurs.length === convTorch.length) {
      const sum = (rs: Record<string, number>[]) => rs.reduce((a, r) => a + r[`${p}_ms`]!, 0);
      rows.push([`sum of the 23 conv shapes ${p} ms`, sum(convOurs), sum(convTorch), 'lower']);
    }
  }
  const out = ['| workload | ours | PyTorch | ours / PyTorch speed |', '|---|---|---|---|'];
  for (const [name, o, t, better] of rows) {
    const ratio = o !== undefined && t !== undefined ? (better === 'higher' ? o / t : t / o) : undefined;
    out.push(`| ${name} | ${o ?? '-'} | ${t ?? '-'} | ${ratio !== undefined ? ratio.toFixed(2) + 'x' : '-'} |`);
  }
  return out;
}

async function main(): Promise<void> {
  const info = cudaInfo();
  const card = DEVICE === 'cpu' ? 'cpu-dry-run' : info.devices[Number(DEVICE.split(':')[1] ?? 0)]?.name ?? 'unknown';
  log(`ssl-inv device check on ${DEVICE} (${card}); CUDA backend compiled: ${info.compiled}; devices: ${info.deviceCount}`);
  const result: Record<string, unknown> = { date: new Date().toISOString(), device: DEVICE, card, node: process.version };
  const t0 = Date.now();
  if (flag('--parity-only') && flag('--timing-only')) throw new Error('--parity-only and --timing-only exclude each other');
  if (!flag('--timing-only')) await parity(result);
  result.parity_failures = [...failures];
  if (!flag('--parity-only')) await bench(result);
  result.check_failures = [...failures];
  result.seconds = (Date.now() - t0) / 1e3;
  const torchFile = arg('--torch');
  const torch = torchFile && fs.existsSync(torchFile) ? JSON.parse(fs.readFileSync(torchFile, 'utf8')) as Record<string, unknown> : undefined;
  if (torch) result.torch = torch;
  const slug = card.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const out = arg('--out') ?? path.join('bench', 'results', `${new Date().toISOString().slice(0, 10)}-${slug}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\n${failures.length} check failure(s); results in ${out}\n`);
  if (torch && !flag('--parity-only')) process.stdout.write(`${ratioTable(result, torch).join('\n')}\n`);
  process.exitCode = failures.length ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`device check crashed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 2;
});
