/**
 * A CUDA device against the CPU backend, on this machine, in seconds: the check a user runs before
 * trusting a card (`ssl-inv selftest`). The package ships machine code for sm_90 (H100, H200) and PTX
 * that the driver compiles for other cards; the project's own GPU runs cover sm_90 only, so on an
 * A100, L4 or RTX card this is the evidence that the kernels compute what the CPU computes.
 *
 * Each check draws seeded inputs, runs the op on the CPU and on the device, and compares them by
 * max |device - cpu| / max |cpu| against the op's tolerance: fp32 1e-5 (the ops sum in other orders,
 * so not bit for bit), TF32 2e-3 and bf16 1.5e-2 (against the CPU's fp32), 1e-4 for a whole
 * network; the SGD step must give the CPU's bits. Shapes are small and cover the kinds the
 * networks use: the 7x7/2 stem with C = 3, 3x3 stride 1 and 2 with odd sizes, 1x1 stride 2, fused
 * residual + ReLU, pooling, batch norm, GEMM, the covariance, the MoCo loss, the training backward
 * ops, a ResNet-18 forward pass at 64 x 64, and a ResNet-18 training step (its backward compared on
 * identical activations, its SGD step bit for bit).
 */
import { cudaInfo, resolveDevice, synchronize } from './device';
import { SslInvError } from './errors';
import { CovarianceAccumulator } from './linalg';
import * as ops from './ops';
import { Tensor, tensor } from './tensor';
import { conv2dBackwardData, conv2dBackwardWeight } from './backward/conv';
import { batchNormBackward, batchNormTrain } from './backward/layers';
import { ResNetFeatures } from './nn/resnet';
import { TrainTape, TrainableResNet } from './nn/resnet-train';
import { SGD, sgdStep } from './optim/sgd';
import { torchvisionInitStateDict } from './nn/torchvision-init';

export interface SelfTestCheck {
  name: string;
  /** max |device - cpu| / max |cpu| (0 for a bitwise check that passed, 1 for one that failed). */
  error: number;
  limit: number;
  ok: boolean;
  /** Wall time of the device side, including its synchronisation. */
  ms: number;
}

export interface SelfTestReport {
  device: string;
  card: string;
  computeCapability: string;
  checks: SelfTestCheck[];
  passed: number;
  failed: number;
}

/** Seeded values in [-scale, scale) (an LCG: the same inputs on every machine). */
function values(n: number, seed: number, scale = 1): Float32Array {
  let s = (seed * 2654435761) >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return a;
}

function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0, mag = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    mag = Math.max(mag, Math.abs(want[i]!));
  }
  return got.length !== want.length ? Infinity : mag > 0 ? err / mag : err;
}

/** Host inputs, their device copies, and a way to free both. */
class Inputs {
  private readonly owned: Tensor[] = [];
  constructor(private readonly device: string) {}
  host(data: Float32Array, shape: number[]): Tensor {
    const t = tensor(data, shape);
    this.owned.push(t);
    return t;
  }
  dev(t: Tensor): Tensor {
    return this.own(t.to(this.device));
  }
  own(t: Tensor): Tensor {
    this.owned.push(t);
    return t;
  }
  dispose(): void {
    for (const t of this.owned) t.dispose();
  }
}

type Outputs = Tensor | Tensor[];
const list = (o: Outputs): Tensor[] => (Array.isArray(o) ? o : [o]);

/**
 * Runs `cpu` and `dev` (each returns fresh tensors), compares every output pair and frees them.
 * A thrown error is a failed check (its message in the name), never an aborted self-test.
 */
function compare(record: (c: SelfTestCheck) => void, device: string, name: string, limit: number, cpu: () => Outputs, dev: () => Outputs,
  resultsOnDevice = true): void {
  let error = Infinity, ms = 0, label = name;
  try {
    const want = list(cpu());
    try {
      const t0 = process.hrtime.bigint();
      const got = list(dev());
      synchronize(device);
      ms = Number(process.hrtime.bigint() - t0) / 1e6;
      try {
        error = 0;
        for (let i = 0; i < want.length; i++) {
          if (resultsOnDevice && got[i]!.device !== device) throw new SslInvError('ERR_NATIVE_INTERNAL', `output ${i} came back on ${got[i]!.device}`);
          error = Math.max(error, relError(got[i]!.toFloat32Array(), want[i]!.toFloat32Array()));
        }
      } finally {
        for (const t of got) t.dispose();
      }
    } finally {
      for (const t of want) t.dispose();
    }
  } catch (e) {
    label = `${name}: ${(e as Error).message}`;
    error = Infinity;
  }
  record({ name: label, error, limit, ok: error <= limit, ms: Math.round(ms * 100) / 100 });
}

interface ConvCase { name: string; n: number; c: number; h: number; w: number; k: number; r: number; s: number; stride: number; pad: number }
const CONVS: ConvCase[] = [
  { name: '7x7/2 stem, C=3, odd H and W', n: 2, c: 3, h: 17, w: 15, k: 16, r: 7, s: 7, stride: 2, pad: 3 },
  { name: '3x3/1, C=16, K=24', n: 2, c: 16, h: 9, w: 9, k: 24, r: 3, s: 3, stride: 1, pad: 1 },
  { name: '3x3/2, odd H', n: 2, c: 8, h: 11, w: 9, k: 20, r: 3, s: 3, stride: 2, pad: 1 },
  { name: '1x1/2, K=40', n: 2, c: 32, h: 9, w: 9, k: 40, r: 1, s: 1, stride: 2, pad: 0 },
  { name: '3x3/1, C=K=136 (partial tiles)', n: 1, c: 136, h: 6, w: 5, k: 136, r: 3, s: 3, stride: 1, pad: 1 },
];
const outSize = (x: number, r: number, stride: number, pad: number) => Math.floor((x + 2 * pad - r) / stride) + 1;

/**
 * A ResNet-18 training step (torchvision's initialisation, 4 images of 32 x 32) on the device and
 * on the CPU from the same weights: the features; the device's backward against the CPU's backward
 * of the device's own tape copied to the host (identical activations, so a ReLU input within
 * rounding of zero cannot send the two gradients apart); then SGD with momentum and weight decay on
 * each side from the device's gradients, whose parameters must be the same bits.
 */
async function trainingStep(record: (c: SelfTestCheck) => void, device: string, io: Inputs, seed: number): Promise<void> {
  const name = 'ResNet-18 training step, 32 x 32';
  const sd = torchvisionInitStateDict('resnet18', 11);
  const params = (key: string) => Float32Array.from(sd.get(key)!.data as Float32Array);
  const x = io.host(values(4 * 3 * 32 * 32, seed, 2), [4, 3, 32, 32]);
  const g = io.host(values(4 * 512, seed + 1, 1e-2), [4, 512]);
  const [xd, gd] = [io.dev(x), io.dev(g)];
  let cpuNet: TrainableResNet | undefined, devNet: TrainableResNet | undefined, hostTape: TrainTape | undefined;
  const sgdCpu = new SGD({ lr: 0.03, momentum: 0.9, weightDecay: 1e-4 }), sgdDev = new SGD({ lr: 0.03, momentum: 0.9, weightDecay: 1e-4 });
  try {
    cpuNet = await TrainableResNet.load('resnet18', params);
    devNet = await TrainableResNet.load('resnet18', params, { device });
    const t0 = process.hrtime.bigint();
    const dev = devNet.forwardTrain(xd);
    const ref = cpuNet.forwardTrain(x);
    ref.tape.dispose();
    const fe = relError(dev.features.toFloat32Array(), ref.features.toFloat32Array());
    ref.features.dispose();
    dev.features.dispose();
    // Train-mode batch norm over 4 images (1 x 1 maps at layer4) magnifies rounding: each backend is
    // within 1e-4 of float64 (test/backward), so the two may differ by twice that.
    record({ name: `${name}: features`, error: fe, limit: 2e-4, ok: fe <= 2e-4, ms: 0 });
    hostTape = dev.tape.copyTo('cpu');
    const devGrads = devNet.backward(dev.tape, gd).grads;
    synchronize(device);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpuGrads = cpuNet.backward(hostTape, g).grads;
    const hostGrads = new Map<string, Tensor>();
    try {
      let worst = 0;
      for (const [k, v] of devGrads) {
        const h = v.to('cpu');
        hostGrads.set(k, h);
        worst = Math.max(worst, relError(h.toFloat32Array(), cpuGrads.get(k)!.toFloat32Array()));
      }
      record({ name: `${name}: every gradient against the CPU's on the same tape`, error: worst, limit: 1e-4, ok: worst <= 1e-4, ms: Math.round(ms * 100) / 100 });
      devNet.step(sgdDev, devGrads);
      cpuNet.step(sgdCpu, hostGrads);
      let same = true;
      for (const k of devNet.parameterNames()) {
        const a = devNet.get(k).toFloat32Array(), b = cpuNet.get(k).toFloat32Array();
        same &&= a.every((v, i) => Object.is(v, b[i]));
      }
      record({ name: `${name}: SGD on those gradients: the same bits`, error: same ? 0 : 1, limit: 0, ok: same, ms: 0 });
    } finally {
      for (const m of [devGrads, cpuGrads, hostGrads]) for (const v of m.values()) v.dispose();
    }
  } catch (e) {
    record({ name: `${name}: failed: ${(e as Error).message}`, error: Infinity, limit: 0, ok: false, ms: 0 });
  } finally {
    hostTape?.dispose();  // backward() consumed it, unless the device's backward failed first
    sgdCpu.dispose();
    sgdDev.dispose();
    cpuNet?.dispose();
    devNet?.dispose();
  }
}

/** Every check on `device` (a CUDA device), against the CPU. */
export async function runSelfTest(device: string, onCheck?: (c: SelfTestCheck) => void): Promise<SelfTestReport> {
  const d = resolveDevice(device);
  if (d === 'cpu') throw new SslInvError('ERR_INVALID_ARGUMENT', 'the self-test compares a CUDA device with the CPU: give cuda or cuda:N', { field: 'device' });
  const info = cudaInfo().devices.find((x) => `cuda:${x.index}` === d)!;
  const checks: SelfTestCheck[] = [];
  const record = (c: SelfTestCheck) => { checks.push(c); onCheck?.(c); };
  const io = new Inputs(d);
  try {
    let seed = 1;
    // Convolutions: fp32 with and without the fused epilogue, TF32 and bf16 against the CPU's fp32.
    for (const p of CONVS) {
      const q = outSize(p.h, p.r, p.stride, p.pad), qw = outSize(p.w, p.s, p.stride, p.pad);
      const g: ops.ConvGeometry = { outChannels: p.k, kernel: [p.r, p.s], stride: [p.stride, p.stride], padding: [p.pad, p.pad] };
      const x = io.host(values(p.n * p.h * p.w * p.c, seed++), [p.n, p.h, p.w, p.c]);
      const w = io.host(values(p.k * p.c * p.r * p.s, seed++, 0.3), [p.k, p.c, p.r, p.s]);
      const bias = io.host(values(p.k, seed++), [p.k]);
      const res = io.host(values(p.n * q * qw * p.k, seed++), [p.n, q, qw, p.k]);
      const dy = io.host(values(p.n * q * qw * p.k, seed++), [p.n, q, qw, p.k]);
      const [xd, bd, rd, wd, dyd] = [x, bias, res, w, dy].map((t) => io.dev(t)) as [Tensor, Tensor, Tensor, Tensor, Tensor];
      // Each backend packs for its own kernels.
      const pw = io.own(ops.packConvWeights(w)), pwd = io.own(ops.packConvWeights(wd));
      const conv = (xx: Tensor, ww: Tensor, ep: Parameters<typeof ops.conv2d>[3]) => ops.conv2d(xx, ww, g, ep);
      compare(record, d, `conv ${p.name}, fp32`, 1e-5, () => conv(x, pw, {}), () => conv(xd, pwd, {}));
      compare(record, d, `conv ${p.name}, fp32 + bias + residual + ReLU`, 1e-5,
        () => conv(x, pw, { bias, residual: res, relu: true }), () => conv(xd, pwd, { bias: bd, residual: rd, relu: true }));
      compare(record, d, `conv ${p.name}, TF32`, 2e-3, () => conv(x, pw, {}), () => conv(xd, pwd, { precision: 'tf32' }));
      compare(record, d, `conv ${p.name}, bf16`, 1.5e-2, () => conv(x, pw, {}), () => conv(xd, pwd, { precision: 'bf16' }));
      compare(record, d, `conv ${p.name}: backward data`, 1e-5,
        () => conv2dBackwardData(dy, w, g, [p.h, p.w]), () => conv2dBackwardData(dyd, wd, g, [p.h, p.w]));
      compare(record, d, `conv ${p.name}: backward weight`, 1e-5,
        () => conv2dBackwardWeight(x, dy, g), () => conv2dBackwardWeight(xd, dyd, g));
    }
    // Pooling, batch norm (inference and training, forward and backward), ReLU, GEMM.
    {
      const [n, h, w, c] = [2, 9, 7, 24];
      const x = io.host(values(n * h * w * c, seed++, 2), [n, h, w, c]);
      const xd = io.dev(x);
      const pool = { kernel: [3, 3] as [number, number], stride: [2, 2] as [number, number], padding: [1, 1] as [number, number] };
      compare(record, d, 'max pool 3x3/2', 1e-6, () => ops.maxPool2d(x, pool), () => ops.maxPool2d(xd, pool));
      compare(record, d, 'global average pool', 1e-5, () => ops.globalAvgPool(x), () => ops.globalAvgPool(xd));
      const y = io.host(values(n * h * w * c, seed++), [n, h, w, c]);
      const yd = io.dev(y);
      compare(record, d, 'add + ReLU', 1e-6, () => ops.add(x, y, { relu: true }), () => ops.add(xd, yd, { relu: true }));
      const bnHost = {
        weight: io.host(values(c, seed++, 0.5).map((v) => v + 1), [c]), bias: io.host(values(c, seed++), [c]),
        runningMean: io.host(values(c, seed++), [c]), runningVar: io.host(values(c, seed++, 0.4).map((v) => v + 1), [c]),
      };
      const bnDev = { weight: io.dev(bnHost.weight), bias: io.dev(bnHost.bias), runningMean: io.dev(bnHost.runningMean), runningVar: io.dev(bnHost.runningVar) };
      compare(record, d, 'batch norm (inference)', 1e-5, () => ops.batchNormInference(x, { ...bnHost, eps: 1e-5 }),
        () => ops.batchNormInference(xd, { ...bnDev, eps: 1e-5 }));
      const train = (xx: Tensor, p: typeof bnHost) => {
        const r = batchNormTrain(xx, { ...p, eps: 1e-5, momentum: 0.1 }, { relu: true });
        return [r.y, r.mean, r.invstd, r.runningMean, r.runningVar];
      };
      compare(record, d, 'batch norm (training) + ReLU: output and statistics', 1e-5, () => train(x, bnHost), () => train(xd, bnDev));
      const back = (xx: Tensor, dyy: Tensor, p: typeof bnHost) => {
        const r = batchNormTrain(xx, { ...p, eps: 1e-5, momentum: 0.1 });
        try {
          const b = batchNormBackward(dyy, xx, p.weight, r.mean, r.invstd);
          return [b.dx, b.dweight, b.dbias];
        } finally {
          for (const t of [r.y, r.mean, r.invstd, r.runningMean, r.runningVar]) t.dispose();
        }
      };
      compare(record, d, 'batch norm backward', 1e-5, () => back(x, y, bnHost), () => back(xd, yd, bnDev));
      const a = io.host(values(64 * 96, seed++), [64, 96]), b = io.host(values(96 * 48, seed++), [96, 48]);
      const ad = io.dev(a), bd = io.dev(b);
      compare(record, d, 'matmul 64x96 . 96x48', 1e-5, () => ops.matmul(a, b), () => ops.matmul(ad, bd));
    }
    // SGD with momentum and weight decay: the CPU's bits.
    {
      const n = 1000;
      const p = io.host(values(n, seed++), [n]), gr = io.host(values(n, seed++, 0.1), [n]), buf = io.host(values(n, seed++, 0.01), [n]);
      const opts = { lr: 0.03, momentum: 0.9, weightDecay: 1e-4 };
      const step = (pp: Tensor, gg: Tensor, bb: Tensor) => { const r = sgdStep(pp, gg, bb, opts); return [r.param, r.buffer!]; };
      compare(record, d, 'SGD step (momentum, weight decay): the same bits', 0,
        () => step(p, gr, buf), () => step(io.dev(p), io.dev(gr), io.dev(buf)));
    }
    // A block of columns written from the host (MoCo's enqueue into its [dim, K] queue).
    {
      const [rows, cols, n, at] = [24, 40, 8, 16];
      const base = values(rows * cols, seed++), block = values(rows * n, seed++);
      const write = (dev: string) => {
        const q = tensor(base, [rows, cols]).to(dev);
        q.writeRows(block, { offset: at, rows, stride: cols });
        return q;
      };
      compare(record, d, 'columns written into a matrix (MoCo\'s enqueue): the same bits', 0, () => write('cpu'), () => write(d));
      // Rows gathered (shuffle BN's key order), with repeats: rows of 32, 12 and 4,004 bytes take the
      // kernel's 16-byte and 4-byte word paths (float32 rows never take the byte path).
      for (const per of [8, 3, 1001]) {
        const x = io.host(values(7 * per, seed++), [7, per]);
        const xd = io.dev(x);
        const idx = [6, 0, 3, 3, 1, 5, 2, 4];
        compare(record, d, `rows of ${per} values gathered (shuffle BN): the same bits`, 0, () => ops.gatherRows(x, idx), () => ops.gatherRows(xd, idx));
      }
    }
    // uint8 views normalised on the device (pretrain's views): every byte value, 3 channels.
    {
      const [n, h, w] = [2, 16, 24];
      const px = tensor(Uint8Array.from({ length: n * h * w * 3 }, (_, i) => (i * 131 + (i >> 8)) & 255), [n, h, w, 3]);
      io.own(px);
      const pxd = io.dev(px);
      const norm = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
      compare(record, d, 'uint8 images normalised (pretrain\'s views): the same bits', 0,
        () => ops.normalizeImagesU8(px, norm), () => ops.normalizeImagesU8(pxd, norm));
    }
    // Covariance (np.cov) and the MoCo loss.
    {
      const [n, dim] = [1200, 64];
      const x = io.host(values(n * dim, seed++, 2).map((v) => v + 3), [n, dim]);
      const xd = io.dev(x);
      const cov = (xx: Tensor, dev: string) => {
        const acc = new CovarianceAccumulator(dim, { device: dev });
        try {
          acc.add(xx);
          return tensor(Float32Array.from(acc.covariance()), [dim, dim]);
        } finally {
          acc.dispose();
        }
      };
      // The statistics come back to the host as float64; compared as float32.
      compare(record, d, 'covariance 1,200 x 64', 1e-5, () => cov(x, 'cpu'), () => cov(xd, d), false);
      const [N, K, D] = [16, 1024, 32];
      const unit = (a: Float32Array, rows: number) => {
        for (let i = 0; i < rows; i++) {
          let s = 0;
          for (let j = 0; j < D; j++) s += a[i * D + j]! ** 2;
          for (let j = 0; j < D; j++) a[i * D + j]! /= Math.sqrt(s);
        }
        return a;
      };
      const q = io.host(unit(values(N * D, seed++), N), [N, D]), k = io.host(unit(values(N * D, seed++), N), [N, D]);
      const queueT = unit(values(K * D, seed++), K);
      const queue = new Float32Array(D * K);
      for (let i = 0; i < K; i++) for (let j = 0; j < D; j++) queue[j * K + i] = queueT[i * D + j]!;
      const qu = io.host(queue, [D, K]);
      const loss = (qq: Tensor, kk: Tensor, uu: Tensor) => { const r = ops.mocoLoss(qq, kk, uu, 0.2); return [r.loss, r.dq]; };
      compare(record, d, 'MoCo loss and dL/dq (N 16, K 1,024)', 1e-5, () => loss(q, k, qu), () => loss(io.dev(q), io.dev(k), io.dev(qu)));
    }
    // A whole network: ResNet-18 features of two 64 x 64 images, torchvision's initialisation.
    {
      const sd = torchvisionInitStateDict('resnet18', 7);
      const params = (key: string) => Float32Array.from(sd.get(key)!.data as Float32Array);
      const x = io.host(values(2 * 3 * 64 * 64, seed++, 2), [2, 3, 64, 64]);
      const cpuNet = await ResNetFeatures.load('resnet18', params);
      const devNet = await ResNetFeatures.load('resnet18', params, { device: d });
      try {
        compare(record, d, 'ResNet-18 features, 64 x 64 (fp32)', 1e-4, () => cpuNet.forward(x), () => devNet.forward(x));
      } finally {
        cpuNet.dispose();
        devNet.dispose();
      }
    }
    await trainingStep(record, d, io, seed++);
  } finally {
    io.dispose();
  }
  const failed = checks.filter((c) => !c.ok).length;
  return { device: d, card: info.name, computeCapability: info.computeCapability, checks, passed: checks.length - failed, failed };
}
