// `ssl-inv features --data` on real photos (JPEG/PNG of odd sizes, grayscale, CMYK, palette, 16-bit,
// EXIF-rotated, ICC-tagged) against torchvision's ImageFolder + eval transform + PyTorch, every row
// within 1e-3 relative error; labels and row order follow torchvision's listing. Also the skip policy.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNpySync } from '../../src/io/npy';
import { runCli } from '../helpers/cli';
import { materializeCheckpoint } from '../helpers/model-fixtures';
import { writePhotoTree } from '../helpers/photo-tree';

const FIX = path.join(__dirname, '..', 'fixtures');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-photos-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));


t.test('real photos match torchvision + PyTorch within 1e-3', async (t) => {
  const root = path.join(dir, 'photos');
  writePhotoTree(root);
  const ckpt = await materializeCheckpoint('resnet18-plain');
  const out = path.join(dir, 'f.npy'), labelsOut = path.join(dir, 'l.npy');
  const r = await runCli(['features', '--checkpoint', ckpt, '--data', root, '--out', out, '--labels-out', labelsOut,
    '--batch-size', '5', '--quiet']);
  t.equal(r.code, 0, r.stderr);
  const ours = readNpySync(out), ref = readNpySync(path.join(FIX, 'e2e', 'resnet18-plain.photos224.features.npy'));
  t.same(ours.shape, ref.shape);
  const d = ref.shape[1]!;
  const listing = JSON.parse(fs.readFileSync(path.join(FIX, 'e2e', 'photos.json'), 'utf8')) as { samples: [string, number][] };
  const worst = { err: 0, name: '' };
  for (let i = 0; i < ref.shape[0]!; i++) {
    let num = 0, den = 0;
    for (let j = 0; j < d; j++) {
      const a = (ours.data as Float32Array)[i * d + j]!, b = (ref.data as Float32Array)[i * d + j]!;
      num += (a - b) ** 2; den += b * b;
    }
    const err = Math.sqrt(num / den);
    if (err > worst.err) { worst.err = err; worst.name = listing.samples[i]![0]; }
  }
  t.ok(worst.err < 1e-3, `worst row ${worst.name}: relative error ${worst.err.toExponential(2)}`);
  t.same(Array.from(readNpySync(labelsOut).data as BigInt64Array, Number),
    Array.from(readNpySync(path.join(FIX, 'e2e', 'photos.labels.npy')).data as BigInt64Array, Number), 'labels in torchvision order');
});

t.test('unreadable images: error by default, skipped and listed on request', async (t) => {
  const root = path.join(dir, 'broken');
  writePhotoTree(root);
  const bad = path.join(root, 'coffee', 'coffee_zz_truncated.jpg');
  const good = fs.readFileSync(path.join(FIX, 'images', 'inputs', 'china_333x251_420.jpg'));
  fs.writeFileSync(bad, good.subarray(0, good.length >> 1));
  const ckpt = await materializeCheckpoint('resnet18-plain');
  const out = path.join(dir, 'g.npy');
  let r = await runCli(['features', '--checkpoint', ckpt, '--data', root, '--out', out, '--quiet']);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_IMAGE_DECODE/);
  t.match(r.stderr, /coffee_zz_truncated\.jpg/);
  t.notOk(fs.existsSync(out), 'no partial output');
  r = await runCli(['features', '--checkpoint', ckpt, '--data', root, '--out', out, '--on-error', 'skip', '--quiet']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /skipped .*coffee_zz_truncated\.jpg/);
  t.match(r.stdout, /skipped\s+1 unreadable/);
  t.same(readNpySync(out).shape, [24, 512], 'the 24 readable images');
});
