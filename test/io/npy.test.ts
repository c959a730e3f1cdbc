// .npy: round trips, files written by numpy (incl. Fortran order and big-endian), and every bad case
// of RELIABILITY §7 #19/#20.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseNpy, readNpy, readNpySync, encodeNpy, writeNpy, NpyArray, NpyDType } from '../../src/io/npy';

const FIX = path.join(__dirname, '..', 'fixtures', 'io');
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'npy_expected.json'), 'utf8')) as Record<string, { dtype: NpyDType; shape: number[]; values: (number | string)[] }>;

function values(a: NpyArray): (number | string)[] {
  if (a.data instanceof BigInt64Array) return Array.from(a.data, (v) => v.toString());
  return Array.from(a.data as ArrayLike<number>);
}

/** Builds a .npy file from a raw header string (padded like numpy) and a data length. */
function rawNpy(header: string, dataBytes: number, opts: { major?: number; pad?: boolean } = {}): Buffer {
  const major = opts.major ?? 1;
  const prefix = major === 1 ? 10 : 12;
  let h = header;
  if (opts.pad !== false) {
    const padlen = 64 - ((prefix + h.length + 1) % 64);
    h = h + ' '.repeat(padlen) + '\n';
  }
  const buf = Buffer.alloc(prefix + h.length + dataBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(buf, 0);
  if (major === 1) buf.writeUInt16LE(h.length, 8);
  else buf.writeUInt32LE(h.length, 8);
  buf.write(h, prefix, 'latin1');
  return buf;
}

const FILE = '/data/x.npy';

function refuses(t: Test, buf: Buffer, field: string, msg: RegExp, name: string): void {
  const err = t.throws(() => parseNpy(buf, FILE), { code: 'ERR_NPY_FORMAT', file: FILE, field }, name) as unknown as Error;
  t.match(err?.message ?? '', msg, `${name}: message`);
  t.match(err?.message ?? '', FILE, `${name}: message names the file`);
}

t.test('round trip of each dtype and shape, byte-identical headers to numpy', async (t) => {
  const cases: NpyArray[] = [
    { dtype: 'float32', shape: [2, 3], data: new Float32Array([1.5, -2, 3, 4, 5, 6]) },
    { dtype: 'float64', shape: [3], data: new Float64Array([1e-300, -0, Infinity]) },
    { dtype: 'int32', shape: [1, 2, 2], data: new Int32Array([-1, 0, 2 ** 31 - 1, -(2 ** 31)]) },
    { dtype: 'int64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
    { dtype: 'uint8', shape: [4, 1], data: new Uint8Array([0, 1, 128, 255]) },
    { dtype: 'float32', shape: [], data: new Float32Array([7]) },
    { dtype: 'float64', shape: [0, 5], data: new Float64Array(0) },
  ];
  for (const c of cases) {
    const buf = encodeNpy(c);
    t.equal(buf.length % 64, c.data.byteLength % 64, 'header padded to 64 bytes');
    const back = parseNpy(buf);
    t.equal(back.dtype, c.dtype);
    t.same(back.shape, c.shape);
    t.same(values(back), values(c));
  }
  // Same bytes as numpy's np.save for the fixture arrays.
  for (const name of ['npy_f4.npy', 'npy_f8.npy', 'npy_i4.npy', 'npy_i8.npy', 'npy_u1.npy', 'npy_scalar.npy', 'npy_empty.npy']) {
    const orig = fs.readFileSync(path.join(FIX, name));
    t.ok(encodeNpy(parseNpy(orig, name)).equals(orig), `${name}: re-encoding is byte-identical to numpy's`);
  }
});

t.test('files written by numpy, each dtype, Fortran order, big-endian, v2/v3 headers', async (t) => {
  for (const [name, exp] of Object.entries(expected)) {
    const a = readNpySync(path.join(FIX, name));
    t.equal(a.dtype, exp.dtype, `${name}: dtype`);
    t.same(a.shape, exp.shape, `${name}: shape`);
    t.same(values(a), exp.values, `${name}: values in C order`);
    t.equal(a.data.length, exp.values.length);
    t.equal(a.data.byteOffset % 8, 0, `${name}: aligned`);
  }
  const f = await readNpy(path.join(FIX, 'npy_f8_fortran.npy'));
  // arange(24).reshape(2,3,4) * 1.5 in C order regardless of how it was stored.
  t.same(Array.from(f.data as Float64Array), Array.from({ length: 24 }, (_, i) => i * 1.5));
  t.ok(Object.keys(expected).length >= 14, 'all numpy fixtures checked');
});

t.test('data are copied into aligned arrays even at odd buffer offsets', async (t) => {
  const enc = encodeNpy({ dtype: 'float64', shape: [3], data: new Float64Array([1, 2, 3]) });
  const big = Buffer.alloc(enc.length + 3);
  enc.copy(big, 3);
  const odd = big.subarray(3); // byteOffset 3: a Float64Array view would throw RangeError
  const a = parseNpy(odd);
  t.same(Array.from(a.data as Float64Array), [1, 2, 3]);
  odd[odd.length - 1] = 0x7f;
  t.same(Array.from(a.data as Float64Array), [1, 2, 3], 'result does not alias the input');
});

t.test('writeNpy writes atomically and reads back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.npy');
  await writeNpy(file, { dtype: 'int64', shape: [2, 2], data: new BigInt64Array([1n, 2n, 3n, -4n]) });
  const a = await readNpy(file);
  t.same(values(a), ['1', '2', '3', '-4']);
  t.same(fs.readdirSync(dir), ['a.npy'], 'no temp file left');
  await t.rejects(writeNpy(path.join(dir, 'missing', 'b.npy'), a), { code: 'ERR_FILE_WRITE' });
});

t.test('encodeNpy refuses inconsistent arrays', async (t) => {
  t.throws(() => encodeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array(3) }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeNpy({ dtype: 'float32', shape: [3], data: new Float64Array(3) }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeNpy({ dtype: 'int32', shape: [-1], data: new Int32Array(0) }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeNpy({ dtype: 'float16' as NpyDType, shape: [1], data: new Uint8Array(2) }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('missing file', async (t) => {
  t.throws(() => readNpySync('/nonexistent/x.npy'), { code: 'ERR_FILE_NOT_FOUND', file: '/nonexistent/x.npy' });
  await t.rejects(readNpy('/nonexistent/x.npy'), { code: 'ERR_FILE_NOT_FOUND' });
});

t.test('bad inputs are refused with ERR_NPY_FORMAT naming file and field', async (t) => {
  const good = encodeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array(6) });
  const H = (descr: string, shape: string, fo = 'False') => `{'descr': '${descr}', 'fortran_order': ${fo}, 'shape': ${shape}, }`;

  // magic and version
  const badMagic = Buffer.from(good);
  badMagic[1] = 0x4f;
  refuses(t, badMagic, 'magic', /bad magic/, 'bad magic');
  refuses(t, Buffer.from('PK\x03\x04 not an npy at all'), 'magic', /bad magic/, 'zip instead of npy');
  refuses(t, Buffer.alloc(0), 'magic', /bad magic/, 'empty file');
  const v4 = Buffer.from(good);
  v4[6] = 4;
  refuses(t, v4, 'version', /version 4\.0/, 'version 4');
  const minor = Buffer.from(good);
  minor[7] = 1;
  refuses(t, minor, 'version', /version 1\.1/, 'version 1.1');

  // header size
  const huge = rawNpy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }` + ' '.repeat(20000), 4, { major: 2 });
  refuses(t, huge, 'header', /exceeds the 10000-byte limit/, 'header > 10 kB');
  const declaredHuge = Buffer.from(good);
  declaredHuge.writeUInt16LE(60000, 8);
  refuses(t, declaredHuge, 'header', /exceeds/, 'declared header length > 10 kB');
  const v2Short = rawNpy(H('<f4', '(1,)'), 4, { major: 2 }).subarray(0, 11);
  refuses(t, v2Short, 'header', /header length/, 'v2 file cut inside the header length');
  refuses(t, good.subarray(0, 40), 'header', /ends inside the header/, 'truncated inside the header');

  // dtypes
  refuses(t, fs.readFileSync(path.join(FIX, 'npy_object.npy')), 'descr', /object arrays hold pickles/, 'object dtype from numpy');
  refuses(t, rawNpy(H('|O', '(2,)'), 16), 'descr', /unsupported dtype '\|O'/, 'object dtype');
  refuses(t, rawNpy(H('|V8', '(2,)'), 16), 'descr', /void/, 'void dtype');
  refuses(t, fs.readFileSync(path.join(FIX, 'npy_structured.npy')), 'descr', /structured/, 'structured dtype from numpy');
  refuses(t, fs.readFileSync(path.join(FIX, 'npy_f2.npy')), 'descr', /unsupported dtype '<f2'/, 'float16');
  refuses(t, rawNpy(H('<c8', '(1,)'), 8), 'descr', /unsupported dtype/, 'complex');
  refuses(t, rawNpy(`{'descr': 5, 'fortran_order': False, 'shape': (1,), }`, 4), 'descr', /unexpected value/, 'descr not a string');

  // length
  refuses(t, good.subarray(0, good.length - 1), 'data', /needs 24.*truncated/, 'data one byte short');
  refuses(t, good.subarray(0, good.length - 24), 'data', /0 bytes/, 'no data');
  refuses(t, Buffer.concat([good, Buffer.alloc(1)]), 'data', /trailing/, 'one byte too long');
  refuses(t, rawNpy(H('<f8', '()'), 4), 'data', /needs 8/, 'scalar with 4 bytes');

  // malformed dicts
  refuses(t, rawNpy(`{'descr': '<f4', 'fortran_order': False}`, 4), 'shape', /no 'shape' key/, 'missing key');
  refuses(t, rawNpy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}`, 4), 'extra', /unexpected header key/, 'extra key');
  refuses(t, rawNpy(`{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}`, 4), 'descr', /duplicate/, 'duplicate key');
  refuses(t, rawNpy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,)`, 4), 'header', /expected/, 'unterminated dict');
  refuses(t, rawNpy(`['descr', '<f4']`, 4), 'header', /expected '\{'/, 'not a dict');
  refuses(t, rawNpy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x`, 4), 'header', /trailing/, 'junk after dict');
  refuses(t, rawNpy(`{'descr': '<f4', 'fortran_order': __import__('os'), 'shape': (1,)}`, 4), 'fortran_order', /unexpected value/, 'code in header');
  refuses(t, rawNpy(`{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}`, 4), 'fortran_order', /unexpected value/, 'fortran_order not a bool');
  refuses(t, rawNpy(`{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}`, 4), 'header', /escape/, 'escape in string');
  refuses(t, rawNpy(`{'descr': '<f4', 'fortran_order': False, 'shape': [1]}`, 4), 'shape', /nested lists/, 'shape as list');
  refuses(t, rawNpy(`{"descr": "<f4", "fortran_order": False, "shape": (1,)`, 4), 'header', /expected/, 'double quotes, unterminated');

  // shapes
  refuses(t, rawNpy(H('<f4', '(-1,)'), 0), 'shape', /negative dimension/, 'negative shape');
  refuses(t, rawNpy(H('<f4', '(2, -3)'), 0), 'shape', /negative dimension/, 'negative second dimension');
  refuses(t, rawNpy(H('<f4', '(1.5,)'), 4), 'shape', /expected ',' or '\)'/, 'non-integer shape');
  refuses(t, rawNpy(H('<f4', "('a',)"), 4), 'shape', /non-negative integer/, 'string in shape');
  refuses(t, rawNpy(H('<f4', '(3)'), 12), 'shape', /trailing comma/, '(3) is not a tuple');
  refuses(t, rawNpy(H('<f4', '3'), 12), 'shape', /unexpected value/, 'shape as a bare int');
  refuses(t, rawNpy(H('<f4', '(99999999999999999999,)'), 4), 'shape', /too large/, 'dimension over 2^53');
  refuses(t, rawNpy(H('<f4', '(4294967296, 4294967296)'), 4), 'shape', /overflows/, 'element count overflows');
  refuses(t, rawNpy(H('<f8', '(1125899906842624, 4)'), 4), 'shape', /overflows/, 'byte count overflows');
  refuses(t, rawNpy(H('<f4', '(1L,)'), 4), 'shape', /expected ',' or '\)'/, 'python 2 long suffix');
});

t.test('accepted header variants', async (t) => {
  // Key order does not matter; trailing comma optional; double quotes allowed; unpadded header.
  const a = parseNpy(rawNpy(`{"shape": (2,), "fortran_order": False, "descr": "<i4"}`, 8, { pad: false }));
  t.same(a.shape, [2]);
  const b = parseNpy(rawNpy(`{'descr': '|b1', 'fortran_order': True, 'shape': (2, 2), }`, 4));
  t.equal(b.dtype, 'uint8');
  const c = parseNpy(rawNpy(`{'descr': '<f4', 'fortran_order': True, 'shape': (), }`, 4));
  t.same(c.shape, []);
  t.equal(c.data.length, 1);
});
