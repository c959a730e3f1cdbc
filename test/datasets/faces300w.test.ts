// 300W (src/datasets/faces300w.ts) against the original's FacesInTheWild300W on the fixture: listing,
// generated splits (seed 0), split files, PIL crop boxes and the float32 keypoint targets.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { faces300wTarget, readFaces300W } from '../../src/datasets/faces300w';
import { generateShuffleSplits } from '../../src/datasets/splits';
import { writeNpy } from '../../src/io/npy';
import { DATA, copyFixture, expected, relTo, tmpDir } from './helpers';

const ROOT = path.join(DATA, '300W');
const e = expected['300w'];
const tmp = tmpDir('300w');

t.test('splits generated as the original generates them (seed 0, 30/30/40)', async (t) => {
  const s = generateShuffleSplits(7, [0.3, 0.3, 0.4]);
  t.same(s, [e.splits.train, e.splits.valid, e.splits.test]);
});

t.test('samples, crop boxes and targets as the original computes them', async (t) => {
  for (const crop of [224, 96]) {
    const ds = await readFaces300W(ROOT, { cropSize: crop });
    t.match(ds, { name: '300w', task: 'regression', metric: 'r2', mode: 'indoor+outdoor', numClasses: null });
    const rel = relTo(ROOT);
    const all = [...ds.splits.train.samples, ...ds.splits.val.samples, ...ds.splits.test.samples];
    t.equal(all.length, 7);
    t.match(ds.splits.train.source, /generated/);
    // the index order: sorted images indoor then outdoor, indexed by the generated splits
    const sorted = Object.keys(e.samples).sort();
    t.same(ds.splits.train.samples.map((s) => rel(s.path)), e.splits.train.map((i: number) => sorted[i]));
    t.same(ds.splits.val.samples.map((s) => rel(s.path)), e.splits.valid.map((i: number) => sorted[i]));
    t.same(ds.splits.test.samples.map((s) => rel(s.path)), e.splits.test.map((i: number) => sorted[i]));
    t.same(ds.splits.trainval.samples.map((s) => s.path), [...ds.splits.train.samples, ...ds.splits.val.samples].map((s) => s.path));
    for (const s of all) {
      const want = e.samples[rel(s.path)];
      t.ok(s.target instanceof Float32Array);
      t.same(Array.from(s.target), want[String(crop)], `${rel(s.path)} @${crop}: float32 targets, bit for bit`);
      t.same([s.crop.left, s.crop.top, s.crop.right, s.crop.bottom], want.box, `${rel(s.path)}: PIL box`);
      t.same([s.crop.right - s.crop.left, s.crop.bottom - s.crop.top], want.crop_size);
      t.equal(rel(s.keypointsPath), rel(s.path).replace(/\.png$/, '.pts'));
    }
  }
});

t.test('the crop/keypoint transform (pure)', async (t) => {
  // x1 = 10.5 (rounds to 10), side 41: x1 + 41 = 51.5 rounds to 52, so the crop is 42 x 41 and the
  // x coordinates shift by (42 - 41) / 2 = 0.5 before scaling.
  const r = faces300wTarget([10.5, 20.25, 51.5, 50.25, 30, 30], 224);
  t.same(r.crop, { left: 10, top: 20, right: 52, bottom: 61 });
  t.same(r.bbox, { x1: 10.5, y1: 20.25, side: 41 });
  // torch computes each step in float32: (x - 0.5) / 41, then * 224, rounded each time
  const f = Math.fround;
  const step = (x: number, off: number): number => f(f(f(x - off) / 41) * 224);
  t.same(Array.from(r.target), [step(0, 0.5), step(0, 0), step(41, 0.5), step(30, 0), step(19.5, 0.5), step(9.75, 0)]);
  t.not(r.target[0], f(((0 - 0.5) / 41) * 224), 'rounding once at the end would differ');
  // float32 landmarks: 0.1 is not 0.1 in float32
  t.equal(faces300wTarget([0.1, 0.1, 100.1, 50.1], 100).landmarks[0], Math.fround(0.1));
  t.throws(() => faces300wTarget([5, 5, 5, 5], 224, 'p.pts'), { code: 'ERR_DATASET_LAYOUT', file: 'p.pts', message: /span a 0x0 box/ });
});

t.test('split files are used when present', async (t) => {
  const root = copyFixture('300W', tmp);
  const put = (name: string, v: number[]): Promise<void> =>
    writeNpy(path.join(root, `indoor+outdoor_${name}.npy`), { dtype: 'int64', shape: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
  await put('train', [0, 1, 2]);
  await put('valid', [3]);
  await put('test', [6, 5, 4]);
  const ds = await readFaces300W(root);
  const sorted = Object.keys(e.samples).sort();
  const rel = relTo(root);
  t.same(ds.splits.test.samples.map((s) => rel(s.path)), [sorted[6], sorted[5], sorted[4]]);
  t.same(Array.from(ds.splits.test.samples[0]!.target), e.samples[sorted[6]!]['224']);
  t.match(ds.splits.train.source, /^file .*indoor\+outdoor_train\.npy$/);
  await put('valid', [3, 0]);
  await t.rejects(readFaces300W(root), { code: 'ERR_DATASET_LAYOUT', message: /index 0 is in both .*_train\.npy and .*_valid\.npy/ });
  await put('valid', [7]);
  await t.rejects(readFaces300W(root), { code: 'ERR_DATASET_LAYOUT', field: '[0]', message: /index 7 .* outside 0\.\.6/ });
  await writeNpy(path.join(root, 'indoor+outdoor_valid.npy'), { dtype: 'float32', shape: [1], data: Float32Array.from([1]) });
  await t.rejects(readFaces300W(root), { code: 'ERR_DATASET_LAYOUT', field: 'descr', message: /dtype is float32; expected a 1-D integer array/ });
  // only the indoor images: 4, split files absent for that mode
  const indoor = await readFaces300W(root, { mode: 'indoor' });
  t.equal(indoor.splits.train.samples.length + indoor.splits.val.samples.length + indoor.splits.test.samples.length, 4);
});

t.test('bad layouts name what was expected', async (t) => {
  const root = copyFixture('300W', path.join(tmp, 'bad'));
  fs.rmSync(path.join(root, '02_Outdoor', 'outdoor_002.pts'));
  await t.rejects(readFaces300W(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, '02_Outdoor', 'outdoor_002.png'), message: /unpaired: .*outdoor_002\.png \(no \.pts\)/ });
  fs.writeFileSync(path.join(root, '02_Outdoor', 'outdoor_002.pts'), 'version: 1\nn_points: 67\n{\n' + '1 2\n'.repeat(67) + '}\n');
  await t.rejects(readFaces300W(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, '02_Outdoor', 'outdoor_002.pts'), field: 'line 2', message: /n_points is 67; expected 68/ });
  fs.writeFileSync(path.join(root, '02_Outdoor', 'outdoor_002.pts'), 'version: 1\nn_points: 68\n{\n' + '1 2\n'.repeat(67) + 'nan 2\n}\n');
  await t.rejects(readFaces300W(root), { field: 'line 71', message: /not a finite number/ });
  fs.rmSync(path.join(root, '02_Outdoor'), { recursive: true });
  await t.rejects(readFaces300W(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, '02_Outdoor'), message: /does not exist; expected the 300-W 02_Outdoor images/ });
});
