// --decode-workers / --decode-memory-mb / --decode-timeout (cli/decode-flags.ts): the commands that
// decode images do so in memory-capped processes when asked.
//   1. features --data: the same bytes with --decode-workers 2 as decoded in this process.
//   2. A decompression bomb in the data (13000 x 13000 PNG under 1 MB, 507 MB of pixels, inside the
//      pixel limit) under a 384 MiB cap: features and pretrain skip it by name with --on-error skip
//      and go on; eval-synthetic and views stop with ERR_IMAGE_TOO_LARGE naming it and the cap. (In
//      this process it would decode: these failures show the images went through the workers.)
//   3. --max-pixels refuses larger images from their header, in this process and in the workers.
//   4. The flags' usage errors; every command that decodes lists the flags.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSceneSet } from '../../src/demo/scenes';
import { torchSave } from '../../src/io/torch-save';
import { readNpySync } from '../../src/io/npy';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { runCli } from '../helpers/cli';
import { materializeCheckpoint } from '../helpers/model-fixtures';
import { writePhotoTree } from '../helpers/photo-tree';
import { writePngBomb } from '../helpers/png-bomb';
import { writeTinyImageFolder } from '../helpers/tiny-image-folder';

const FIX = path.join(__dirname, '..', 'fixtures');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-decode-flags-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const photos = path.join(dir, 'photos'), bomb = path.join(dir, 'bomb.png');
const capped = ['--decode-workers', '1', '--decode-memory-mb', '384'];
const linux = process.platform === 'linux';

t.before(async () => {
  writePhotoTree(photos);
  await writePngBomb(bomb);
});

t.test('features: the same bytes decoded in worker processes', async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-plain');
  const a = path.join(dir, 'a.npy'), b = path.join(dir, 'b.npy');
  const common = ['features', '--checkpoint', ckpt, '--data', photos, '--batch-size', '6', '--resize', '64', '--crop-size', '56', '--quiet'];
  let r = await runCli([...common, '--out', a]);
  t.equal(r.code, 0, r.stderr);
  r = await runCli([...common, '--out', b, '--decode-workers', '2', '--decode-timeout', '60']);
  t.equal(r.code, 0, r.stderr);
  t.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), 'identical .npy files');
});

t.test('features and pretrain skip a bomb by name and go on', { skip: !linux && 'the memory cap is Linux only' }, async (t) => {
  const tree = path.join(dir, 'photos-bomb');
  fs.cpSync(photos, tree, { recursive: true });
  fs.copyFileSync(bomb, path.join(tree, 'coffee', 'coffee_zz_bomb.png'));
  const ckpt = await materializeCheckpoint('resnet18-plain');
  const out = path.join(dir, 'c.npy');
  const r = await runCli(['features', '--checkpoint', ckpt, '--data', tree, '--out', out, '--resize', '64', '--crop-size', '56',
    '--on-error', 'skip', '--quiet', ...capped]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /skipped .*coffee_zz_bomb\.png: ERR_IMAGE_TOO_LARGE: .*more memory than a decode worker may use \(384 MiB\)/);
  t.same(readNpySync(out).shape, [fs.readdirSync(path.join(FIX, 'images', 'inputs')).length, 512]);

  const data = path.join(dir, 'train-data');
  await writeTinyImageFolder(data, 7);  // with the bomb, 8 images: two steps of 4 take them all
  fs.copyFileSync(bomb, path.join(data, 'train', 'cat', 'img99.png'));
  const run = path.join(dir, 'run');
  const p = await runCli(['pretrain', data, '-a', 'resnet18', '-b', '4', '--moco-k', '16', '--moco-dim', '16', '--image-size', '32',
    '--epochs', '1', '--threads', '2', '--out-dir', run, '--on-error', 'skip', '--quiet', ...capped]);
  t.equal(p.code, 0, p.stderr);
  t.match(p.stderr, /skipped .*img99\.png .*ERR_IMAGE_TOO_LARGE: .*decode worker/);
  const summary = JSON.parse(fs.readFileSync(path.join(run, 'pretrain-summary.json'), 'utf8'));
  t.equal(summary.options.decodeWorkers, 1);
  t.equal(summary.options.decodeMemoryMb, 384);
  t.same(summary.skippedImages.map((s: { file: string }) => path.basename(s.file)), ['img99.png']);
});

t.test('eval-synthetic and views stop at a bomb with its name and the cap', { skip: !linux && 'the memory cap is Linux only' }, async (t) => {
  const ckptDir = path.join(dir, 'models'), data = path.join(dir, 'scenes');
  fs.mkdirSync(ckptDir);
  await torchSave(path.join(ckptDir, 'net.pth.tar'), torchvisionInitStateDict('resnet18', 4));
  await writeSceneSet(path.join(data, 'val'), { objects: 3, viewsPerObject: 2, width: 24, height: 18, seed: 2 });
  fs.mkdirSync(path.join(data, 'val', 'zz'));
  fs.copyFileSync(bomb, path.join(data, 'val', 'zz', 'bomb.png'));
  let r = await runCli(['eval-synthetic', data, '--model', 'net', '--transform', 'rotation', '--k', '2', '--num-images', '2',
    '--resize', '64', '--crop-size', '56', '--ckpt-dir', ckptDir, '--results-dir', path.join(dir, 'results'), '--quiet', ...capped]);
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /ERR_IMAGE_TOO_LARGE: .*bomb\.png: decoding needs more memory than a decode worker may use \(384 MiB\)/);
  r = await runCli(['views', bomb, '--transform', 'rotation', '--k', '2', '--out', path.join(dir, 'v.npy'), '--device', 'cpu', ...capped]);
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /ERR_IMAGE_TOO_LARGE: .*bomb\.png: decoding needs more memory/);
  t.notOk(fs.existsSync(path.join(dir, 'v.npy')));
});

t.test('--max-pixels: the images over it are refused by name, wherever they are decoded', async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-plain');
  const inputs = fs.readdirSync(path.join(FIX, 'images', 'inputs'));
  // The fixtures' sizes are in their names (e.g. china_333x251_420.jpg); the limit sits between them.
  const over = inputs.filter((n) => { const m = /_(\d+)x(\d+)/.exec(n); return m !== null && Number(m[1]) * Number(m[2]) > 40000; });
  t.ok(over.length >= 3 && over.length < inputs.length - 3, `${over.length} of ${inputs.length} images over 40000 pixels`);
  for (const extra of [[], ['--decode-workers', '2']]) {
    const out = path.join(dir, `mp${extra.length}.npy`);
    const r = await runCli(['features', '--checkpoint', ckpt, '--data', photos, '--out', out, '--resize', '64', '--crop-size', '56',
      '--on-error', 'skip', '--max-pixels', '40000', '--quiet', ...extra]);
    t.equal(r.code, 0, r.stderr);
    const skipped = [...r.stderr.matchAll(/skipped \S+\/([^/\s]+): ERR_IMAGE_TOO_LARGE: .*over the limit of 40000 \(option limitInputPixels\)/g)].map((m) => m[1]);
    t.same(skipped.sort(), [...over].sort(), `the images over the limit are skipped${extra.length ? ' (workers)' : ''}`);
    t.same(readNpySync(out).shape, [inputs.length - over.length, 512]);
  }
});

t.test('usage errors, and the flags on every command that decodes', async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-plain');
  const base = ['features', '--checkpoint', ckpt, '--data', photos, '--out', path.join(dir, 'x.npy'), '--quiet'];
  const cases: [string[], RegExp][] = [
    [['--decode-memory-mb', '512'], /--decode-memory-mb needs --decode-workers N/],
    [['--decode-timeout', '5'], /--decode-timeout needs --decode-workers N/],
    [['--decode-workers', '1', '--decode-memory-mb', '100'], /--decode-memory-mb 100: a decoder process needs at least 256 MiB/],
    [['--decode-workers', '-1'], /--decode-workers takes an integer >= 0/],
    [['--decode-workers', '1', '--decode-timeout', '0'], /--decode-timeout takes a number of seconds > 0/],
    [['--max-pixels', '0'], /--max-pixels takes an integer >= 1/],
  ];
  for (const [flags, message] of cases) {
    const r = await runCli([...base, ...flags]);
    t.equal(r.code, 2, flags.join(' '));
    t.match(r.stderr, /ERR_USAGE/);
    t.match(r.stderr, message);
  }
  t.notOk(fs.existsSync(path.join(dir, 'x.npy')));
  // Checked with the other flags, before any data or model is read.
  const nowhere = path.join(dir, 'nowhere');
  for (const args of [['eval-downstream', '--data-root', nowhere], ['eval-causal3dident', '--data-root', nowhere],
    ['eval-realworld', '--data-root', nowhere], ['eval-synthetic', nowhere]]) {
    const r = await runCli([...args, '--decode-timeout', '5', '--quiet']);
    t.equal(r.code, 2, `${args[0]}: a usage error, not the missing data`);
    t.match(r.stderr, /ERR_USAGE: --decode-timeout needs --decode-workers N/);
  }
  for (const cmd of ['features', 'pretrain', 'eval-synthetic', 'eval-realworld', 'eval-downstream', 'eval-causal3dident', 'views']) {
    const r = await runCli([cmd, '--help']);
    t.match(r.stdout, /--max-pixels <p>[\s\S]*--decode-workers <n>[\s\S]*--decode-memory-mb <m>[\s\S]*--decode-timeout <s>/, `${cmd} --help`);
  }
});
