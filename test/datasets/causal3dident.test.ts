// Causal3DIdent (src/datasets/causal3dident.ts) against the original's Causal3DIdent: ImageFolder order,
// concatenated latents, class or latent targets.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { parseCausal3DIdentTarget, readCausal3DIdent } from '../../src/datasets/causal3dident';
import { writeNpy } from '../../src/io/npy';
import { DATA, copyFixture, expected, relTo, tmpDir } from './helpers';

const ROOT = path.join(DATA, 'Causal3DIdent');
const e = expected.causal3dident;
const tmp = tmpDir('c3di');

t.test('samples and targets as the original, for class and latent targets', async (t) => {
  const rel = relTo(ROOT);
  for (const target of ['class', '0', '9']) {
    const ds = await readCausal3DIdent(ROOT, { target });
    t.match(ds, { name: 'causal3dident', task: 'regression', metric: 'r2', numClasses: 7 });
    t.same(ds.splits.trainval.samples.map((s) => [rel(s.path), s.target]), e[`train_${target}`], `train, target ${target}`);
    t.same(ds.splits.test.samples.map((s) => [rel(s.path), s.target]), e[`test_${target}`], `test (float32 latents), target ${target}`);
  }
  const ds = await readCausal3DIdent(ROOT);
  t.same(ds.splits.trainval.samples[3]!.latents, e.latents_train_row3, 'default target 0; row 3 of the concatenation');
  t.equal(ds.targetType, 0);
  t.same(ds.classes, ['0', '1', '2', '3', '4', '5', '6']);
  t.equal(parseCausal3DIdentTarget(' 7 '), 7);
  t.throws(() => parseCausal3DIdentTarget('-1'), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(readCausal3DIdent(ROOT, { target: 10 }), { code: 'ERR_INVALID_ARGUMENT', message: /latent 10 does not exist: the latents have 10 columns/ });
});

t.test('latents that do not match the images, and missing parts', async (t) => {
  const root = copyFixture('Causal3DIdent', tmp);
  const lat = path.join(root, 'trainset', 'latents_2.npy');
  await writeNpy(lat, { dtype: 'float64', shape: [2, 10], data: new Float64Array(20) });
  await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: lat, message: /has 2 rows but class folder 2 \(index 2\) holds 3 images/ });
  await writeNpy(lat, { dtype: 'float64', shape: [3, 9], data: new Float64Array(27) });
  await t.rejects(readCausal3DIdent(root), { file: lat, message: /has 9 latents per row; latents_0\.npy has 10/ });
  fs.rmSync(lat);
  await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: lat, message: /missing file; expected the latents of one class/ });
  fs.copyFileSync(path.join(ROOT, 'trainset', 'latents_2.npy'), lat);
  fs.mkdirSync(path.join(root, 'trainset', '7'));
  fs.writeFileSync(path.join(root, 'trainset', '7', '000000.png'), '');
  await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, 'trainset'), message: /has 8 class folders .*; expected 7/ });
  fs.rmSync(path.join(root, 'trainset', '7'), { recursive: true });
  fs.rmSync(path.join(root, 'testset'), { recursive: true });
  await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, 'testset'), message: /does not exist/ });
});

t.test('latents that are not a 2-D float array, or not finite', async (t) => {
  const root = copyFixture('Causal3DIdent', tmpDir('c3di-values'));
  const lat = path.join(root, 'trainset', 'latents_2.npy');
  const orig = fs.readFileSync(lat);
  await writeNpy(lat, { dtype: 'int64', shape: [3, 10], data: new BigInt64Array(30).fill(1n) });
  await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: lat,
    message: /is a int64 array of shape \(3, 10\); expected a 2-D float array/ }, 'int64 latents');
  await writeNpy(lat, { dtype: 'float64', shape: [30], data: new Float64Array(30) });
  await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: lat, message: /is a float64 array of shape \(30\); expected a 2-D/ }, '1-D latents');

  for (const [bad, r, l] of [[NaN, 1, 4], [Infinity, 0, 0], [-Infinity, 2, 9]] as const) {
    const data = new Float64Array(30).fill(0.5);
    data[r * 10 + l] = bad;
    data[2 * 10 + 9] = bad; // a later one too: the first is named
    await writeNpy(lat, { dtype: 'float64', shape: [3, 10], data });
    await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: lat, field: `row ${r}, latent ${l}`,
      message: new RegExp(`non-finite value \\(${bad}\\) at row ${r}, latent ${l}`) }, `${bad} in float64 latents`);
  }
  const testLat = path.join(root, 'testset', 'latents_5.npy');
  const testRows = (await readCausal3DIdent(ROOT)).splits.test.samples.filter((s) => s.classIndex === 5).length;
  const f32 = new Float32Array(testRows * 10).fill(0.25);
  f32[(testRows - 1) * 10 + 3] = NaN;
  await writeNpy(lat, { dtype: 'float64', shape: [3, 10], data: new Float64Array(30) }); // trainset fine again
  await writeNpy(testLat, { dtype: 'float32', shape: [testRows, 10], data: f32 });
  await t.rejects(readCausal3DIdent(root), { code: 'ERR_DATASET_LAYOUT', file: testLat, field: `row ${testRows - 1}, latent 3` },
    'NaN in float32 latents (testset)');

  fs.writeFileSync(lat, orig);
  fs.copyFileSync(path.join(ROOT, 'testset', 'latents_5.npy'), testLat);
  const ds = await readCausal3DIdent(root);
  t.same(ds.splits.trainval.samples[3]!.latents, e.latents_train_row3, 'the original files read again');
});
