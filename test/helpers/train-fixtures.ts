// The comparison rule of the training fixtures (test/fixtures/backward/make_*_train/moco_fixtures.py):
// each quantity comes as PyTorch's float64 values at sampled indices, with `torchErr` (how far
// PyTorch's own float32 run is from float64 there), `scale` (the float64 tensor's RMS) and, for
// parameters after several steps, `update` (the RMS of what the steps changed). Ours must be within
// max(TOL * scale, TORCH_FACTOR * torchErr, UPDATE_TOL * update) of float64: the standard's
// whole-network tolerance 1e-4, or PyTorch's own float32 accuracy where a quantity is ill-conditioned,
// or 2% of an update (a ReLU input within rounding of zero may fall on either side in two correct
// float32 implementations and move one step's gradients by ~1%; see the generators' docstrings).

import { Arch, allConvBns, resnetSpec } from '../../src/nn/resnet-spec';
import { fnv1a32, prngTensor } from './model-fixtures';

export interface FixtureSample { index: number[]; values: number[]; torchErr: number; scale: number; update?: number }

export const TOL = 1e-4;
export const TORCH_FACTOR = 3;
export const UPDATE_TOL = 2e-2;

/** Worst |ours - float64| over the allowed bound across the sample; <= 1 passes (NaN fails). */
export function fixtureRatio(ours: ArrayLike<number>, s: FixtureSample): number {
  const allowed = Math.max(TOL * s.scale, TORCH_FACTOR * s.torchErr, UPDATE_TOL * (s.update ?? 0));
  let w = 0;
  for (let i = 0; i < s.index.length; i++) w = Math.max(w, Math.abs(ours[s.index[i]!]! - s.values[i]!) / allowed);
  return Number.isNaN(w) ? Infinity : w;
}

/** The worst ratio over named tensors, and which. */
export function worstFixtureRatio(entries: [string, FixtureSample][], value: (name: string) => ArrayLike<number>): { worst: number; name: string } {
  let worst = 0, name = '';
  for (const [k, s] of entries) {
    const r = fixtureRatio(value(k), s);
    if (!(r <= worst)) [worst, name] = [r, k];
  }
  return { worst, name };
}

// ---------------------------------------------------------------------------------------------
// The generators' parameter draws (the twins of the Python scripts' param_spec), shared by the CPU
// tests (test/models/resnet-train.test.ts, test/train/moco.test.ts) and the device cases
// (test/helpers/train-device-cases.ts).

/** Shapes of a ResNet backbone's state-dict entries (no num_batches_tracked), by torchvision name. */
export function resnetShapes(arch: Arch): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const cb of allConvBns(resnetSpec(arch))) {
    m.set(`${cb.conv}.weight`, [cb.outChannels, cb.inChannels, cb.kernel, cb.kernel]);
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) m.set(`${cb.bn}.${p}`, [cb.outChannels]);
  }
  return m;
}

/** make_resnet_train_fixtures.py's draw of a state-dict entry of this shape. */
export function resnetFixtureDraw(key: string, shape: number[]): Float32Array {
  let scale = 0.1, shift = 0;
  if (key.endsWith('running_mean')) [scale, shift] = [0.1, 0];
  else if (key.endsWith('running_var')) [scale, shift] = [0.5, 1];
  else if (shape.length === 4) scale = Math.sqrt(6 / (shape[1]! * shape[2]! * shape[3]!));
  else if (key.endsWith('.weight')) [scale, shift] = [0.2, 1];
  return prngTensor({ seed: fnv1a32(`train/${key}`), scale, shift }, shape.reduce((a, b) => a * b, 1));
}

/** make_moco_fixtures.py's draws for a ResNet-18 encoder with the MLP head of width `dim`, by name. */
export function mocoFixtureDraw(dim: number): (key: string) => Float32Array {
  const backbone = resnetShapes('resnet18');
  const shapeOf = (key: string): number[] => {
    const heads: Record<string, number[]> = { 'fc.0.weight': [512, 512], 'fc.0.bias': [512], 'fc.2.weight': [dim, 512], 'fc.2.bias': [dim] };
    const s = heads[key] ?? backbone.get(key);
    if (!s) throw new Error(`no shape for ${key}`);
    return s;
  };
  return (key) => {
    const shape = shapeOf(key);
    let scale = 0.1, shift = 0;
    if (key.endsWith('running_mean')) [scale, shift] = [0.1, 0];
    else if (key.endsWith('running_var')) [scale, shift] = [0.5, 1];
    else if (shape.length === 4) scale = Math.sqrt(6 / (shape[1]! * shape[2]! * shape[3]!));
    else if (key.startsWith('fc.')) scale = 1 / Math.sqrt(512);
    else if (key.endsWith('.weight')) [scale, shift] = [0.2, 1];
    return prngTensor({ seed: fnv1a32(`moco/${key}`), scale, shift }, shape.reduce((a, b) => a * b, 1));
  };
}

// ---------------------------------------------------------------------------------------------
// The MoCo fixtures' checks, shared by test/train/moco.test.ts (CPU) and the device cases.

/** The assertions used by the shared checks: tap's Test and bench/device's MiniTest both have them. */
export interface Asserts {
  ok(v: unknown, name: string): unknown;
  equal(a: unknown, b: unknown, name: string): unknown;
  same(a: unknown, b: unknown, name: string): unknown;
}

/** What the MoCo checks read of a fixture (moco_train*.json). */
export interface MocoStepFixture {
  losses: FixtureSample[];
  accuracy: [number, number][];
  bnSplits?: number;
  /** Each GPU's own loss and [Acc@1, Acc@5] per step (split runs). */
  gpuLosses?: FixtureSample[];
  gpuAccuracy?: [number, number][][];
}

/** Step s's loss and accuracies (and, for a split run, each GPU's) against PyTorch's. */
export function checkMocoStep(t: Asserts, fx: MocoStepFixture, s: number,
  r: { loss: number; acc1: number; acc5: number; perGpu: { loss: number; acc1: number; acc5: number }[] }): void {
  const gpus = fx.bnSplits ?? 1;
  const w = fixtureRatio([r.loss], fx.losses[s]!);
  t.ok(w <= 1, `step ${s + 1}: loss ${r.loss} vs PyTorch ${fx.losses[s]!.values[0]} (${w.toFixed(3)} of the bound)`);
  t.same([r.acc1, r.acc5], fx.accuracy[s], `step ${s + 1}: Acc@1 and Acc@5 as PyTorch's (${fx.accuracy[s]!.join(', ')})`);
  t.equal(r.perGpu.length, gpus, 'one set of meters per GPU');
  if (fx.gpuLosses) {
    const wg = fixtureRatio(r.perGpu.map((g) => g.loss), fx.gpuLosses[s]!);
    t.ok(wg <= 1, `step ${s + 1}: each GPU's loss (${r.perGpu.map((g) => g.loss).join(', ')}) as its process's (${wg.toFixed(3)} of the bound)`);
    t.same(r.perGpu.map((g) => [g.acc1, g.acc5]), fx.gpuAccuracy![s], `step ${s + 1}: each GPU's Acc@1 and Acc@5`);
  } else {
    t.same(r.perGpu, [{ loss: r.loss, acc1: r.acc1, acc5: r.acc5 }], "one GPU's meters are the batch's");
  }
}
