// MAT v5 reader (src/io/mat.ts) against scipy.io.loadmat on hand-made and scipy-made files
// (test/fixtures/datasets/mat/), and the bad inputs of RELIABILITY.md cases 20-22.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { getMatNumeric, matValues, parseMat, readMat, toRowMajor, MatNumericArray } from '../../src/io/mat';
import { MATDIR } from './helpers';

const matExpected = JSON.parse(fs.readFileSync(path.join(MATDIR, 'mat_expected.json'), 'utf8'));
const load = (name: string): Buffer => fs.readFileSync(path.join(MATDIR, name));

function values(a: MatNumericArray): (number | string)[] {
  return Array.from(a.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v));
}

function sameAsScipy(t: Test, file: string, name: string, cls: string): void {
  const mat = parseMat(load(file), file);
  const a = getMatNumeric(mat, name);
  const e = matExpected[file][name];
  t.equal(a.class, cls, `${file} ${name}: class`);
  t.same(a.dims, e.shape, `${file} ${name}: dims`);
  // scipy gives the stored dtype (mat_dtype=False); the values are the same, row-major.
  const want = e.values.map((v: string | number) => (typeof v === 'string' ? (cls.includes('int64') ? v : Number(v)) : v));
  const got = values(a);
  if (cls === 'single') {
    t.same(got.map((v) => Math.fround(Number(v))), want.map((v: number) => Math.fround(v)), `${file} ${name}: values`);
  } else {
    t.same(got, want, `${file} ${name}: values`);
  }
}

t.test('hand-made files: narrow storage, small elements, 3-D column-major, both endians', async (t) => {
  for (const file of ['handmade_le.mat', 'handmade_be.mat']) {
    sameAsScipy(t, file, 'x', 'double');   // double class stored as miUINT8
    sameAsScipy(t, file, 's', 'uint16');   // small data element (2 bytes in the tag)
    sameAsScipy(t, file, 'c3', 'double');  // 2 x 3 x 2, transposed to row-major
    sameAsScipy(t, file, 'neg', 'int16');  // int16 class stored as miINT8, negative values
    sameAsScipy(t, file, 'sgl', 'single');
    sameAsScipy(t, file, 'i64', 'int64');
    const mat = parseMat(load(file), file);
    t.equal(mat.endian, file.includes('be') ? 'big' : 'little');
    const x = getMatNumeric(mat, 'x');
    t.ok(x.data instanceof Float64Array, 'widened to the class type');
    t.same(Array.from(x.data as Float64Array), [1, 3, 5, 2, 4, 6]);
    const logi = getMatNumeric(mat, 'logi');
    t.equal(logi.logical, true);
    t.same(Array.from(logi.data as Uint8Array), [1, 0, 1]);
    t.same([...mat.variables.keys()], ['x', 's', 'c3', 'neg', 'logi', 'sgl', 'i64', 'cel', 'ch']);
    t.match(mat.variables.get('cel'), { kind: 'other', class: 'cell', dims: [1, 1] });
    t.match(mat.variables.get('ch'), { kind: 'other', class: 'char', dims: [1, 2] });
    t.throws(() => getMatNumeric(mat, 'cel', 'a 1 x N row vector'),
      { code: 'ERR_DATASET_LAYOUT', file, field: 'cel', message: /cell array of size 1x1 \(expected a 1 x N row vector\)/ });
    t.throws(() => getMatNumeric(mat, 'nope'), { code: 'ERR_DATASET_LAYOUT', field: 'nope', message: /no variable 'nope'.*'x', 's'/ });
    t.throws(() => matValues(getMatNumeric(mat, 'i64'), file), { code: 'ERR_MAT_FORMAT', message: /beyond 2\^53/ });
  }
});

t.test('scipy.io.savemat with compression (miCOMPRESSED)', async (t) => {
  sameAsScipy(t, 'compressed.mat', 'labels', 'uint8');
  sameAsScipy(t, 'compressed.mat', 'm', 'double');
  const mat = await readMat(path.join(MATDIR, 'compressed.mat'));
  t.match(mat.header, /^MATLAB 5\.0 MAT-file/);
});

t.test('row-major conversion', async (t) => {
  // column-major 2 x 3: [[1, 3, 5], [2, 4, 6]]
  t.same(Array.from(toRowMajor(Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3])), [1, 3, 5, 2, 4, 6]);
  // 2 x 2 x 2: F index i + 2j + 4k
  const f = Float64Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  t.same(Array.from(toRowMajor(f, [2, 2, 2])), [0, 4, 2, 6, 1, 5, 3, 7]);
  t.same(Array.from(toRowMajor(f, [1, 8])), Array.from(f), 'vectors are unchanged');
});

t.test('refused formats and corrupt files (cases 21, 22)', async (t) => {
  const bad = (name: string, re: RegExp, buf: Buffer = load(name), opts = {}): void => {
    t.throws(() => parseMat(buf, name, opts), { code: 'ERR_MAT_FORMAT', file: name, message: re }, name);
  };
  bad('v4.mat', /MAT v4 files are not supported/);
  bad('v73.mat', /v7\.3 files \(HDF5\) are not supported/);
  bad('truncated_file.mat', /declares \d+ bytes but only \d+ remain/);
  bad('truncated_stream.mat', /compressed element is corrupt or truncated/);
  bad('count_past_eof.mat', /declares \d+ bytes but only \d+ remain/);
  bad('bomb.mat', /inflates to more than the 1048576-byte limit/, load('bomb.mat'), { maxInflatedBytes: 1 << 20 });
  const big = getMatNumeric(parseMat(load('bomb.mat'), 'bomb.mat'), 'z');
  t.same(big.dims, [2048, 1024], 'the same file within the default cap');
  const endian = Buffer.from(load('handmade_le.mat'));
  endian.write('XX', 126, 'latin1');
  bad('bad endian', /endian indicator "XX"/, endian);
  const shortFile = load('handmade_le.mat').subarray(0, 100);
  bad('short', /shorter than the 128-byte header/, shortFile);
  const version = Buffer.from(load('handmade_le.mat'));
  version.writeUInt16LE(0x0300, 124);
  bad('version', /unknown MAT version 0x0300/, version);
  // x's dimensions 2 x 3 changed to 2 x 4: the 6 stored values no longer fit.
  const dims = Buffer.from(load('handmade_le.mat'));
  t.equal(dims.readInt32LE(164), 3);
  dims.writeInt32LE(4, 164);
  t.throws(() => parseMat(dims, 'dims'), { code: 'ERR_MAT_FORMAT', field: 'x', message: /2x4 array needs 8 values but 6 are stored/ });
  const trailing = Buffer.concat([load('handmade_le.mat'), Buffer.from('garbage!')]);
  t.throws(() => parseMat(trailing, 'trailing'), { code: 'ERR_MAT_FORMAT' });
  await t.rejects(readMat(path.join(MATDIR, 'nope.mat')), { code: 'ERR_FILE_NOT_FOUND' });
});
