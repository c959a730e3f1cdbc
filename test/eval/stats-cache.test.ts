// The statistics cache is keyed by content: retraining a checkpoint under the same name recomputes
// them; a truncated or corrupted cache file is detected and recomputed, never trusted.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSceneSet } from '../../src/demo/scenes';
import { listImageFolder } from '../../src/data/image-folder';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess';
import { torchSave } from '../../src/io/torch-save';
import { loadNamedModel } from '../../src/eval/models';
import { loadOrComputeStats } from '../../src/eval/stats';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-cache-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('content-keyed statistics', async (t) => {
  const ckptDir = path.join(dir, 'models'), resultsDir = path.join(dir, 'results');
  fs.mkdirSync(ckptDir);
  await writeSceneSet(path.join(dir, 'data', 'val'), { objects: 5, viewsPerObject: 4, width: 24, height: 18, seed: 1 });
  const listing = await listImageFolder(path.join(dir, 'data', 'val'));
  const notices: string[] = [];
  const stats = async (arithmetic: { precision?: string; activations?: string } = {}) => {
    const model = await loadNamedModel('mynet', { ckptDir });
    try {
      return await loadOrComputeStats({
        model, modelName: 'mynet', models: model.parts.map((p) => ({ name: p.name, sha256: p.sha256 })), fuseMode: 'cat',
        featureLayer: 'backbone', dataset: 'demo', split: 'val', listing, batchSize: 8, resultsDir,
        transform: { resize: 32, crop: 28, mean: IMAGENET_MEAN, std: IMAGENET_STD }, onNotice: (m) => notices.push(m), ...arithmetic,
      });
    } finally {
      model.dispose();
    }
  };
  await torchSave(path.join(ckptDir, 'mynet.pth.tar'), torchvisionInitStateDict('resnet18', 1));
  const a = await stats();
  t.equal(a.cached, false);
  t.equal(a.count, 20);
  const a2 = await stats();
  t.equal(a2.cached, true, 'the same inputs hit the cache');
  t.equal(a2.file, a.file);
  t.same(Array.from(a2.mean), Array.from(a.mean));

  await torchSave(path.join(ckptDir, 'mynet.pth.tar'), torchvisionInitStateDict('resnet18', 2)); // "retrained"
  const b = await stats();
  t.equal(b.cached, false, 'new checkpoint bytes under the same name: recomputed');
  t.not(b.key, a.key);
  t.notSame(Array.from(b.mean.slice(0, 8)), Array.from(a.mean.slice(0, 8)));

  const bytes = fs.readFileSync(b.file);
  fs.writeFileSync(b.file, bytes.subarray(0, bytes.length - 100)); // truncated
  const c = await stats();
  t.equal(c.cached, false, 'a truncated cache file is recomputed');
  t.match(notices.join('\n'), /unreadable/);
  t.same(Array.from(c.mean), Array.from(b.mean));

  const good = fs.readFileSync(c.file);
  good[good.length - 3] = good[good.length - 3]! ^ 0xff; // a flipped payload byte
  fs.writeFileSync(c.file, good);
  const d = await stats();
  t.equal(d.cached, false, 'a corrupted cache file is recomputed');
  t.match(notices.join('\n'), /checksum mismatch/);
  const e = await stats();
  t.equal(e.cached, true, 'and the rewritten file is trusted again');

  // The networks' arithmetic is part of the key (a CPU network computes these, so only the keys differ).
  const same = await stats({ precision: 'fp32', activations: 'float32' });
  t.equal(same.cached, true, 'fp32 / float32 spelt out: the key of earlier versions');
  t.equal(same.key, e.key);
  const bf16 = await stats({ precision: 'bf16' });
  const bf16Act = await stats({ precision: 'bf16', activations: 'bfloat16' });
  t.equal(bf16.cached, false, 'bf16 networks: statistics of their own');
  t.equal(bf16Act.cached, false, 'bf16 networks with bfloat16 activations: of their own too');
  t.equal(new Set([e.key, bf16.key, bf16Act.key]).size, 3, 'three keys');
  t.same(bf16Act.inputs.activations, 'bfloat16', 'recorded in the file\'s inputs');
  t.equal((await stats({ precision: 'bf16', activations: 'bfloat16' })).cached, true, 'and found again');
});
