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

t.test('refused with ERR_CHECKPOINT_CORRUPT, naming the file and the field', async (t) => {
  const ok = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const d8 = Buffer.alloc(8);
  t.doesNotThrow(() => parseSafetensors(withHeader(ok, d8)));
  // [case, bytes, the field the error names]
  const cases: [string, Buffer, string][] = [
    ['shorter than 8 bytes', Buffer.alloc(4), 'header'],
    ['header length over 100 MB', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(200n * 1024n * 1024n, 0); return b; })(), 'header'],
    ['header past EOF', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(100n, 0); return b; })(), 'header'],
    ['not JSON', withHeader('{"a":', d8), 'header'],
    ['not an object', withHeader('[1,2]', Buffer.alloc(0)), 'header'],
    ['duplicate key', withHeader('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8), 'a'],
    ['unknown dtype', withHeader('{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}', d8), 'a'],
    ['entry not an object', withHeader('{"a":5}', Buffer.alloc(0)), 'a'],
    ['size mismatch', withHeader('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', d8), 'a'],
    ['bad data_offsets', withHeader('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}}', d8), 'a'],
    ['gap', withHeader('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8), 'a'],
    ['overlap', withHeader('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8), 'b'],
    ['end before EOF', withHeader(ok, Buffer.alloc(12)), 'a'],
    ['end past EOF', withHeader(ok, Buffer.alloc(4)), 'a'],
    ['data but no tensors', withHeader('{}', d8), 'header'],
    ['negative shape', withHeader('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', d8), 'a'],
    ['metadata not an object', withHeader('{"__metadata__":[1]}', Buffer.alloc(0)), '__metadata__'],
    ['metadata not strings', withHeader('{"__metadata__":{"x":1}}', Buffer.alloc(0)), '__metadata__'],
  ];
  for (const [name, buf, field] of cases) {
    t.throws(() => parseSafetensors(buf, 'x.safetensors'), { code: 'ERR_CHECKPOINT_CORRUPT', file: 'x.safetensors', field }, name);
  }
});

t.test('a header that is not valid UTF-8 is refused, not decoded with replacement characters', async (t) => {
  const good = withHeader('{"ab":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', Buffer.alloc(1));
  t.ok(parseSafetensors(good).tensors.has('ab'));
  const at = good.indexOf('"ab"') + 2;
  for (const [what, bytes] of [['0xff', [0xff]], ['a lone continuation byte', [0x80]], ['a truncated 2-byte sequence', [0xc3]],
    ['an overlong encoding', [0xc0]], ['a UTF-16 surrogate', [0xed, 0xa0]]] as [string, number[]][]) {
    const bad = Buffer.from(good);
    bad.set(bytes, at); // over the key's 'b' (two bytes: its closing quote too)
    t.throws(() => parseSafetensors(bad, 'x.safetensors'),
      { code: 'ERR_CHECKPOINT_CORRUPT', file: 'x.safetensors', field: 'header', message: /not valid UTF-8/ }, what);
  }
  // A real U+FFFD (valid UTF-8, EF BF BD) in a name is a name like any other.
  const fffd = withHeader('{"\ufffd":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}   ', Buffer.alloc(1));
  t.same([...parseSafetensors(fffd).tensors.keys()], ['\ufffd'], 'a genuine U+FFFD is accepted');
});

t.test('shapes: huge, overflowing, negative or not integers', async (t) => {
  const d8 = Buffer.alloc(8);
  const hdr = (shape: string) => withHeader(`{"w":{"dtype":"F32","shape":${shape},"data_offsets":[0,8]}}`, d8);
  const cases: [string, string][] = [
    ['product 2^80 (overflows 64 bits)', `[${2 ** 40}, ${2 ** 40}]`],
    // 2 * (2^63 + 1) = 2^64 + 2 elements: x 4 bytes wraps to exactly 8 in unsigned 64-bit arithmetic.
    ['product 2^64 + 2 (wraps to 8 bytes in u64)', '[2, 27, 19, 43, 5419, 77158673929]'],
    ['one dim over 2^53', '[9007199254740993]'],
    ['negative dim', '[2, -1]'],
    ['fractional dim', '[0.5, 4]'],
    ['string dim', '["2"]'],
    ['null dim', '[null, 2]'],
    ['shape not an array', '2'],
  ];
  for (const [name, shape] of cases) {
    t.throws(() => parseSafetensors(hdr(shape), 'x.safetensors'), { code: 'ERR_CHECKPOINT_CORRUPT', file: 'x.safetensors', field: 'w' }, name);
  }
  t.same(parseSafetensors(hdr('[2, 1]')).tensors.get('w')!.shape, [2, 1], 'the same entry with a fitting shape is read');
});

t.test('F16 and BF16 widen to float32 exactly as torch does (st_dtypes.safetensors, make_safetensors_fixtures.py)', async (t) => {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const dir = path.join(__dirname, '..', 'fixtures', 'io');
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'st_expected.json'), 'utf8')) as
    { tensors: Record<string, { shape: number[]; float32?: string[]; float64?: string[] }> };
  const f = parseSafetensors(fs.readFileSync(path.join(dir, 'st_dtypes.safetensors')), 'st_dtypes.safetensors');
  t.same(f.metadata, { format: 'pt' });
  const value = (s: string) => s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : Number(s);
  for (const [name, e] of Object.entries(expected.tensors)) {
    const got = f.tensors.get(name)!;
    t.same(got.shape, e.shape, `${name}: shape`);
    const want = (e.float32 ?? e.float64)!.map(value);
    t.type(got.data, e.float32 ? Float32Array : Float64Array, `${name}: ${e.float32 ? 'float32' : 'float64'} data`);
    // Object.is: -0 and 0 differ, NaN equals NaN.
    const wrong = want.map((w, i) => [i, w, (got.data as Float32Array)[i]] as const).filter(([, w, g]) => !Object.is(w, g));
    t.same(wrong, [], `${name} (${got.dtype}): every value, signed zeros, subnormals, infinities and NaN`);
  }
  t.equal(f.tensors.get('w_bf16')!.dtype, 'BF16', 'the dtype reported is the file\'s');
});
