// CelebA (src/datasets/celeba.ts) against the original's CelebA(target_type='landmarks'): the official
// partition, the csv parsing, and the int64-truncated landmark targets.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { celebaCsvRow, celebaTarget, readCelebA } from '../../src/datasets/celeba';
import { DATA, copyFixture, expected, tmpDir } from './helpers';

const ROOT = path.join(DATA, 'CelebA');
const e = expected.celeba;
const tmp = tmpDir('celeba');

t.test('partition, sizes and targets as the original computes them', async (t) => {
  for (const crop of [224, 96]) {
    const ds = await readCelebA(ROOT, { verifyChecksums: false, cropSize: crop });
    t.match(ds, { name: 'celeba', task: 'regression', metric: 'r2', numClasses: 40 });
    const names = (s: { path: string }[]): string[] => s.map((x) => path.basename(x.path));
    t.same(names(ds.splits.train.samples), e.splits.train);
    t.same(names(ds.splits.val.samples), e.splits.valid);
    t.same(names(ds.splits.test.samples), e.splits.test);
    t.same(names(ds.splits.trainval.samples), [...e.splits.train, ...e.splits.valid]);
    for (const s of [...ds.splits.train.samples, ...ds.splits.val.samples, ...ds.splits.test.samples]) {
      const want = e.samples[path.basename(s.path)];
      t.same(s.target, want[String(crop)], `${path.basename(s.path)} @${crop}`);
      t.same(s.landmarks, want.landmarks);
      t.same([s.imageSize.width, s.imageSize.height], want.size);
    }
  }
});

t.test('the landmark transform (pure): float32 steps, truncated toward zero', async (t) => {
  // 218 x 178: x shifts by 20; x = 5 gives (5 - 20) / 178 * 224 = -18.88 -> -18
  t.same(celebaTarget([5, 10, 200, 170], 218, 178, 224), [-18, 12, 226, 213]);
  t.same(celebaTarget([0, 0], 100, 100, 224), [0, 0]);
  t.ok(Object.is(celebaTarget([5, 1], 218, 178, 224)[1], 1), 'no negative zero');
  t.same(celebaCsvRow('000001.jpg 69  109  106'), ['000001.jpg', '69', '109', '106']);
  t.same(celebaCsvRow('  a  -1  1 '), ['a', '-1', '1', '']);
  t.same(celebaCsvRow(''), []);
});

t.test('checksums, and the layout checks', async (t) => {
  await t.rejects(readCelebA(ROOT), { code: 'ERR_DATASET_LAYOUT', field: 'md5', message: /differs from the original's 75e246fa/ });
  const root = copyFixture('CelebA', tmp);
  const base = path.join(root, 'celeba');
  const marks = path.join(base, 'list_landmarks_align_celeba.txt');
  const orig = fs.readFileSync(marks, 'utf8');
  const opts = { verifyChecksums: false };
  fs.writeFileSync(marks, orig.replace(/^(000003\.jpg(?:\s+-?\d+){9})\s+-?\d+/m, '$1'));
  await t.rejects(readCelebA(root, opts), { code: 'ERR_DATASET_LAYOUT', file: marks, field: 'line 5', message: /has 9 values after the image name; expected 10/ });
  fs.writeFileSync(marks, orig.replace('000004.jpg', '000099.jpg'));
  await t.rejects(readCelebA(root, opts), { code: 'ERR_DATASET_LAYOUT', file: marks, message: /row 4 is 000099\.jpg but row 4 of list_eval_partition\.txt is 000004\.jpg/ });
  fs.writeFileSync(marks, orig.replace(/\n[^\n]*\n$/, '\n'));
  await t.rejects(readCelebA(root, opts), { message: /lists 9 images but list_eval_partition\.txt lists 10/ });
  fs.writeFileSync(marks, orig.replace(/\r?\n/g, '\r\n'));
  t.ok(await readCelebA(root, opts), 'CRLF files read as Python text mode reads them');
  fs.writeFileSync(marks, orig);
  fs.rmSync(path.join(base, 'img_align_celeba', '000008.jpg'));
  await t.rejects(readCelebA(root, opts), { code: 'ERR_DATASET_LAYOUT', message: /1 of the 10 images .* do not exist: .*000008\.jpg/ });
  fs.rmSync(path.join(base, 'identity_CelebA.txt'));
  await t.rejects(readCelebA(root, opts), { code: 'ERR_DATASET_LAYOUT', file: path.join(base, 'identity_CelebA.txt'), message: /missing file/ });
  fs.rmSync(path.join(base, 'img_align_celeba'), { recursive: true });
  await t.rejects(readCelebA(root, opts), { code: 'ERR_DATASET_LAYOUT', file: path.join(base, 'img_align_celeba'), message: /does not exist; expected the aligned CelebA images/ });
});
