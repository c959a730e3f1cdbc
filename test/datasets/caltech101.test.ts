// Caltech-101 (src/datasets/caltech101.ts) against the original's Caltech101 and create_caltech101_splits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { createCaltech101Splits, parseCaltech101Split, readCaltech101 } from '../../src/datasets/caltech101';
import { DATA, copyFixture, expected, relTo, tmpDir } from './helpers';

const ROOT = path.join(DATA, 'Caltech101');
const e = expected.caltech101;
const tmp = tmpDir('caltech');

t.test('the same samples and targets as the original', async (t) => {
  const ds = await readCaltech101(ROOT);
  const rel = relTo(ROOT);
  t.match(ds, { name: 'caltech101', task: 'classification', numClasses: 102, metric: 'mean per-class accuracy' });
  t.same(ds.splits.trainval.samples.map((s) => [rel(s.path), s.target]), e.trainval, 'train.txt as trainval, duplicates kept');
  t.same(ds.splits.test.samples.map((s) => [rel(s.path), s.target]), e.test);
});

t.test("create_caltech101_splits reproduced (seed 0, choice with replacement)", async (t) => {
  const s = await createCaltech101Splits(ROOT, { numTrainPerClass: e.numTrainPerClass });
  t.same(s.train, e.train_lines);
  t.same(s.test, e.test_lines);
  const root = copyFixture('Caltech101', tmp);
  fs.rmSync(path.join(root, 'train.txt'));
  fs.rmSync(path.join(root, 'test.txt'));
  await t.rejects(readCaltech101(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, 'train.txt'), message: /missing file; expected the Caltech-101 train split .*createCaltech101Splits/ });
  await createCaltech101Splits(root, { numTrainPerClass: 2, write: true });
  t.equal(fs.readFileSync(path.join(root, 'train.txt'), 'utf8'), fs.readFileSync(path.join(ROOT, 'train.txt'), 'utf8'));
  t.equal(fs.readFileSync(path.join(root, 'test.txt'), 'utf8'), fs.readFileSync(path.join(ROOT, 'test.txt'), 'utf8'));
});

t.test('bad split files and missing images', async (t) => {
  t.same(parseCaltech101Split('a/b.jpg 3\r\nc/d.jpg 0 extra\n', '/r', 'f').map((s) => [s.path, s.target]),
    [[path.join('/r', 'caltech101', '101_ObjectCategories', 'a/b.jpg'), 3], [path.join('/r', 'caltech101', '101_ObjectCategories', 'c/d.jpg'), 0]]);
  t.throws(() => parseCaltech101Split('a/b.jpg 3\n\nc/d.jpg 1\n', '/r', 'f'), { code: 'ERR_DATASET_LAYOUT', file: 'f', field: 'line 2' });
  t.throws(() => parseCaltech101Split('a/b.jpg  3\n', '/r', 'f'), { field: 'line 1', message: /one space/ });
  t.throws(() => parseCaltech101Split('a/b.jpg x\n', '/r', 'f'), { code: 'ERR_DATASET_LAYOUT', field: 'line 1' });
  t.throws(() => parseCaltech101Split('a/b.jpg -1\n', '/r', 'f'), { field: 'line 1', message: /a label >= 0/ });
  t.throws(() => parseCaltech101Split('', '/r', 'f'), { message: /is empty/ });
  const root = copyFixture('Caltech101', path.join(tmp, 'm'));
  fs.rmSync(path.join(root, 'caltech101', '101_ObjectCategories', 'airplanes', 'image_0004.jpg'));
  await t.rejects(readCaltech101(root), { code: 'ERR_DATASET_LAYOUT', message: /1 of the 8 images listed in .*test\.txt do not exist: .*airplanes\/image_0004\.jpg/ });
  t.ok(await readCaltech101(root, { checkFiles: false }));
});
