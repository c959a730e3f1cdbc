// Flowers-102 (src/datasets/flowers.ts) against the original's make_dataset, and the setid.mat faults of
// RELIABILITY.md case 23.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { flowersImageName, flowersTargets, readFlowers } from '../../src/datasets/flowers';
import { BAD, DATA, copyFixture, expected, relTo, tmpDir } from './helpers';

const ROOT = path.join(DATA, 'Flowers');
const e = expected.flowers;
const tmp = tmpDir('flowers');

t.test('the same samples and targets as make_dataset, per split', async (t) => {
  const ds = await readFlowers(ROOT);
  const rel = relTo(ROOT);
  t.match(ds, { name: 'flowers', task: 'classification', numClasses: 102, metric: 'accuracy' });
  for (const split of ['train', 'val', 'test'] as const) {
    t.same(ds.splits[split].samples.map((s) => [rel(s.path), s.target]), e[split], split);
  }
  t.same(ds.splits.trainval.samples, [...ds.splits.train.samples, ...ds.splits.val.samples], 'trainval = train + val');
  // val has no class 2: its labels 1, 3, 4 become targets 0, 1, 2 (re-indexed per split, as the original)
  t.same(ds.splits.val.samples.map((s) => [s.imageId, s.label, s.target]), [[9, 1, 0], [11, 4, 2], [7, 3, 1]]);
  t.same(flowersTargets([5, 2, 9, 2]), [1, 0, 2, 0]);
  t.equal(flowersImageName(7), 'image_00007.jpg');
  t.equal(flowersImageName(123456), 'image_123456.jpg');
});

t.test('bad setid.mat files (case 23) and missing files', async (t) => {
  const root = copyFixture('Flowers', tmp);
  const setid = path.join(root, 'setid.mat');
  const use = (name: string): void => fs.copyFileSync(path.join(BAD, 'flowers', name), setid);
  const bad = async (name: string, m: { code: string; field?: string; message: RegExp }): Promise<void> => {
    use(name);
    await t.rejects(readFlowers(root), { file: setid, ...m }, name);
  };
  await bad('setid_index0.mat', { code: 'ERR_DATASET_LAYOUT', field: 'trnid', message: /element 0 is 0; expected an image number in 1\.\.12/ });
  await bad('setid_too_big.mat', { code: 'ERR_DATASET_LAYOUT', field: 'tstid', message: /element 1 is 13; expected an image number in 1\.\.12/ });
  await bad('setid_overlap.mat', { code: 'ERR_DATASET_LAYOUT', field: 'valid', message: /image number 1 is in both trnid and valid/ });
  await bad('setid_no_trnid.mat', { code: 'ERR_DATASET_LAYOUT', field: 'trnid', message: /no variable 'trnid' \(expected a 1 x N row vector of image numbers\); the file holds 'valid', 'tstid'/ });
  await bad('setid_column.mat', { code: 'ERR_DATASET_LAYOUT', field: 'trnid', message: /has size 3x1; expected a 1 x N row vector/ });
  await bad('setid_fraction.mat', { code: 'ERR_DATASET_LAYOUT', field: 'trnid', message: /element 0 is 1\.5; expected an integer/ });
  await bad('setid_cell.mat', { code: 'ERR_DATASET_LAYOUT', field: 'trnid', message: /is a cell array/ });
  // integral doubles: the numbers the original evidently means
  use('setid_double.mat');
  const ds = await readFlowers(root);
  t.same(ds.splits.test.samples.map((s) => path.basename(s.path)), e.test.map((x: [string, number]) => path.basename(x[0])));
  fs.writeFileSync(setid, Buffer.from('not a mat file at all, but long enough to have a header '.repeat(4)));
  await t.rejects(readFlowers(root), { code: 'ERR_MAT_FORMAT', file: setid });
  fs.rmSync(setid);
  await t.rejects(readFlowers(root), { code: 'ERR_DATASET_LAYOUT', file: setid, message: /missing file; expected setid\.mat with trnid, valid and tstid/ });
  fs.copyFileSync(path.join(DATA, 'Flowers', 'setid.mat'), setid);
  fs.rmSync(path.join(root, 'jpg', 'image_00011.jpg'));
  await t.rejects(readFlowers(root), { code: 'ERR_DATASET_LAYOUT', message: /1 of the 12 images .* do not exist: .*image_00011\.jpg/ });
});
