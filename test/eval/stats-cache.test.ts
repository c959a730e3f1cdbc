// The statistics cache is keyed by content: retraining a checkpoint under the same name recomputes
// them; a truncated or corrupted cache file is detected and recomputed, never trusted.
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSceneSet } from '../../src/demo/scenes';
import { listImageFolder } from '../../src/data/image-folder';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess';
import { torchSave } from '../../src/io/torch-save';
import { loadNamedModel } from '../../src/eval/models';
import { ComputeStatsOptions, loadOrComputeStats, readStatsFile } from '../../src/eval/stats';
import type { FeatureExtractor } from '../../src/eval/features';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors';
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

// The tests below need no network: a tiny fake extractor (per-channel means and spreads of the
// preprocessed pixels, 4 features) over 6 small images keeps each of them to a few hundred ms.
const tinyModel: FeatureExtractor = {
  featureDim: 4,
  features(x) {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const px = x.toFloat32Array();
    const out = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      let all = 0, sq = 0;
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        for (let k = 0; k < h * w; k++) {
          const v = px[(i * c + ch) * h * w + k]!;
          sum += v;
          sq += v * v;
        }
        out[i * 4 + ch] = sum / (h * w);
        all += sum;
      }
      out[i * 4 + 3] = sq / (c * h * w) - (all / (c * h * w)) ** 2;
    }
    return out;
  },
};

async function tinySetup(name: string) {
  const root = path.join(dir, name);
  const data = path.join(root, 'data', 'val');
  await writeSceneSet(data, { objects: 3, viewsPerObject: 2, width: 16, height: 12, seed: 7 });
  const resultsDir = path.join(root, 'results');
  const notices: string[] = [];
  const base = async (): Promise<ComputeStatsOptions> => ({
    model: tinyModel, modelName: 'tiny', models: [{ name: 'tiny', sha256: 'ab'.repeat(32) }], fuseMode: 'cat',
    featureLayer: 'backbone', dataset: 'demo', split: 'val', listing: await listImageFolder(data), batchSize: 4, resultsDir,
    transform: { resize: 8, crop: 8, mean: IMAGENET_MEAN, std: IMAGENET_STD }, onNotice: (m: string) => notices.push(m),
  });
  return { data, resultsDir, notices, base };
}

t.test('a cache file with NaN or Inf under a valid payload checksum is recomputed', async (t) => {
  const { notices, base } = await tinySetup('nonfinite');
  const a = await loadOrComputeStats(await base());
  t.equal(a.cached, false);
  const poison = async (tensor: 'mean' | 'cov', index: number, value: number) => {
    const f = await readSafetensors(a.file);
    const mean = f.tensors.get('mean')!.data as Float64Array, cov = f.tensors.get('cov')!.data as Float64Array;
    (tensor === 'mean' ? mean : cov)[index] = value;
    const sha = createHash('sha256').update(new Uint8Array(mean.buffer, mean.byteOffset, mean.byteLength))
      .update(new Uint8Array(cov.buffer, cov.byteOffset, cov.byteLength)).digest('hex');
    await writeSafetensors(a.file, new Map([['mean', { shape: [4], data: mean }], ['cov', { shape: [4, 4], data: cov }]]),
      { ...f.metadata, payload_sha256: sha });
  };
  for (const [tensor, index, value, where] of [['cov', 6, NaN, 'cov[1, 2]'], ['mean', 3, Infinity, 'mean[3]'], ['cov', 15, -Infinity, 'cov[3, 3]']] as const) {
    await poison(tensor, index, value);
    const read = await readStatsFile(a.file, a.key);
    t.equal(typeof read, 'string', `${value} in ${where}: readStatsFile refuses the file`);
    t.match(read, `non-finite value ${value} in ${where}`);
    const b = await loadOrComputeStats(await base());
    t.equal(b.cached, false, `${value} in ${where}: recomputed`);
    t.match(notices[notices.length - 1], /are corrupt \(non-finite value/);
    t.same(Array.from(b.cov), Array.from(a.cov), 'the same statistics as before');
    t.ok(b.mean.every(Number.isFinite) && b.cov.every(Number.isFinite));
  }
  t.equal((await loadOrComputeStats(await base())).cached, true, 'the rewritten file is trusted again');
});

t.test('a changed input is a cache miss: image listing and transform', async (t) => {
  const { data, base } = await tinySetup('inputs');
  const a = await loadOrComputeStats(await base());
  t.equal(a.cached, false);
  t.equal((await loadOrComputeStats(await base())).cached, true, 'the same inputs hit the cache');

  const miss = async (what: string, o: ComputeStatsOptions) => {
    const s = await loadOrComputeStats(o);
    t.equal(s.cached, false, `${what}: recomputed`);
    t.not(s.key, a.key, `${what}: another key`);
    return s;
  };
  const extra = path.join(data, 'object_0', 'view_9.png');
  fs.copyFileSync(path.join(data, 'object_1', 'view_0.png'), extra);
  t.equal((await miss('one image added', await base())).count, 7);
  fs.rmSync(extra);
  t.equal((await loadOrComputeStats(await base())).cached, true, 'and removed again: the original listing hits');

  const from = path.join(data, 'object_2', 'view_1.png'), to = path.join(data, 'object_2', 'view_7.png');
  fs.renameSync(from, to); // same count, bytes and mtime: only the name differs
  const renamed = await miss('one image renamed', await base());
  t.equal(renamed.count, 6);
  t.same(Array.from(renamed.mean), Array.from(a.mean), 'the same pixels, so the same statistics (the key alone differs)');
  fs.renameSync(to, from);
  t.equal((await loadOrComputeStats(await base())).cached, true, 'renamed back: hits');

  const o = await base();
  await miss('crop 6 instead of 8', { ...o, transform: { ...o.transform, crop: 6 } });
  await miss('resize 10 instead of 8', { ...o, transform: { ...o.transform, resize: 10 } });
  await miss('another std', { ...o, transform: { ...o.transform, std: [0.5, 0.5, 0.5] } });
  await miss('another split', { ...o, split: 'train' });
});

t.test('two writers of the same statistics at once: one valid file, equal results, no temp file', async (t) => {
  const { resultsDir, base } = await tinySetup('writers');
  // Two writers, a few times over (which one renames first varies), then eight at once.
  for (const [round, writers] of [2, 2, 2, 8].entries()) {
    fs.rmSync(resultsDir, { recursive: true, force: true });
    const all = await Promise.all(Array.from({ length: writers }, async () => loadOrComputeStats(await base())));
    const a = all[0]!;
    const what = `round ${round + 1}, ${writers} writers`;
    t.ok(all.every((b) => b.key === a.key && b.file === a.file), `${what}: one key, one file`);
    const bytes = (x: Float64Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    t.ok(all.every((b) => bytes(b.mean).equals(bytes(a.mean)) && bytes(b.cov).equals(bytes(a.cov))), `${what}: identical statistics`);
    const read = await readStatsFile(a.file, a.key);
    t.not(typeof read, 'string', `${what}: the file parses and verifies${typeof read === 'string' ? ` (${read})` : ''}`);
    if (typeof read !== 'string') t.same(Array.from(read.cov), Array.from(a.cov), `${what}: and holds those statistics`);
    t.same(fs.readdirSync(resultsDir), [path.basename(a.file)], `${what}: only the statistics file, no temp file left`);
  }
  t.equal((await loadOrComputeStats(await base())).cached, true, 'a later call hits the cache');
});

t.test('statistics of features that are not all finite are refused, not written', async (t) => {
  const { resultsDir, base } = await tinySetup('nanfeatures');
  // An extractor whose third image overflows: one feature of it is infinite.
  let seen = 0;
  const overflowing: FeatureExtractor = {
    featureDim: 4,
    features(x) {
      const out = tinyModel.features(x);
      for (let i = 0; i < x.shape[0]!; i++, seen++) if (seen === 2) out[i * 4 + 1] = Infinity;
      return out;
    },
  };
  await t.rejects(loadOrComputeStats({ ...(await base()), model: overflowing }), { code: 'ERR_NON_FINITE', field: 'mean', message: /not all finite/ });
  t.same(fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir) : [], [], 'no statistics file');
});
