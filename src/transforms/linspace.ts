/**
 * torch.linspace(start, end, steps) in float32, value for value as PyTorch 1.13 computes it on x86
 * CPUs (the AVX2 kernel Debian's and PyPI's builds dispatch to), because the original's transform
 * grids are linspaces and their float32 parameters are what the original's views used.
 *
 * PyTorch 1.13's CPU linspace: step = float32(end - start) / float32(steps - 1); elements are made
 * 16 at a time as two vectors of 8, each vector from a base computed with a fused multiply-add
 * (start + step * idx below the halfway point, end - step * (steps - idx - 1) from it on) plus
 * lane * step rounded separately; the last steps % 16 elements use the scalar formula (also fused).
 * Checked against torch 1.13 on every grid the original uses (test/transforms/grid.test.ts).
 */

const f32 = Math.fround;

/** float32(x * y + z) with one rounding, as an FMA computes it. */
function fma32(x: number, y: number, z: number): number {
  // x and y are float32 values, so x * y is exact in float64; the sum is then rounded once to
  // float64 and once to float32. The double rounding can differ from a true FMA only when the
  // float64 sum lies exactly halfway between two float32 values after rounding, which needs more
  // than 53 significant bits: not possible here (products have <= 48 bits, summands are float32).
  return f32(x * y + z);
}

export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  if (!Number.isSafeInteger(steps) || steps < 0) throw new RangeError(`steps must be an integer >= 0, got ${steps}`);
  const out = new Float32Array(steps);
  if (steps === 0) return out;
  const a = f32(start), b = f32(end);
  if (steps === 1) {
    out[0] = a;
    return out;
  }
  const step = f32(f32(b - a) / f32(steps - 1));
  const halfway = Math.floor(steps / 2);
  const scalar = (i: number) => (i < halfway ? fma32(step, i, a) : fma32(-step, steps - i - 1, b));
  const W = 8;
  let i = 0;
  for (; i <= steps - 2 * W; i += 2 * W) {
    for (let v = 0; v < 2; v++) {
      const idx = i + v * W;
      const base = scalar(idx);
      for (let j = 0; j < W; j++) out[idx + j] = f32(base + f32(j * step));
    }
  }
  for (; i < steps; i++) out[i] = scalar(i);
  return out;
}
