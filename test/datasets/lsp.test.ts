// Leeds Sports Pose (src/datasets/lsp.ts) against the original's LeedsSportsPose, and the joints.mat faults
// of RELIABILITY.md case 24.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { lspTarget, readLeedsSportsPose } from '../../src/datasets/lsp';
import { BAD, DATA, copyFixture, expected, relTo, tmpDir } from './helpers';

const ROOT = path.join(DATA, 'LeedsSportsPose');
const e = expected.leeds_sports_pose;
const tmp = tmpDir('lsp');

t.test('generated splits, samples and float64 targets as the original', async (t) => {
  for (const crop of [224, 96]) {
    const ds = await readLeedsSportsPose(ROOT, { cropSize: crop });
    t.match(ds, { name: 'leeds_sports_pose', task: 'regression', metric: 'r2', numClasses: null });
    const rel = relTo(ROOT);
    const sorted = Object.keys(e.samples).sort();
    t.same(ds.splits.trainval.samples.map((s) => rel(s.path)), e.splits.train.map((i: number) => sorted[i]), 'train.npy (generated) as trainval');
    t.same(ds.splits.test.samples.map((s) => rel(s.path)), e.splits.test.map((i: number) => sorted[i]));
    t.match(ds.splits.test.source, /generated/);
    for (const s of [...ds.splits.trainval.samples, ...ds.splits.test.samples]) {
      t.ok(s.target instanceof Float64Array);
      t.same(Array.from(s.target), e.samples[rel(s.path)][String(crop)], `${rel(s.path)} @${crop}`);
    }
  }
});

t.test('the joint transform (pure)', async (t) => {
  // 33 x 80: m = 33, top = int(47 / 2) = 23
  const r = lspTarget([3, 30, 1, 10, 23, 0], 33, 80, 224);
  t.same(r.crop, { left: 0, top: 23, right: 33, bottom: 56 });
  t.same(Array.from(r.target), [(3 / 33) * 224, (7 / 33) * 224, (10 / 33) * 224, (0 / 33) * 224]);
});

t.test('bad joints.mat (case 24)', async (t) => {
  const root = copyFixture('LeedsSportsPose', tmp);
  const joints = path.join(root, 'joints.mat');
  const use = (name: string): void => fs.copyFileSync(path.join(BAD, 'lsp', name), joints);
  use('joints_14x3xN.mat');
  await t.rejects(readLeedsSportsPose(root), { code: 'ERR_DATASET_LAYOUT', file: joints, field: 'joints', message: /has shape 14 x 3 x 7 \(the LSP-extended layout, 14 x 3 x N\); expected 3 x 14 x N/ });
  use('joints_wrong_n.mat');
  await t.rejects(readLeedsSportsPose(root), { code: 'ERR_DATASET_LAYOUT', file: joints, field: 'joints', message: /has shape 3 x 14 x 5 but images\/ holds 7 \.jpg files/ });
  use('joints_nan.mat');
  await t.rejects(readLeedsSportsPose(root), { code: 'ERR_DATASET_LAYOUT', field: 'joints', message: /non-finite value \(NaN\)/ });
  fs.rmSync(joints);
  await t.rejects(readLeedsSportsPose(root), { code: 'ERR_DATASET_LAYOUT', file: joints, message: /missing file; expected joints\.mat/ });
  fs.copyFileSync(path.join(ROOT, 'joints.mat'), joints);
  fs.rmSync(path.join(root, 'images'), { recursive: true });
  await t.rejects(readLeedsSportsPose(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, 'images'), message: /does not exist; expected the LSP images/ });
});
