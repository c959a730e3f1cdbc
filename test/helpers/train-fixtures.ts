// The comparison rule of the training fixtures (test/fixtures/backward/make_*_train/moco_fixtures.py):
// each quantity comes as PyTorch's float64 values at sampled indices, with `torchErr` (how far
// PyTorch's own float32 run is from float64 there), `scale` (the float64 tensor's RMS) and, for
// parameters after several steps, `update` (the RMS of what the steps changed). Ours must be within
// max(TOL * scale, TORCH_FACTOR * torchErr, UPDATE_TOL * update) of float64: the standard's
// whole-network tolerance 1e-4, or PyTorch's own float32 accuracy where a quantity is ill-conditioned,
// or 2% of an update (a ReLU input within rounding of zero may fall on either side in two correct
// float32 implementations and move one step's gradients by ~1%; see the generators' docstrings).

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
