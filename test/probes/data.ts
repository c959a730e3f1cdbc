// The data sets of test/fixtures/probes/make_probe_fixtures.py, rebuilt bit for bit: numpy's legacy
// RandomState(seed).rand draws (src/random/mt19937.ts) combined with the same elementwise float64
// operations in the same order, so no arrays need to be committed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RandomState } from '../../src/random/mt19937';

export const FIXTURES = path.join(__dirname, '..', 'fixtures', 'probes');

export function fixture<T = any>(name: string): T { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as T;
}

export interface Classification {
  X: Float64Array;
  y: Int32Array;
  n: number;
  d: number;
}

export function makeClassification(seed: number, n: number, d: number, K: number, sep = 1.0, chain = 0.0): Classification {
  const rs = new RandomState(seed);
  const u = rs.rand(n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.floor(u[i]! * K);
  const C = rs.rand(K * d), S = rs.rand(d), U = rs.rand(n * d);
  const X = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) X[i * d + j] = ((C[y[i]! * d + j]! - 0.5) * sep + (U[i * d + j]! - 0.5)) * (0.2 + 2.0 * S[j]!);
  }
  if (chain !== 0) for (let j = 1; j < d; j++) for (let i = 0; i < n; i++) X[i * d + j] = X[i * d + j]! + chain * X[i * d + j - 1]!;
  return { X, y, n, d };
}

export function makeMultilabel(seed: number, n: number, d: number, L: number, sep = 1.0): { X: Float64Array; Y: Int32Array } {
  const rs = new RandomState(seed);
  const u = rs.rand(n * L);
  const Y = new Int32Array(n * L);
  for (let i = 0; i < n * L; i++) Y[i] = Math.floor(u[i]! * 2.0);
  const C = rs.rand(L * d), S = rs.rand(d), U = rs.rand(n * d);
  const X = new Float64Array(n * d);
  for (let i = 0; i < n * d; i++) X[i] = U[i]! - 0.5;
  for (let l = 0; l < L; l++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) X[i * d + j] = X[i * d + j]! + (Y[i * L + l]! - 0.5) * (C[l * d + j]! - 0.5) * sep;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) X[i * d + j] = X[i * d + j]! * (0.2 + 2.0 * S[j]!);
  return { X, Y };
}

export function makeRegression(seed: number, n: number, d: number, T: number, noise = 0.5, chain = 0.0, quad = 0.0): { X: Float64Array; Y: Float64Array } {
  const rs = new RandomState(seed);
  const S = rs.rand(d), U = rs.rand(n * d), B = rs.rand(d * T), E = rs.rand(n * T);
  const X = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) X[i * d + j] = (U[i * d + j]! - 0.5) * (0.2 + 2.0 * S[j]!);
  if (chain !== 0) for (let j = 1; j < d; j++) for (let i = 0; i < n; i++) X[i * d + j] = X[i * d + j]! + chain * X[i * d + j - 1]!;
  const Y = new Float64Array(n * T);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) for (let t = 0; t < T; t++) Y[i * T + t] = Y[i * T + t]! + X[i * d + j]! * (B[j * T + t]! - 0.5);
  }
  if (quad !== 0) for (let i = 0; i < n; i++) for (let t = 0; t < T; t++) Y[i * T + t] = Y[i * T + t]! + X[i * d]! * X[i * d + 1]! * quad;
  for (let i = 0; i < n * T; i++) Y[i] = Y[i]! + (E[i]! - 0.5) * noise;
  return { X, Y };
}

/** The first `rows` rows and the rest of a row-major [n, cols] array. */
export function splitRows<A extends Float64Array | Int32Array>(a: A, cols: number, rows: number): [A, A] {
  return [a.slice(0, rows * cols) as A, a.slice(rows * cols) as A];
}

/** Largest |a - b| / max |b|. */
export function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
