// eval-synthetic and eval-realworld end to end on generated images: the original's output lines,
// result files, statistics found by checkpoint hash, COIL-100's real layout, and the errors.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listImageFolder } from '../../src/data/image-folder';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess';
import { writeSceneSet } from '../../src/demo/scenes';
import { loadNamedModel } from '../../src/eval/models';
import { loadOrComputeStats } from '../../src/eval/stats';
import { torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { runCli } from '../helpers/cli';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-eval-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const ckptDir = path.join(dir, 'models'), results = path.join(dir, 'results'), data = path.join(dir, 'data');

t.before(async () => {
  fs.mkdirSync(ckptDir);
  await torchSave(path.join(ckptDir, 'net.pth.tar'), torchvisionInitStateDict('resnet18', 4));
  // 37 objects x 14 views = 518 images, more than ResNet-18's 512 feature dimensions.
  await writeSceneSet(path.join(data, 'val'), { objects: 37, viewsPerObject: 14, width: 24, height: 18, seed: 2 });
});

const small = ['--resize', '64', '--crop-size', '56', '--ckpt-dir', ckptDir, '--results-dir', results, '--quiet'];

t.test('eval-synthetic prints and writes what the original does', async (t) => {
  const r = await runCli(['eval-synthetic', data, '--model', 'net', '--transform', 'rotation', '--k', '4', '--num-images', '3', '--batch-size', '64', ...small]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^net on rotation:\n\t distance \d+\.\d{6} and similarity -?\d\.\d{6}\n$/);
  const j = JSON.parse(fs.readFileSync(path.join(results, 'net_backbone_imagenet_rotation_invariance.json'), 'utf8'));
  t.same(j.rows.map((row: { param: number }) => row.param), [0, 90, 180, 270]);
  t.equal(j.rows[0].similarity, 1, 'the 0-degree view is the clean image');
  t.equal(j.rows[0].distance, 0);
  t.same(j.config.sampledImages, [192, 359, 9], 'np.random.seed(0); np.random.choice(518, 3)');
  t.equal(j.statistics.images, 518);
  t.match(j.models[0].sha256, /^[0-9a-f]{64}$/);
  const csv = fs.readFileSync(path.join(results, 'net_backbone_imagenet_rotation_invariance.csv'), 'utf8').trim().split('\n');
  t.equal(csv.length, 1 + 4 * 2);
  t.equal(csv[0], 'model,kind,dataset,transform,id,param,metric,value');
  // --json: the same result as one JSON line (the statistics are cached now, the views made again).
  const js = await runCli(['eval-synthetic', data, '--model', 'net', '--transform', 'rotation', '--k', '4', '--num-images', '3', '--batch-size', '64', ...small, '--json']);
  t.equal(js.code, 0, js.stderr);
  const lines = js.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines, [{ kind: 'synthetic', model: 'net', dataset: 'imagenet', transform: 'rotation', distance: j.summary.distance,
    similarity: j.summary.similarity, file: path.join(results, 'net_backbone_imagenet_rotation_invariance.json') }], '--json: one line, the result file\'s summary');
});

t.test('eval-synthetic errors', async (t) => {
  let r = await runCli(['eval-synthetic', data, '--model', 'net', '--transform', 'twirl', ...small]);
  t.equal(r.code, 2);
  t.match(r.stderr, /ERR_USAGE/);
  r = await runCli(['eval-synthetic', data, '--no-such-flag']);
  t.equal(r.code, 2, 'an unknown option');
  t.match(r.stderr, /^ssl-inv: error ERR_USAGE: unknown option '--no-such-flag'/, 'commander\'s usage errors carry the code');
  r = await runCli(['probe', '--seed', 'x']);
  t.equal(r.code, 2, 'a bad option value');
  t.match(r.stderr, /^ssl-inv: error ERR_USAGE: option '--seed <seed>' argument 'x' is invalid/);
  r = await runCli(['eval-synthetic', data, '--seed', '-1', ...small]);
  t.equal(r.code, 2, '--seed -1');
  t.match(r.stderr, /ERR_USAGE: --seed takes an integer from 0 to 2\*\*32 - 1/);
  r = await runCli(['eval-synthetic', data, '--model', 'net', '--transform', 'all', '--k', '4', ...small]);
  t.equal(r.code, 2, '--k with --transform all');
  r = await runCli(['eval-synthetic', data, '--model', 'net', '--precision', 'bf16', '--device', 'cpu', ...small]);
  t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE/);
  r = await runCli(['eval-synthetic', data, '--model', 'missing', ...small]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_FILE_NOT_FOUND.*missing\.pth\.tar/);
  r = await runCli(['eval-synthetic', data, '--model', 'net', '--transform', 'translation', '--k', '5', '--num-images', '1', ...small]);
  t.match(r.stderr, /ERR_INVALID_ARGUMENT.*square/);
  const few = path.join(dir, 'few');
  await writeSceneSet(path.join(few, 'val'), { objects: 3, viewsPerObject: 3, width: 24, height: 18, seed: 3 });
  r = await runCli(['eval-synthetic', few, '--model', 'net', '--num-images', '1', '--k', '2', ...small, '--results-dir', path.join(dir, 'few-results')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_SINGULAR_MATRIX.*9 images' 512-dimensional features is singular/);
});

t.test('eval-realworld on COIL-100\'s layout, with the statistics of the synthetic run', async (t) => {
  const coil = path.join(dir, 'realdata', 'COIL100');
  fs.mkdirSync(coil, { recursive: true });
  const objects = await writeSceneSet(path.join(dir, 'coil-src'), { objects: 100, viewsPerObject: 2, width: 24, height: 18, seed: 9 });
  objects.files.forEach((f, i) => fs.copyFileSync(f, path.join(coil, `obj${Math.floor(i / 2) + 1}__${(i % 2) * 5}.png`)));
  const r = await runCli(['eval-realworld', '--model', 'net', '--dataset', 'COIL100', '--data-root', path.join(dir, 'realdata'), ...small]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^net: \d+\.\d+(e[-+]\d+)?, -?\d\.\d+(e[-+]\d+)?\n$/, '{model}: {distance}, {similarity} in Python\'s repr');
  const j = JSON.parse(fs.readFileSync(path.join(results, 'net_backbone_COIL100_invariance.json'), 'utf8'));
  t.equal(j.rows.length, 100, 'one row per object');
  t.equal(j.statistics.images, 518, 'whitened with the synthetic run\'s statistics, found by checkpoint hash');
  // Statistics of the same checkpoint made by tf32 networks (computed here by the CPU network under a
  // tf32 key: only the key matters to the choice) do not compete with the fp32 ones of an fp32 run...
  const net = await loadNamedModel('net', { ckptDir });
  const tf32Stats = await loadOrComputeStats({
    model: net, modelName: 'net', models: net.parts.map((p) => ({ name: p.name, sha256: p.sha256 })), fuseMode: 'cat', featureLayer: 'backbone',
    dataset: 'imagenet', split: 'val', listing: await listImageFolder(path.join(data, 'val')), batchSize: 64, resultsDir: results,
    transform: { resize: 64, crop: 56, mean: IMAGENET_MEAN, std: IMAGENET_STD }, precision: 'tf32',
  }).finally(() => net.dispose());
  const again = await runCli(['eval-realworld', '--model', 'net', '--dataset', 'COIL100', '--data-root', path.join(dir, 'realdata'), ...small, '--json']);
  t.equal(again.code, 0, again.stderr);
  const line = JSON.parse(again.stdout);
  const jj = JSON.parse(fs.readFileSync(path.join(results, 'net_backbone_COIL100_invariance.json'), 'utf8'));
  t.same(line, { kind: 'realworld', model: 'net', dataset: 'COIL100', distance: jj.summary.distance, similarity: jj.summary.similarity,
    file: path.join(results, 'net_backbone_COIL100_invariance.json') }, '--json: the result as one JSON line');
  t.equal(JSON.parse(fs.readFileSync(path.join(results, 'net_backbone_COIL100_invariance.json'), 'utf8')).statistics.file, j.statistics.file,
    'an fp32 run takes the fp32 networks\' statistics over the tf32 ones');
  // ...but are used, with a notice, when they are the only ones.
  fs.renameSync(j.statistics.file, `${j.statistics.file}.aside`);
  const only = await runCli(['eval-realworld', '--model', 'net', '--dataset', 'COIL100', '--data-root', path.join(dir, 'realdata'), ...small.slice(0, -1)]);
  fs.renameSync(`${j.statistics.file}.aside`, j.statistics.file);
  t.equal(only.code, 0, only.stderr);
  t.match(only.stderr, /no statistics of fp32 networks with float32 activations found: using .*, made by tf32 networks with float32 activations/, 'a notice names the statistics used');
  const named = await runCli(['eval-realworld', '--model', 'net', '--dataset', 'COIL100', '--data-root', path.join(dir, 'realdata'), ...small.slice(0, -1),
    '--stats', tf32Stats.file]);
  t.equal(named.code, 0, named.stderr);
  t.match(named.stderr, /was made by tf32 networks with float32 activations; this run has fp32 networks with float32 activations/, '--stats FILE of other networks: said too');
  t.equal(JSON.parse(fs.readFileSync(path.join(results, 'net_backbone_COIL100_invariance.json'), 'utf8')).statistics.file, tf32Stats.file);
  // A second set of statistics of the same checkpoint (other preprocessing) makes the choice ambiguous.
  const other = await runCli(['eval-synthetic', data, '--model', 'net', '--transform', 'invert', '--num-images', '1', ...small, '--resize', '72', '--crop-size', '64']);
  t.equal(other.code, 0, other.stderr);
  const amb = await runCli(['eval-realworld', '--model', 'net', '--dataset', 'COIL100', '--data-root', path.join(dir, 'realdata'), ...small]);
  t.equal(amb.code, 2);
  t.match(amb.stderr, /several statistics fit --model net; choose one with --stats/);
  const none = await runCli(['eval-realworld', '--model', 'net', '--dataset', 'COIL100', '--data-root', path.join(dir, 'realdata'),
    ...small.slice(0, -3), '--results-dir', path.join(dir, 'empty-results'), '--quiet']);
  t.equal(none.code, 1);
  t.match(none.stderr, /ERR_FILE_NOT_FOUND.*run eval-synthetic for this model first, or pass --stats-data/);
});
