/**
 * What the GPU benchmarks share (check.ts, conv-tune.ts): seeded random inputs, inputs on the
 * device, BN-carrying random ResNet parameters, a synchronised timing loop, and the 23 distinct
 * convolutions of ResNet-50 at 224 x 224 (ANCHORS.md).
 */
import { synchronize } from '../../src/device';
import { Arch, allConvBns, resnetSpec } from '../../src/nn/resnet-spec';
import { tensor, Tensor } from '../../src/tensor';

/** A small LCG in [-0.5, 0.5): the same inputs on every machine, no dependency. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
}

export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * scale;
  return a;
}

/** A tensor of `a` on `device` (the host copy freed). */
export function onDevice(device: string, a: Float32Array, shape: number[]): Tensor {
  const h = tensor(a, shape);
  if (device === 'cpu') return h;
  try { return h.to(device); } finally { h.dispose(); }
}

/** BN-carrying random ResNet parameters (He-scaled convs, non-trivial BN statistics). */
export function randomParams(arch: Arch, seed: number): (key: string) => Float32Array {
  const m = new Map<string, Float32Array>();
  const r = rng(seed);
  for (const cb of allConvBns(resnetSpec(arch))) {
    const fan = cb.inChannels * cb.kernel * cb.kernel;
    m.set(`${cb.conv}.weight`, Float32Array.from({ length: cb.outChannels * fan }, () => r() * Math.sqrt(12 / fan)));
    m.set(`${cb.bn}.weight`, Float32Array.from({ length: cb.outChannels }, () => 0.6 + r() * 0.5));
    m.set(`${cb.bn}.bias`, Float32Array.from({ length: cb.outChannels }, () => r() * 0.2));
    m.set(`${cb.bn}.running_mean`, Float32Array.from({ length: cb.outChannels }, () => r() * 0.2));
    m.set(`${cb.bn}.running_var`, Float32Array.from({ length: cb.outChannels }, () => 0.8 + r() * 0.4));
  }
  return (k) => m.get(k)!;
}

/** Milliseconds per call of fn on `device`: warm-up calls, then iters calls between two synchronisations. */
export function timeLoop(device: string, fn: () => void, iters: number, warmup = 2): number {
  const sync = () => { if (device !== 'cpu') synchronize(device); };
  for (let i = 0; i < warmup; i++) fn();
  sync();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn();
  sync();
  return Number(process.hrtime.bigint() - t0) / 1e6 / iters;
}

/** [Cin, Cout, kernel, stride, H]: each distinct ResNet-50 convolution (padding kernel / 2). */
export const CONV_SHAPES: [number, number, number, number, number][] = [
  [3, 64, 7, 2, 224], [64, 64, 1, 1, 56], [64, 64, 3, 1, 56], [64, 256, 1, 1, 56], [256, 64, 1, 1, 56],
  [256, 128, 1, 1, 56], [128, 128, 3, 2, 56], [128, 512, 1, 1, 28], [256, 512, 1, 2, 56], [512, 128, 1, 1, 28],
  [128, 128, 3, 1, 28], [512, 256, 1, 1, 28], [256, 256, 3, 2, 28], [256, 1024, 1, 1, 14], [512, 1024, 1, 2, 28],
  [1024, 256, 1, 1, 14], [256, 256, 3, 1, 14], [1024, 512, 1, 1, 14], [512, 512, 3, 2, 14], [512, 2048, 1, 1, 7],
  [1024, 2048, 1, 2, 14], [2048, 512, 1, 1, 7], [512, 512, 3, 1, 7],
];
