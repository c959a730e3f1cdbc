/**
 * numpy's summation orders, for results that must round as scikit-learn's do:
 *   - `ndarray.sum()` of a contiguous 1-D float64 array: pairwise summation (blocks of up to 128 with
 *     8 accumulators) within each 8192-element buffer, the buffers added in order;
 *   - `sum(axis=0)` of a C-ordered [n, m] array with m > 1: each column summed row by row;
 *     with m == 1 the column is contiguous and is summed as a 1-D array.
 * And small helpers on row-major float64 matrices.
 */

function pairwiseSum(a: ArrayLike<number>, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    let r0 = a[start]!, r1 = a[start + 1]!, r2 = a[start + 2]!, r3 = a[start + 3]!;
    let r4 = a[start + 4]!, r5 = a[start + 5]!, r6 = a[start + 6]!, r7 = a[start + 7]!;
    let i = 8;
    const end = n - (n % 8);
    for (; i < end; i += 8) {
      const o = start + i;
      r0 += a[o]!; r1 += a[o + 1]!; r2 += a[o + 2]!; r3 += a[o + 3]!;
      r4 += a[o + 4]!; r5 += a[o + 5]!; r6 += a[o + 6]!; r7 += a[o + 7]!;
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** `np.sum(a)` of a contiguous 1-D float64 array. */
export function numpySum(a: ArrayLike<number>): number {
  let res = 0;
  for (let s = 0; s < a.length; s += 8192) res = res + pairwiseSum(a, s, Math.min(8192, a.length - s));
  return res;
}

/** `np.mean(a)` of a contiguous 1-D float64 array (NaN for an empty one, as numpy). */
export function numpyMean(a: ArrayLike<number>): number {
  return numpySum(a) / a.length;
}

/** `x.sum(axis=0)` of a C-ordered [n, m] float64 array. */
export function sumAxis0(x: ArrayLike<number>, n: number, m: number): Float64Array {
  const out = new Float64Array(m);
  if (m === 1) {
    out[0] = numpySum(x.length === n ? x : Array.from({ length: n }, (_, i) => x[i]!));
    return out;
  }
  for (let i = 0; i < n; i++) {
    const o = i * m;
    for (let j = 0; j < m; j++) out[j]! += x[o + j]!;
  }
  return out;
}

/** Rows `rows` of a row-major [*, d] matrix, as a new row-major matrix. */
export function gatherRows(x: Float64Array, d: number, rows: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    out.set(x.subarray(r * d, r * d + d), i * d);
  }
  return out;
}

/** Sequential dot product (the reference BLAS order). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length, ao = 0, bo = 0): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}
