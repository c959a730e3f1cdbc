// Float64 reference implementations of the CPU ops, written as plainly as possible (direct loops,
// PyTorch's NCHW layout), and the tolerance checks the op tables use.
//
// Tolerance (see docs/KERNELS.md): for a product-sum output, |out - ref| <= rtol * (|A|.|B|) + atol,
// where |A|.|B| is the same sum over absolute values, so cancellation cannot cause false failures;
// elementwise outputs use rtol * |ref| + atol.

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32, uniform in [-1, 1)
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return (s / 2 ** 31) - 1;
  };
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * scale;
  return a;
}

export interface ConvCase {
  n: number; c: number; h: number; w: number; k: number; r: number; s: number; stride: number; pad: number;
}

export function outSize(h: number, r: number, stride: number, pad: number): number {
  return Math.floor((h + 2 * pad - r) / stride) + 1;
}

/** conv2d, x NCHW, w [K, C, R, S] -> y NCHW, plus sum |x||w| per output for the tolerance. */
export function conv2dRef(p: ConvCase, x: Float32Array, w: Float32Array, bias?: Float32Array,
  scale?: Float32Array): { y: Float64Array; mag: Float64Array } {
  const P = outSize(p.h, p.r, p.stride, p.pad), Q = outSize(p.w, p.s, p.stride, p.pad);
  const y = new Float64Array(p.n * p.k * P * Q);
  const mag = new Float64Array(y.length);
  for (let n = 0; n < p.n; n++) for (let k = 0; k < p.k; k++) for (let op = 0; op < P; op++) for (let oq = 0; oq < Q; oq++) {
    let acc = 0, m = 0;
    for (let c = 0; c < p.c; c++) for (let r = 0; r < p.r; r++) for (let s = 0; s < p.s; s++) {
      const ih = op * p.stride - p.pad + r, iw = oq * p.stride - p.pad + s;
      if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
      const xv = x[((n * p.c + c) * p.h + ih) * p.w + iw]!;
      const wv = w[((k * p.c + c) * p.r + r) * p.s + s]! * (scale ? scale[k]! : 1);
      acc += xv * wv;
      m += Math.abs(xv * wv);
    }
    const i = ((n * p.k + k) * P + op) * Q + oq;
    y[i] = acc + (bias ? bias[k]! : 0);
    mag[i] = m + (bias ? Math.abs(bias[k]!) : 0);
  }
  return { y, mag };
}

export function maxPoolRef(x: Float32Array, n: number, c: number, h: number, w: number, k: number, stride: number,
  pad: number): Float64Array {
  const P = outSize(h, k, stride, pad), Q = outSize(w, k, stride, pad);
  const y = new Float64Array(n * c * P * Q);
  for (let i = 0; i < n * c; i++) for (let op = 0; op < P; op++) for (let oq = 0; oq < Q; oq++) {
    let m = -Infinity;
    for (let r = 0; r < k; r++) for (let s = 0; s < k; s++) {
      const ih = op * stride - pad + r, iw = oq * stride - pad + s;
      if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
      const v = x[(i * h + ih) * w + iw]!;
      if (v > m || Number.isNaN(v)) m = v;
    }
    y[(i * P + op) * Q + oq] = m;
  }
  return y;
}

/** NCHW <-> NHWC for float32 data. */
export function toNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let cc = 0; cc < c; cc++) for (let p = 0; p < h * w; p++) {
    y[(i * h * w + p) * c + cc] = x[(i * c + cc) * h * w + p]!;
  }
  return y;
}

export function toNchw(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let cc = 0; cc < c; cc++) for (let p = 0; p < h * w; p++) {
    y[(i * c + cc) * h * w + p] = x[(i * h * w + p) * c + cc]!;
  }
  return y;
}

export interface CheckResult {
  ok: boolean;
  worst: number;      // largest |out - ref| / allowed
  maxAbs: number;
  relNorm: number;    // ||out - ref|| / ||ref||
  firstBad?: string;
}

/** Element i passes when |out - ref| <= rtol * mag_i + atol (mag defaults to |ref|); NaN must match NaN. */
export function check(out: ArrayLike<number>, ref: ArrayLike<number>, rtol: number, atol: number,
  mag?: ArrayLike<number>): CheckResult {
  let worst = 0, maxAbs = 0, num = 0, den = 0, firstBad: string | undefined;
  if (out.length !== ref.length) return { ok: false, worst: Infinity, maxAbs: Infinity, relNorm: Infinity, firstBad: 'length' };
  for (let i = 0; i < ref.length; i++) {
    const o = out[i]!, r = ref[i]!;
    if (Number.isNaN(r) || Number.isNaN(o)) {
      if (Number.isNaN(r) !== Number.isNaN(o)) { worst = Infinity; firstBad ??= `[${i}] out ${o} ref ${r}`; }
      continue;
    }
    if (!Number.isFinite(r) || !Number.isFinite(o)) {
      if (o !== r) { worst = Infinity; firstBad ??= `[${i}] out ${o} ref ${r}`; }
      continue;
    }
    const d = Math.abs(o - r);
    const allowed = rtol * (mag ? mag[i]! : Math.abs(r)) + atol;
    const ratio = d / allowed;
    if (ratio > worst) worst = ratio;
    if (ratio > 1) firstBad ??= `[${i}] out ${o} ref ${r} diff ${d.toExponential(2)} allowed ${allowed.toExponential(2)}`;
    maxAbs = Math.max(maxAbs, d);
    num += d * d;
    den += r * r;
  }
  const res: CheckResult = { ok: worst <= 1, worst, maxAbs, relNorm: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num) };
  if (firstBad !== undefined) res.firstBad = firstBad;
  return res;
}

/**
 * MoCo v2 loss, each query's loss (rowLoss) and dL/dq in float64 (ops.mocoLoss's contract), with error magnitudes for `check`:
 * lossMag and dqMag scale the tolerance by the size of the logits (an fp32 dot product of D terms is
 * off by about u * sum |q||k| / T, and every probability inherits that relative error).
 */
export function mocoLossRef(q: Float32Array, kp: Float32Array, queue: Float32Array, n: number, d: number, k: number, t: number) {
  const dq = new Float64Array(n * d), dqMag = new Float64Array(n * d);
  const rowLoss = new Float64Array(n), rowLossMag = new Float64Array(n);
  let loss = 0, lossMag = 0;
  for (let i = 0; i < n; i++) {
    const logits = new Float64Array(k + 1), mags = new Float64Array(k + 1);
    for (let j = 0; j <= k; j++) {
      let s = 0, g = 0;
      for (let c = 0; c < d; c++) {
        const key = j === 0 ? kp[i * d + c]! : queue[c * k + (j - 1)]!;
        s += q[i * d + c]! * key;
        g += Math.abs(q[i * d + c]! * key);
      }
      logits[j] = s / t;
      mags[j] = g / t;
    }
    let m = -Infinity, maxMag = 0;
    for (let j = 0; j <= k; j++) { m = Math.max(m, logits[j]!); maxMag = Math.max(maxMag, mags[j]!); }
    let sum = 0;
    for (let j = 0; j <= k; j++) sum += Math.exp(logits[j]! - m);
    const lse = m + Math.log(sum);
    rowLoss[i] = lse - logits[0]!;
    rowLossMag[i] = Math.abs(lse) + Math.abs(logits[0]!) + maxMag;
    loss += rowLoss[i]!;
    lossMag += rowLossMag[i]!;
    for (let j = 0; j <= k; j++) {
      const p = Math.exp(logits[j]! - lse);
      for (let c = 0; c < d; c++) {
        const key = j === 0 ? kp[i * d + c]! : queue[c * k + (j - 1)]!;
        dq[i * d + c]! += p * key;
        dqMag[i * d + c]! += p * Math.abs(key) * (1 + maxMag);
      }
    }
    for (let c = 0; c < d; c++) {
      dq[i * d + c] = (dq[i * d + c]! - kp[i * d + c]!) / (t * n);
      dqMag[i * d + c] = (dqMag[i * d + c]! + Math.abs(kp[i * d + c]!)) / (t * n);
    }
  }
  return { loss: loss / n, lossMag: lossMag / n, dq, dqMag, rowLoss, rowLossMag };
}

/** The bf16 bits of float32 bits v: nearest even, every NaN 0x7FFF (CUDA's rule). */
export function bf16Bits(v: number): number {
  return (v & 0x7fffffff) > 0x7f800000 ? 0x7fff : ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Each value rounded to bf16 (nearest even) and widened back: what storing it in bf16 keeps. */
export function roundBf16(a: Float32Array): Float32Array {
  const out = Float32Array.from(a);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) u[i] = (bf16Bits(u[i]!) << 16) >>> 0;
  return out;
}
