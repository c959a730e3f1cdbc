// CIFAR-10: the numpy-only unpickler (src/io/cifar.ts) and the reader (src/datasets/cifar.ts) against
// torchvision's CIFAR10 on fake batches in the real format, a full-size batch, and the bad inputs of
// RELIABILITY.md case 26.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { cifarImage, readCifar10 } from '../../src/datasets/cifar';
import { parseCifarBatch, parseCifarMeta, readCifarBatch } from '../../src/io/cifar';
import { unpickle } from '../../src/io/pickle';
import { BAD, DATA, copyFixture, expected, tmpDir } from './helpers';
import { cifarBatchPickle } from './py2-pickle';

const ROOT = path.join(DATA, 'CIFAR10');
const BATCHES = path.join(ROOT, 'cifar-10-batches-py');
const tmp = tmpDir('cifar');

t.test('the same samples, targets, pixels and classes as torchvision', async (t) => {
  const ds = await readCifar10(ROOT, { verifyChecksums: false, expectedRows: 3 });
  const e = expected.cifar10;
  t.same(ds.classes, e.classes);
  t.match(ds, { name: 'cifar10', task: 'classification', numClasses: 10, metric: 'accuracy' });
  for (const split of ['trainval', 'test'] as const) {
    const s = ds.splits[split];
    t.same(s.samples.map((x) => x.target), e[split].targets, `${split} targets`);
    const h = createHash('sha256');
    for (let i = 0; i < s.samples.length; i++) h.update(cifarImage(s, i).data);
    t.equal(h.digest('hex'), e[split].hwc_sha256, `${split}: HWC pixels as torchvision's data array`);
    t.same(Array.from(cifarImage(s, 0).data.subarray(0, 3)), e[split].first_pixel);
  }
  t.same(ds.splits.trainval.samples.slice(2, 5).map((x) => [path.basename(x.path), x.index]),
    [['data_batch_1', 2], ['data_batch_2', 0], ['data_batch_2', 1]], 'batches in order, rows within');
});

t.test('torchvision checks MD5s; so do we unless told not to', async (t) => {
  // The generator's cPickle emulation writes batches.meta byte for byte as the real file (same MD5).
  t.equal(createHash('md5').update(fs.readFileSync(path.join(BATCHES, 'batches.meta'))).digest('hex'), '5ff9c542aee3614f3951f8cda6e48888');
  await t.rejects(readCifar10(ROOT, { expectedRows: 3 }),
    { code: 'ERR_DATASET_LAYOUT', field: 'md5', file: path.join(BATCHES, 'data_batch_1'), message: /differs from torchvision's c99cafc1/ });
});

t.test('every row count but 10000 is refused by default', async (t) => {
  await t.rejects(readCifarBatch(path.join(BATCHES, 'data_batch_1')),
    { code: 'ERR_DATASET_LAYOUT', field: 'data', message: /shape is \(3, 3072\); expected \(10000, 3072\)/ });
});

t.test('a full-size batch (10000 x 3072) in the real format', async (t) => {
  const rows = 10000;
  const data = new Uint8Array(rows * 3072);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const labels = Array.from({ length: rows }, (_, i) => (i * 7) % 10);
  const buf = cifarBatchPickle({ rows, data, labels, batchLabel: 'training batch 1 of 5', filenames: labels.map((_, i) => `f_${i}.png`) });
  const b = parseCifarBatch(buf, 'big');
  t.equal(b.rows, rows);
  t.same(b.labels.slice(0, 12), labels.slice(0, 12));
  t.equal(b.labels.length, rows);
  t.equal(b.batchLabel, 'training batch 1 of 5');
  t.ok(Buffer.from(b.data).equals(Buffer.from(data)), 'data are the stored bytes');
  t.equal(b.data.buffer, buf.buffer, 'a view of the file bytes, not a copy');
});

t.test("the TypeScript batch writer reproduces the Python generator's bytes", async (t) => {
  // make_dataset_fixtures.py wrote data_batch_1 with its Py2Pickler; the same input gives the same bytes.
  const file = fs.readFileSync(path.join(BATCHES, 'data_batch_1'));
  const b = parseCifarBatch(file, 'data_batch_1', { expectedRows: 3 });
  const again = cifarBatchPickle({ rows: 3, data: b.data, labels: b.labels, batchLabel: b.batchLabel!, filenames: [0, 1, 2].map((i) => `img_0_${i}.png`) });
  t.ok(again.equals(file));
  t.same(parseCifarMeta(fs.readFileSync(path.join(BATCHES, 'batches.meta')), 'meta').labelNames, expected.cifar10.classes);
  // numpy 2 names the module numpy._core
  const np2 = cifarBatchPickle({ rows: 3, data: b.data, labels: b.labels, batchLabel: 'x', filenames: [], module: 'numpy._core.multiarray' });
  t.same(parseCifarBatch(np2, 'np2', { expectedRows: 3 }).labels, b.labels);
});

t.test('bad batches (case 26): each an error naming the file and the field', async (t) => {
  const bad = async (name: string, m: { code: string; field?: string; message: RegExp }): Promise<void> => {
    const file = path.join(BAD, 'cifar', name);
    await t.rejects(readCifarBatch(file, { expectedRows: 3 }), { file, ...m }, name);
  };
  const canary = '/tmp/ssl-inv-cifar-canary';
  fs.rmSync(canary, { force: true });
  await bad('extra_global', { code: 'ERR_CHECKPOINT_UNSAFE', message: /global os\.system, which is not allowed/ });
  t.notOk(fs.existsSync(canary), 'nothing from the pickle ran');
  await bad('wrong_cols', { code: 'ERR_DATASET_LAYOUT', field: 'data', message: /shape is \(3, 3071\); expected \(3, 3072\)/ });
  await bad('wrong_dtype', { code: 'ERR_DATASET_LAYOUT', field: 'data', message: /dtype is '<i8'; expected uint8/ });
  await bad('labels_short', { code: 'ERR_DATASET_LAYOUT', field: 'labels', message: /has 2 entries; expected 3/ });
  await bad('label_range', { code: 'ERR_DATASET_LAYOUT', field: 'labels[1]', message: /is 10; expected an int in 0\.\.9/ });
  await bad('fortran', { code: 'ERR_DATASET_LAYOUT', field: 'data', message: /Fortran-ordered/ });
  await bad('short_data', { code: 'ERR_DATASET_LAYOUT', field: 'data', message: /holds 6144 bytes; shape \(3, 3072\) of uint8 needs 9216/ });
  // torch globals are not allowed in this format
  const torchy = cifarBatchPickle({ rows: 1, data: new Uint8Array(3072), labels: [0], batchLabel: 'x', filenames: [],
    extra: (p) => p.s('t').glob('torch._utils', '_rebuild_tensor_v2') });
  t.throws(() => parseCifarBatch(torchy, 'torchy', { expectedRows: 1 }),
    { code: 'ERR_CHECKPOINT_UNSAFE', message: /torch\._utils\._rebuild_tensor_v2, which is not allowed/ });
  // and the checkpoint unpickler still refuses numpy
  const file = fs.readFileSync(path.join(BATCHES, 'data_batch_1'));
  t.throws(() => unpickle(file, { file: 'as-checkpoint' }), { code: 'ERR_CHECKPOINT_UNSAFE', message: /numpy\.core\.multiarray\._reconstruct/ });
  t.throws(() => parseCifarBatch(Buffer.from([0x80, 0x02, 0x5d, 0x2e]), 'list'), { code: 'ERR_DATASET_LAYOUT', message: /is a list; expected a dict/ });
  // NEWOBJ and BUILD on anything but the extension's own objects stay refused in this mode
  const newobj = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cnumpy\ndtype\n', 'latin1'), Buffer.from([0x29, 0x81, 0x2e])]);
  t.throws(() => parseCifarBatch(newobj, 'newobj'), { code: 'ERR_CHECKPOINT_UNSAFE', message: /NEWOBJ of numpy\.dtype is not allowed/ });
  const buildList = Buffer.from([0x80, 0x02, 0x5d, 0x7d, 0x62, 0x2e]);
  t.throws(() => parseCifarBatch(buildList, 'build'), { code: 'ERR_CHECKPOINT_UNSAFE', message: /BUILD on a list is not allowed/ });
});

t.test('a missing batch names the file and what it should be', async (t) => {
  const root = copyFixture('CIFAR10', tmp);
  fs.rmSync(path.join(root, 'cifar-10-batches-py', 'data_batch_4'));
  await t.rejects(readCifar10(root, { verifyChecksums: false, expectedRows: 3 }),
    { code: 'ERR_DATASET_LAYOUT', file: path.join(root, 'cifar-10-batches-py', 'data_batch_4'), message: /missing file; expected the CIFAR-10 python batch 'data_batch_4'/ });
});
