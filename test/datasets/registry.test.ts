// The registry (src/datasets/index.ts): the original's names, folders, tasks and metrics, and reading
// through it from a data root laid out as the original expects (`--data-root`, default ../data/).
import * as path from 'node:path';
import t from 'tap';
import {
  DOWNSTREAM_DATASETS, REALWORLD_DATASETS, downstreamInfo, readCausal3DIdentDataset, readDownstreamDataset, realWorldInfo,
} from '../../src/datasets';
import { DATA } from './helpers';

t.test("eval_downstream's dataset_info", async (t) => {
  t.same(Object.fromEntries(Object.values(DOWNSTREAM_DATASETS).map((d) => [d.name, [d.dir, d.task, d.numClasses, d.metric, d.originalSplits]])), {
    cifar10: ['CIFAR10', 'classification', 10, 'accuracy', ['train', 'train', 'test']],
    flowers: ['Flowers', 'classification', 102, 'accuracy', ['train', 'val', 'test']],  // trainval is a ConcatDataset
    caltech101: ['Caltech101', 'classification', 102, 'mean per-class accuracy', ['train', 'train', 'test']],
    '300w': ['300W', 'regression', null, 'r2', ['train', 'val', 'test']],
    celeba: ['CelebA', 'regression', 40, 'r2', ['train', 'val', 'test']],
    leeds_sports_pose: ['LeedsSportsPose', 'regression', null, 'r2', ['train', 'train', 'test']],
  });
  t.equal(downstreamInfo('CIFAR10').name, 'cifar10', 'names are lower-cased, as the original does');
  t.throws(() => downstreamInfo('imagenet'), { code: 'ERR_INVALID_ARGUMENT', message: /expected one of cifar10, flowers/ });
  t.same(Object.values(REALWORLD_DATASETS).map((d) => [d.name, d.dir, d.k]), [
    ['COIL100', 'COIL100', 72], ['ALOI-viewpoint', 'ALOI', 72], ['ALOI-illumination', 'ALOI', 8], ['ALOI-temperature', 'ALOI', 12],
    ['ALOT-viewpoint', 'ALOT', 16], ['ALOT-illumination', 'ALOT', 6], ['ALOT-temperature', 'ALOT', 2],
    ['ExposureErrors', 'ExposureErrors', 6], ['DaLI', 'DaLI', 32], ['Flickr1024', 'Flickr1024', 2], ['RealBlur', 'RealBlur', 2],
  ]);
  t.throws(() => realWorldInfo('toString'), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('reading by name from a data root', async (t) => {
  const opts = { verifyChecksums: false, expectedRows: 3 };
  for (const name of Object.keys(DOWNSTREAM_DATASETS)) {
    const ds = await readDownstreamDataset(name, DATA, opts);
    t.equal(ds.name, name);
    t.equal(ds.root, path.join(DATA, DOWNSTREAM_DATASETS[name]!.dir));
    t.ok(ds.splits.trainval!.samples.length > 0 && ds.splits.test!.samples.length > 0, `${name}: trainval and test`);
  }
  const c = await readCausal3DIdentDataset(DATA, { target: 'class' });
  t.equal(c.splits.test.samples.length, 7);
  await t.rejects(readDownstreamDataset('cifar10', path.join(DATA, 'nowhere'), opts), { code: 'ERR_DATASET_LAYOUT', message: /missing file/ });
});
