// Tensor basics: factories, copies, reshape views, disposal, scopes and typed errors.
import t from 'tap';
import { tensor, zeros, empty, scope, keep, memoryStats, Tensor } from '../../src/tensor';
import { SslInvError } from '../../src/errors';
import { native } from '../../src/native';
import { writeRowsCases } from '../helpers/write-rows-cases';

t.test('round trip of every dtype', async (t) => {
  const cases = [
    new Float32Array([1.5, -2, 3]), new Float64Array([1e-300, 2, 3]), new Int32Array([-1, 0, 7]),
    new BigInt64Array([-(2n ** 62n), 0n, 5n]), new Uint8Array([0, 128, 255]),
  ];
  for (const a of cases) {
    const x = tensor(a, [3]);
    t.same(Array.from(x.toArray() as ArrayLike<unknown>), Array.from(a as ArrayLike<unknown>), x.dtype);
    t.equal(x.nbytes, a.byteLength);
    x.dispose();
  }
});

t.test('shape errors carry codes', async (t) => {
  t.throws(() => tensor(new Float32Array(5), [2, 3]), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => empty('float32', [-1]), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => empty('float16' as never, [1]), { code: 'ERR_INVALID_ARGUMENT' });
  const x = zeros('float32', [2, 3]);
  t.throws(() => x.reshape([4]), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => x.write(new Float64Array(6)), { code: 'ERR_DTYPE_MISMATCH' });
  const err = t.throws(() => x.reshape([5])) as unknown;
  t.ok(err instanceof SslInvError);
  x.dispose();
});

t.test('an impossible allocation is a typed error and the process goes on', async (t) => {
  t.throws(() => empty('float32', [2 ** 40]), { code: 'ERR_OUT_OF_MEMORY' });
  t.throws(() => empty('float64', [2 ** 31, 2 ** 31]), { code: 'ERR_INVALID_ARGUMENT' }, 'element count overflow');
  const x = zeros('float32', [4]);
  t.same(Array.from(x.toArray() as Float32Array), [0, 0, 0, 0]);
  x.dispose();
});

t.test('an exception on a worker thread becomes a JS error', async (t) => {
  const addon = native() as unknown as { _debugParallelThrow(): void; setNumThreads(n: number): void; info(): { threads: number } };
  const before = addon.info().threads;
  addon.setNumThreads(2);
  t.throws(() => addon._debugParallelThrow(), /thrown on thread 1/);
  addon.setNumThreads(before);
  const x = zeros('float32', [2]);
  t.equal(x.size, 2, 'the addon still works');
  x.dispose();
});

t.test('reshape shares memory; dispose frees and later use throws', async (t) => {
  const before = memoryStats().liveBuffers;
  const x = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  const v = x.reshape([3, 2]);
  t.same(v.shape, [3, 2]);
  x.write(new Float32Array([6, 5, 4, 3, 2, 1]));
  t.same(Array.from(v.toArray() as Float32Array), [6, 5, 4, 3, 2, 1]);
  x.dispose();
  t.equal(memoryStats().liveBuffers, before + 1, 'the view still holds the buffer');
  t.throws(() => x.toArray(), { code: 'ERR_TENSOR_DISPOSED' });
  v.dispose();
  v.dispose();
  t.equal(memoryStats().liveBuffers, before);
});

t.test('writeRows overwrites rows of a region and refuses what does not fit', async (t) => {
  writeRowsCases(t, 'cpu');
});

t.test('scope disposes all but the result', async (t) => {
  const before = memoryStats().liveBuffers;
  let inner: Tensor | undefined;
  const out = scope(() => {
    inner = zeros('float32', [10]);
    const a = zeros('float32', [3]);
    const b = zeros('float32', [3]);
    return { a, list: [b] };
  });
  t.ok(inner!.disposed);
  t.notOk(out.a.disposed);
  t.notOk(out.list[0]!.disposed);
  out.a.dispose();
  out.list[0]!.dispose();
  let k: Tensor | undefined;
  const kept = scope(() => {
    k = keep(zeros('float32', [1]));
    zeros('float32', [1]);
    return 1;
  });
  t.equal(kept, 1);
  t.notOk(k!.disposed, 'keep() survives the scope');
  k!.dispose();
  t.equal(memoryStats().liveBuffers, before);
  t.throws(() => scope(() => { zeros('uint8', [1]); throw new Error('boom'); }), /boom/);
  t.equal(memoryStats().liveBuffers, before, 'a throwing scope frees its tensors');
});
