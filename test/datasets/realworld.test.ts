// The 11 real-world invariance configurations (src/datasets/{coil100,aloi,alot,exposure-errors,dali,
// flickr1024,real-blur}.ts) against the original's get_views_of_class on the same file trees
// (realworld.json.gz: the trees, with distractors, and the original's views per class), and the layout
// errors of RELIABILITY.md case 27.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { REALWORLD_DATASETS, readRealWorldDataset } from '../../src/datasets';
import { readAlot } from '../../src/datasets/alot';
import { materialize, realworldExpected, relTo, tmpDir } from './helpers';

const rw = realworldExpected();
const tmp = tmpDir('realworld');
const dataRoot = path.join(tmp, 'data');
for (const [name, files] of Object.entries(rw.trees)) materialize(path.join(dataRoot, name), files);

t.test('every configuration gives the original views, class by class, in order', async (t) => {
  t.same(Object.keys(REALWORLD_DATASETS), Object.keys(rw.configs), "DATA_INFO's names, in its order");
  for (const [name, cfg] of Object.entries(rw.configs)) {
    const ds = await readRealWorldDataset(name, dataRoot);
    const files = rw.trees[cfg.tree]!;
    const index = new Map(files.map((f, i) => [f, i]));
    const rel = relTo(path.join(dataRoot, cfg.tree));
    t.equal(ds.name, name);
    t.equal(ds.k, cfg.k);
    t.equal(ds.groups.length, cfg.groups.length, `${name}: number of classes`);
    const got = ds.groups.map((g) => g.files.map((f) => index.get(rel(f)) ?? -1));
    t.same(got, cfg.groups, `${name}: views of every class`);
  }
});

t.test('layout errors name what was expected', async (t) => {
  const root = path.join(tmp, 'bad');
  // COIL100: an object with no views; a name the original's int() cannot read
  const coil = path.join(root, 'COIL100');
  materialize(coil, rw.trees.COIL100!.filter((f) => !f.startsWith('obj42__')));
  await t.rejects(readRealWorldDataset('COIL100', root), { code: 'ERR_DATASET_LAYOUT', file: coil, message: /no views of 1 of the 100 objects \(obj42\)/ });
  materialize(coil, ['obj42__0.png', 'objX__0.png']);
  await t.rejects(readRealWorldDataset('COIL100', root), { file: path.join(coil, 'objX__0.png'), message: /not obj<N>__<angle>\.png/ });
  fs.rmSync(coil, { recursive: true });
  await t.rejects(readRealWorldDataset('COIL100', root), { file: coil, message: /does not exist; expected the COIL-100 images/ });
  // ALOI (the tree of the first test, changed in place): a mode folder missing; a non-integer object
  // folder; an illumination camera that is not a digit
  const aloi = path.join(dataRoot, 'ALOI');
  fs.rmSync(path.join(aloi, 'temperature'), { recursive: true });
  await t.rejects(readRealWorldDataset('ALOI-temperature', dataRoot), { file: path.join(aloi, 'temperature'), message: /does not exist; expected the ALOI temperature images/ });
  materialize(aloi, ['viewpoint/abc/1_r0.png', 'illumination/5/5_l1cX.png']);
  await t.rejects(readRealWorldDataset('ALOI-viewpoint', dataRoot), { file: path.join(aloi, 'viewpoint', 'abc', '1_r0.png'), message: /folder name is not an integer/ });
  await t.rejects(readRealWorldDataset('ALOI-illumination', dataRoot), { file: path.join(aloi, 'illumination', '5', '5_l1cX.png'), message: /not a camera number/ });
  fs.rmSync(path.join(aloi, 'illumination', '5', '5_l1cX.png'));
  fs.rmSync(path.join(aloi, 'illumination', '7', '7_l1c2.png'));
  await t.rejects(readRealWorldDataset('ALOI-illumination', dataRoot), { message: /no views for 1 of the 3000 classes \(7\/c2\)/ });
  // ALOT: a file whose name the original's tests cannot evaluate
  const alot = path.join(dataRoot, 'ALOT');
  materialize(alot, ['3/3c1l1.png']);
  await t.rejects(readAlot(alot, 'illumination'), { file: path.join(alot, '3', '3c1l1.png'), message: /no '_' in the file name/ });
  t.ok(await readAlot(alot, 'viewpoint'), "viewpoint mode never evaluates that file's camera");
  // Flickr1024: a right view missing
  const fl = path.join(root, 'Flickr1024');
  materialize(fl, rw.trees.Flickr1024!.filter((f) => f !== 'Test/0001_R.png'));
  await t.rejects(readRealWorldDataset('Flickr1024', root), { file: path.join(fl, 'Test', '0001_R.png'), message: /right views .* do not exist/ });
  // RealBlur: one blurred image fewer
  const rb = path.join(root, 'RealBlur');
  materialize(rb, rw.trees.RealBlur!.filter((f) => !f.endsWith('scene002/blur/blur_3.png')));
  await t.rejects(readRealWorldDataset('RealBlur', root), { message: /6 sharp \(gt\) and 5 blurred images/ });
  // DaLI: an object without views
  const dali = path.join(root, 'DaLI');
  materialize(dali, rw.trees.DaLI!.filter((f) => !f.startsWith('input/png/12/')));
  await t.rejects(readRealWorldDataset('DaLI', root), { file: path.join(dali, 'input', 'png'), message: /no views of object 12/ });
  // ExposureErrors: no ground truths
  await t.rejects(readRealWorldDataset('ExposureErrors', root), { file: path.join(root, 'ExposureErrors', 'INPUT_IMAGES'), message: /does not exist/ });
  await t.rejects(readRealWorldDataset('coil100', root), { code: 'ERR_INVALID_ARGUMENT', message: /unknown real-world data set 'coil100'; expected one of COIL100, ALOI-viewpoint/ });
});
