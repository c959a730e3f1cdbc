// Streaming .npy writer: rows appended in chunks read back as numpy would; a shrunk row count
// rewrites the header in place; abort and failures leave neither a partial target nor a temp file.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeNpy, readNpySync } from '../../src/io/npy';
import { NpyRowWriter, npyHeader } from '../../src/io/npy-writer';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-npyw-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const leftovers = () => fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'));

t.test('header matches numpy padding and encodeNpy', async (t) => {
  const h = npyHeader('float32', [1000, 2048]);
  t.equal(h.length % 64, 0);
  const whole = encodeNpy({ dtype: 'float32', shape: [3, 2], data: new Float32Array(6) });
  t.same(whole.subarray(0, npyHeader('float32', [3, 2]).length), npyHeader('float32', [3, 2]));
});

t.test('append in chunks, commit', async (t) => {
  const f = path.join(dir, 'a.npy');
  const w = await NpyRowWriter.open(f, 'float32', [3], 5);
  await w.append(Float32Array.from([0, 1, 2, 3, 4, 5]));
  await w.append(Float32Array.from([6, 7, 8]));
  await w.append(Float32Array.from([9, 10, 11, 12, 13, 14]));
  t.notOk(fs.existsSync(f), 'nothing under the target name before commit');
  await w.commit();
  const a = readNpySync(f);
  t.same(a.shape, [5, 3]);
  t.same(Array.from(a.data as Float32Array), Array.from({ length: 15 }, (_, i) => i));
  t.same(leftovers(), []);
});

t.test('fewer rows: header rewritten with the same length', async (t) => {
  const f = path.join(dir, 'b.npy');
  const w = await NpyRowWriter.open(f, 'float32', [2], 100000);
  await w.append(Float32Array.from([1, 2, 3, 4]));
  await w.commit({ rows: 2 });
  const a = readNpySync(f);
  t.same(a.shape, [2, 2]);
  t.same(Array.from(a.data as Float32Array), [1, 2, 3, 4]);
});

t.test('errors and abort leave nothing behind; an old target survives', async (t) => {
  const f = path.join(dir, 'c.npy');
  fs.writeFileSync(f, 'previous');
  const w = await NpyRowWriter.open(f, 'float32', [4], 2);
  await t.rejects(w.append(new Float32Array(3)), { code: 'ERR_SHAPE_MISMATCH' }, 'partial row');
  await w.append(new Float32Array(4));
  await t.rejects(w.commit(), { code: 'ERR_SHAPE_MISMATCH' }, 'fewer rows than declared without saying so');
  t.equal(fs.readFileSync(f, 'utf8'), 'previous');
  const w2 = await NpyRowWriter.open(f, 'float32', [4], 1);
  await t.rejects(w2.append(new Float32Array(8)), { code: 'ERR_SHAPE_MISMATCH' }, 'more rows than declared');
  await w2.abort();
  t.equal(fs.readFileSync(f, 'utf8'), 'previous');
  t.same(leftovers(), []);
  await t.rejects(NpyRowWriter.open(path.join(dir, 'no', 'such', 'dir.npy'), 'float32', [1], 1), { code: 'ERR_FILE_WRITE' });
});
