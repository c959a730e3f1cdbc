// How native failures reach JS: callNative converts a thrown addon error into an SslInvError with
// its code and the op's name, and nativeOps refuses an addon that lacks an op family.
import t from 'tap';
import { callNative, SslInvError } from '../../src/errors';
import { nativeOps } from '../../src/native';
import { tensor } from '../../src/tensor';
import { matmul } from '../../src/ops';
import { cholesky, dgemm, inverse } from '../../src/linalg';
import { addDiagonal, symmetricEigen } from '../../src/probes/eigen';

t.test('callNative keeps the addon\'s code and names the op', async (t) => {
  const e = t.throws(() => callNative('someOp', () => { throw Object.assign(new Error('bad shape'), { code: 'ERR_SHAPE_MISMATCH' }); }));
  t.ok(e instanceof SslInvError);
  t.equal((e as SslInvError).code, 'ERR_SHAPE_MISMATCH');
  t.equal((e as SslInvError).message, 'someOp: bad shape');
  t.equal(callNative('id', () => 42), 42, 'returns the call\'s value');
});

t.test('an op family missing from the addon is ERR_NATIVE_LOAD with the fix', async (t) => {
  t.throws(() => nativeOps('imaginary', ['noSuchFunction', 'resizeU8']),
    { code: 'ERR_NATIVE_LOAD', message: /no imaginary ops .*npm run build/ });
  t.equal(typeof nativeOps<{ resizeU8: unknown }>('image', ['resizeU8']).resizeU8, 'function');
});

t.test('shape errors from the bindings arrive typed, naming the op', async (t) => {
  const a = tensor(new Float32Array(6), [2, 3]), b = tensor(new Float32Array(8), [4, 2]);
  t.throws(() => matmul(a, b), { code: 'ERR_SHAPE_MISMATCH', message: /gemm: inner dimensions differ: op\(a\) is \[2, 3\], op\(b\) is \[4, 2\]/ });
  const a64 = tensor(new Float64Array(6), [2, 3]), b64 = tensor(new Float64Array(8), [4, 2]);
  t.throws(() => dgemm(a64, b64), { code: 'ERR_SHAPE_MISMATCH', message: /dgemm: inner dimensions differ: op\(a\) is \[2, 3\], op\(b\) is \[4, 2\]/ });
  t.throws(() => dgemm(a64, b64, { transB: true }), { code: 'ERR_SHAPE_MISMATCH', message: /op\(b\) is \[2, 4\]/ });
  // op(a) = a^T [3, 2] times op(b) = b^T [2, 4]: the transposes reach the kernel.
  const c = dgemm(tensor(Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3]), tensor(Float64Array.from([1, 0, 0, 1, 1, 1, 0, 2]), [4, 2]),
    { transA: true, transB: true });
  t.same(c.shape, [3, 4]);
  t.same(Array.from(c.toArray() as Float64Array), [1, 4, 5, 8, 2, 5, 7, 10, 3, 6, 9, 12]);
  for (const f of [cholesky, inverse, (m: typeof a64) => symmetricEigen(m).values, (m: typeof a64) => addDiagonal(m, 1)]) {
    t.throws(() => f(a64), { code: 'ERR_SHAPE_MISMATCH', message: /expected a square matrix, got \[2, 3\]/ });
  }
  for (const x of [a, b, a64, b64, c]) x.dispose();
});
