/**
 * Where an L-BFGS-B solver's n-vectors live, and the vector steps it takes on them (lbfgsb.ts keeps
 * the control flow and the small 2m x 2m algebra; this is everything of size n).
 *
 * Vectors are named by slot: x, g, z, r, d, t, the last evaluated x, then the memory columns s_j
 * (WS(j)) and y_j (WY(j)), j < m. HostLbfgsbVectors keeps them in one Float64Array and computes every
 * step exactly as the Fortran's reference BLAS does (sequential dot products, left to right), so the
 * solver follows scipy's floating-point path. lbfgsb-device.ts keeps them in a float64 tensor on a
 * CUDA device for objectives that run there; its dot products are reduced in another (fixed) order.
 */
export const X = 0, G = 1, Z = 2, R = 3, D = 4, T = 5, LAST_X = 6;
/** Slots before the memory columns. */
export const FIXED_SLOTS = 7;
export const WS = (j: number): number => FIXED_SLOTS + j;
export const WY = (m: number, j: number): number => FIXED_SLOTS + m + j;

export interface LbfgsbVectors {
  readonly n: number;
  readonly m: number;
  /** dst = src */
  copy(dst: number, src: number): void;
  /** dst = -src */
  negate(dst: number, src: number): void;
  /** dst = a - b */
  sub(dst: number, a: number, b: number): void;
  /** dst = s * a */
  scale(dst: number, a: number, s: number): void;
  /** dst = a + s * b */
  axpy(dst: number, a: number, s: number, b: number): void;
  /** a . b */
  dot(a: number, b: number): number;
  /** out[k] = x . ys[k] */
  dots(x: number, ys: readonly number[], out: Float64Array): void;
  /** subsm's update of r (its d) and z; see lbfgsb.ts. wy/ws are the memory slots in pointer order. */
  subsmUpdate(wy: readonly number[], ws: readonly number[], a: ArrayLike<number>, b: ArrayLike<number>, theta: number): void;
  /** max |g_i|, or NaN when g has a NaN (projgr). */
  projgr(): number;
  /** Whether x differs from the last evaluated x (true when nothing was evaluated yet); then remembers x. */
  takeEvaluatedX(): boolean;
  /** A copy of a vector on the host. */
  read(slot: number): Float64Array;
  /** Overwrites a vector from the host. */
  write(slot: number, values: ArrayLike<number>): void;
  /** Frees device memory (host vectors: nothing). */
  dispose?(): void;
}

/** The reference BLAS's ddot: a sequential sum. */
export function ddot(n: number, x: Float64Array, xo: number, y: Float64Array, yo: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[xo + i]! * y[yo + i]!;
  return s;
}

/**
 * out[k] = ddot(n, x, xo, buf, yos[k]) for every k: the same sequential sums, bit for bit, four at a
 * time in one pass. A lone dot product is bound by the latency of its dependent adds; four
 * independent ones interleaved keep the adder busy and read x once (the memory update and formk each
 * need up to 2m dot products against one vector, which dominate an iteration at n ~ 20,000).
 */
function ddotMany(n: number, x: Float64Array, xo: number, y: Float64Array, yos: readonly number[], out: Float64Array): void {
  const count = yos.length;
  let k = 0;
  for (; k + 4 <= count; k += 4) {
    const o0 = yos[k]!, o1 = yos[k + 1]!, o2 = yos[k + 2]!, o3 = yos[k + 3]!;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < n; i++) {
      const xv = x[xo + i]!;
      s0 += xv * y[o0 + i]!;
      s1 += xv * y[o1 + i]!;
      s2 += xv * y[o2 + i]!;
      s3 += xv * y[o3 + i]!;
    }
    out[k] = s0;
    out[k + 1] = s1;
    out[k + 2] = s2;
    out[k + 3] = s3;
  }
  for (; k < count; k++) out[k] = ddot(n, x, xo, y, yos[k]!);
}

/** The vectors in one host Float64Array, slot s at [s * n, (s + 1) * n). */
export class HostLbfgsbVectors implements LbfgsbVectors {
  readonly buf: Float64Array;
  private evaluated = false;

  constructor(readonly n: number, readonly m: number) {
    this.buf = new Float64Array((FIXED_SLOTS + 2 * m) * n);
  }

  /** A live view of one vector. */
  view(slot: number): Float64Array {
    return this.buf.subarray(slot * this.n, (slot + 1) * this.n);
  }

  copy(dst: number, src: number): void {
    const n = this.n;
    this.buf.copyWithin(dst * n, src * n, (src + 1) * n);
  }

  negate(dst: number, src: number): void {
    const b = this.buf, n = this.n, o = dst * n, a = src * n;
    for (let i = 0; i < n; i++) b[o + i] = -b[a + i]!;
  }

  sub(dst: number, a: number, c: number): void {
    const b = this.buf, n = this.n, o = dst * n, ao = a * n, co = c * n;
    for (let i = 0; i < n; i++) b[o + i] = b[ao + i]! - b[co + i]!;
  }

  scale(dst: number, a: number, s: number): void {
    const b = this.buf, n = this.n, o = dst * n, ao = a * n;
    for (let i = 0; i < n; i++) b[o + i] = s * b[ao + i]!;
  }

  axpy(dst: number, a: number, s: number, c: number): void {
    const b = this.buf, n = this.n, o = dst * n, ao = a * n, co = c * n;
    for (let i = 0; i < n; i++) b[o + i] = b[ao + i]! + s * b[co + i]!;
  }

  dot(a: number, c: number): number {
    return ddot(this.n, this.buf, a * this.n, this.buf, c * this.n);
  }

  dots(x: number, ys: readonly number[], out: Float64Array): void {
    ddotMany(this.n, this.buf, x * this.n, this.buf, ys.map((s) => s * this.n), out);
  }

  subsmUpdate(wy: readonly number[], ws: readonly number[], a: ArrayLike<number>, bv: ArrayLike<number>, theta: number): void {
    const b = this.buf, n = this.n, d = R * n, z = Z * n, col = wy.length;
    // Two pairs per pass over d; each element still gets its terms in j order.
    let j = 0;
    for (; j + 2 <= col; j += 2) {
      const o = wy[j]! * n, p = ws[j]! * n, o2 = wy[j + 1]! * n, p2 = ws[j + 1]! * n;
      const a1 = a[j]!, b1 = bv[j]!, a2 = a[j + 1]!, b2 = bv[j + 1]!;
      for (let i = 0; i < n; i++) {
        const t = b[d + i]! + (b[o + i]! * a1) / theta + b[p + i]! * b1;
        b[d + i] = t + (b[o2 + i]! * a2) / theta + b[p2 + i]! * b2;
      }
    }
    for (; j < col; j++) {
      const o = wy[j]! * n, p = ws[j]! * n, a1 = a[j]!, b1 = bv[j]!;
      for (let i = 0; i < n; i++) b[d + i] = b[d + i]! + (b[o + i]! * a1) / theta + b[p + i]! * b1;
    }
    const s = 1 / theta;
    for (let i = 0; i < n; i++) b[d + i] = s * b[d + i]!;
    // the projected step: no bounds, so x_k + d_k for every variable
    for (let i = 0; i < n; i++) b[z + i] = b[z + i]! + b[d + i]!;
  }

  projgr(): number {
    const b = this.buf, n = this.n, o = G * n;
    let s = 0;
    for (let i = 0; i < n; i++) {
      const gi = b[o + i]!;
      if (gi !== gi) return gi;
      s = Math.max(s, Math.abs(gi));
    }
    return s;
  }

  takeEvaluatedX(): boolean {
    const b = this.buf, n = this.n, x = X * n, l = LAST_X * n;
    let changed = !this.evaluated;
    if (!changed) {
      for (let i = 0; i < n; i++) {
        if (b[x + i] !== b[l + i]) { // np.array_equal: NaN differs
          changed = true;
          break;
        }
      }
    }
    if (changed) this.copy(LAST_X, X);
    this.evaluated = true;
    return changed;
  }

  read(slot: number): Float64Array {
    return this.view(slot).slice();
  }

  write(slot: number, values: ArrayLike<number>): void {
    const b = this.buf, o = slot * this.n;
    for (let i = 0; i < this.n; i++) b[o + i] = values[i]!;
  }
}
