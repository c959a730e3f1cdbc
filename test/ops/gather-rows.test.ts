// ops.gatherRows (torch's x[index] along dim 0) on the CPU and on each CUDA device of this machine
// (the emulated one in the default suite, through test/cuda-emu/addon-emu.test.ts), against a plain
// row-by-row copy: every dtype, rows whose sizes select each of the CUDA kernel's word sizes (16, 4
// and 1 bytes), repeated and omitted rows, rows of several thread blocks, an empty index, and the
// refusals, which must come before anything is allocated.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import * as ops from '../../src/ops';
import { tensor, TypedArray } from '../../src/tensor';

type DType = 'float32' | 'float64' | 'int32' | 'uint8' | 'int64';

function make(dtype: DType, n: number, seed: number): TypedArray {
  const v = (i: number) => ((i * 2654435761 + seed * 97) >>> 0) % 251;
  switch (dtype) {
    case 'float32': return Float32Array.from({ length: n }, (_, i) => v(i) / 7 - 13);
    case 'float64': return Float64Array.from({ length: n }, (_, i) => v(i) / 3 - 40);
    case 'int32': return Int32Array.from({ length: n }, (_, i) => v(i) - 100);
    case 'uint8': return Uint8Array.from({ length: n }, (_, i) => v(i));
    case 'int64': return BigInt64Array.from({ length: n }, (_, i) => BigInt(v(i)) - 5n);
  }
}

/** out[r] = x[index[r]] with rows of `per` elements, as plain numbers. */
function reference(x: TypedArray, per: number, index: number[]): number[] {
  const all = Array.from(x as ArrayLike<number | bigint>, Number);
  return index.flatMap((i) => all.slice(i * per, (i + 1) * per));
}

const devices = ['cpu', ...cudaInfo().devices.map((d) => `cuda:${d.index}`)];
for (const device of devices) {
  t.test(`gatherRows on ${device}`, async (t) => {
    const cases: { dtype: DType; shape: number[]; index: number[] }[] = [
      { dtype: 'float32', shape: [5, 2, 4], index: [4, 0, 0, 3, 1, 4] },    // 32-byte rows: 16-byte words
      { dtype: 'float32', shape: [7, 3], index: [6, 2, 5] },                // 12-byte rows: 4-byte words
      { dtype: 'uint8', shape: [4, 5], index: [1, 3, 3, 0, 2, 1, 0] },      // 5-byte rows: bytes
      { dtype: 'float64', shape: [3, 3], index: [2, 1, 0] },
      { dtype: 'int32', shape: [6, 1], index: [5, 5, 5] },
      { dtype: 'int64', shape: [4, 2], index: [3, 0] },
      { dtype: 'float32', shape: [3, 3, 33, 33], index: [2, 0, 1, 2] },     // 13 KB rows: several blocks each
      { dtype: 'float32', shape: [4, 6], index: [] },
    ];
    for (const c of cases) {
      const per = c.shape.slice(1).reduce((a, b) => a * b, 1);
      const data = make(c.dtype, c.shape[0]! * per, c.shape.length);
      const x = tensor(data, c.shape).to(device);
      const y = ops.gatherRows(x, c.index);
      t.equal(y.device, x.device, `${c.dtype} [${c.shape}]: on x's device`);
      t.same(y.shape, [c.index.length, ...c.shape.slice(1)], `${c.dtype} [${c.shape}]: shape`);
      t.same(Array.from(y.toArray() as ArrayLike<number | bigint>, Number), reference(data, per, c.index),
        `${c.dtype} [${c.shape}] rows [${c.index}]: the same bits`);
      x.dispose();
      y.dispose();
    }
    const y16 = ops.gatherRows(ops.toBfloat16(tensor(Float32Array.from([1.5, -2, 3.25, 4, 5, 6]), [3, 2]).to(device)), Int32Array.from([2, 0]));
    t.same(Array.from(y16.toFloat32Array()), [5, 6, 1.5, -2], 'bfloat16 rows');
    y16.dispose();

    const x = tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]).to(device);
    const refusals: [string, () => unknown][] = [
      ['an index past the last row', () => ops.gatherRows(x, [0, 3])],
      ['a negative index', () => ops.gatherRows(x, [-1])],
      ['a fractional index', () => ops.gatherRows(x, [0.5])],
      ['an index beyond int32', () => ops.gatherRows(x, [2 ** 32])],
    ];
    for (const [what, f] of refusals) t.throws(f, { code: 'ERR_INVALID_ARGUMENT' }, `${what} is refused`);
    t.throws(() => ops.gatherRows(x, [0, 3]), { message: /index\[1\] = 3 is outside the 3 rows/ }, 'the message names the position and the value');
    t.same(Array.from(x.toFloat32Array()), [1, 2, 3, 4, 5, 6], 'x is unchanged');
    x.dispose();
    t.throws(() => ops.gatherRows(x, [0]), { code: 'ERR_TENSOR_DISPOSED' }, 'a disposed tensor is refused');
  });
}
