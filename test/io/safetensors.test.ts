// safetensors: round trip, and the reference implementation's structural checks (RELIABILITY §2,
// case 18): header too big, past EOF, not JSON, duplicate key, gap / overlap, end != EOF, bad dtype.
import t from 'tap';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors';

function withHeader(header: string, data: Buffer): Buffer {
  const h = Buffer.from(header, 'utf8');
  const out = Buffer.alloc(8 + h.length + data.length);
  out.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(out, 8);
  data.copy(out, 8 + h.length);
  return out;
}

t.test('round trip', async (t) => {
  const buf = encodeSafetensors(new Map<string, { shape: number[]; data: Float64Array | Float32Array | BigInt64Array | Uint8Array }>([
    ['mean', { shape: [3], data: Float64Array.from([1, 2, 3.5]) }],
    ['cov', { shape: [2, 2], data: Float32Array.from([1, 0, 0, 1]) }],
    ['n', { shape: [], data: BigInt64Array.from([42n]) }],
    ['empty', { shape: [0, 4], data: new Uint8Array(0) }],
  ]), { key: 'abc', count: '42' });
  t.equal((buf.readUInt32LE(0) + 8) % 8, 0, 'data starts 8-byte aligned');
  const f = parseSafetensors(buf);
  t.same(f.metadata, { key: 'abc', count: '42' });
  t.same(Array.from(f.tensors.get('mean')!.data as Float64Array), [1, 2, 3.5]);
  t.same(f.tensors.get('cov')!.shape, [2, 2]);
  t.equal((f.tensors.get('n')!.data as BigInt64Array)[0], 42n);
  t.same(f.tensors.get('empty')!.shape, [0, 4]);
});

t.test('refused with ERR_CHECKPOINT_CORRUPT', async (t) => {
  const ok = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const d8 = Buffer.alloc(8);
  t.doesNotThrow(() => parseSafetensors(withHeader(ok, d8)));
  const cases: [string, Buffer][] = [
    ['shorter than 8 bytes', Buffer.alloc(4)],
    ['header length over 100 MB', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(200n * 1024n * 1024n, 0); return b; })()],
    ['header past EOF', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(100n, 0); return b; })()],
    ['not JSON', withHeader('{"a":', d8)],
    ['not an object', withHeader('[1,2]', Buffer.alloc(0))],
    ['duplicate key', withHeader('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8)],
    ['unknown dtype', withHeader('{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}', d8)],
    ['size mismatch', withHeader('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', d8)],
    ['gap', withHeader('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8)],
    ['overlap', withHeader('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8)],
    ['end before EOF', withHeader(ok, Buffer.alloc(12))],
    ['end past EOF', withHeader(ok, Buffer.alloc(4))],
    ['negative shape', withHeader('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', d8)],
    ['metadata not strings', withHeader('{"__metadata__":{"x":1}}', Buffer.alloc(0))],
  ];
  for (const [name, buf] of cases) t.throws(() => parseSafetensors(buf, 'x.safetensors'), { code: 'ERR_CHECKPOINT_CORRUPT', file: 'x.safetensors' }, name);
});
