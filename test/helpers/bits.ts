// Bit-level comparison of float32 arrays, for tests that promise the same bits (thread counts,
// instruction sets, fused ops against the sequence they replace).

/** True when both arrays hold the same bit patterns (so -0 differs from +0, and NaNs compare by payload). */
export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** The first element where the arrays differ (Object.is), for a failing test's message. */
export function firstDiff(a: Float32Array, b: Float32Array): string {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `[${i}] ${a[i]} vs ${b[i]}`;
  return a.length === b.length ? 'none' : 'lengths differ';
}
