/**
 * Tensor.writeRows on one device, against a plain loop over a host copy: contiguous runs, column
 * blocks of a matrix (MoCo's enqueue: dim rows of n keys, K apart), every dtype's element size, and
 * the refusals, each of which must leave the tensor as it was. Shared by the CPU test
 * (test/unit/tensor.test.ts) and the device test (test/unit/device.test.ts, on a GPU or the
 * emulated device).
 */
import type { Test } from 'tap';
import { tensor, zeros, TypedArray } from '../../src/tensor';

type DType = 'float32' | 'float64' | 'int32' | 'uint8' | 'int64';

/** What writeRows must leave: `before` with row r of src at offset + r * stride. */
function expected(before: number[], src: number[], offset: number, rows: number, stride: number): number[] {
  const out = before.slice();
  const width = src.length / rows;
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) out[offset + r * stride + j] = src[r * width + j]!;
  return out;
}

function arrayOf(dtype: DType, values: number[]): TypedArray {
  switch (dtype) {
    case 'float32': return Float32Array.from(values);
    case 'float64': return Float64Array.from(values);
    case 'int32': return Int32Array.from(values);
    case 'uint8': return Uint8Array.from(values);
    case 'int64': return BigInt64Array.from(values.map(BigInt));
  }
}

const plain = (a: TypedArray): number[] => Array.from(a as ArrayLike<number | bigint>, Number);

export function writeRowsCases(t: Test, device: string): void {
  // [rows, cols] matrix, block of `n` columns at column `c0`, for several sizes and element types.
  const cases: { dtype: DType; rows: number; cols: number; n: number; c0: number }[] = [
    { dtype: 'float32', rows: 4, cols: 16, n: 4, c0: 8 },
    { dtype: 'float32', rows: 3, cols: 7, n: 1, c0: 6 },
    { dtype: 'float32', rows: 1, cols: 9, n: 9, c0: 0 },
    { dtype: 'float64', rows: 5, cols: 6, n: 2, c0: 3 },
    { dtype: 'int32', rows: 2, cols: 5, n: 5, c0: 0 },
    { dtype: 'uint8', rows: 3, cols: 11, n: 3, c0: 4 },
    { dtype: 'int64', rows: 2, cols: 4, n: 2, c0: 1 },
  ];
  for (const c of cases) {
    const total = c.rows * c.cols;
    const before = Array.from({ length: total }, (_, i) => (i * 7 + 3) % 97);
    const src = Array.from({ length: c.rows * c.n }, (_, i) => 100 + ((i * 13) % 101));
    const x = tensor(arrayOf(c.dtype, before), [c.rows, c.cols]).to(device);
    x.writeRows(arrayOf(c.dtype, src), { offset: c.c0, rows: c.rows, stride: c.cols });
    t.same(plain(x.toArray()), expected(before, src, c.c0, c.rows, c.cols),
      `${device} ${c.dtype} [${c.rows}, ${c.cols}]: columns ${c.c0}..${c.c0 + c.n - 1} written, the rest kept`);
    x.dispose();
  }

  // Defaults: one contiguous run; rows with the default stride are contiguous too.
  const x = zeros('float32', [10], device);
  x.writeRows(Float32Array.from([1, 2, 3]), { offset: 7 });
  t.same(plain(x.toArray()), [0, 0, 0, 0, 0, 0, 0, 1, 2, 3], `${device}: a run at the end`);
  x.writeRows(Float32Array.from([4, 5, 6, 7]), { offset: 1, rows: 2 });
  t.same(plain(x.toArray()), [0, 4, 5, 6, 7, 0, 0, 1, 2, 3], `${device}: two rows, default stride`);
  x.writeRows(new Float32Array(0), { offset: 10 });
  t.same(plain(x.toArray()), [0, 4, 5, 6, 7, 0, 0, 1, 2, 3], `${device}: an empty write at the end changes nothing`);

  const kept = plain(x.toArray());
  const refusals: [string, () => void, string][] = [
    ['past the end', () => x.writeRows(new Float32Array(4), { offset: 7 }), 'ERR_SHAPE_MISMATCH'],
    ['last row past the end', () => x.writeRows(new Float32Array(4), { offset: 1, rows: 2, stride: 8 }), 'ERR_SHAPE_MISMATCH'],
    ['offset past the end', () => x.writeRows(new Float32Array(0), { offset: 11 }), 'ERR_SHAPE_MISMATCH'],
    ['negative offset', () => x.writeRows(new Float32Array(2), { offset: -1 }), 'ERR_INVALID_ARGUMENT'],
    ['fractional offset', () => x.writeRows(new Float32Array(2), { offset: 1.5 }), 'ERR_INVALID_ARGUMENT'],
    ['zero rows', () => x.writeRows(new Float32Array(2), { offset: 0, rows: 0 }), 'ERR_INVALID_ARGUMENT'],
    ['rows that do not divide the length', () => x.writeRows(new Float32Array(5), { offset: 0, rows: 2 }), 'ERR_SHAPE_MISMATCH'],
    ['overlapping rows', () => x.writeRows(new Float32Array(4), { offset: 0, rows: 2, stride: 1 }), 'ERR_INVALID_ARGUMENT'],
    ['a huge stride', () => x.writeRows(new Float32Array(4), { offset: 0, rows: 2, stride: 2 ** 52 }), 'ERR_SHAPE_MISMATCH'],
    ['another dtype', () => x.writeRows(new Float64Array(2), { offset: 0 }), 'ERR_DTYPE_MISMATCH'],
  ];
  for (const [what, f, code] of refusals) {
    t.throws(f, { code }, `${device}: ${what} is refused with ${code}`);
  }
  t.same(plain(x.toArray()), kept, `${device}: the refused writes changed nothing`);
  x.dispose();
  t.throws(() => x.writeRows(new Float32Array(1), { offset: 0 }), { code: 'ERR_TENSOR_DISPOSED' }, `${device}: a disposed tensor refuses`);
}

