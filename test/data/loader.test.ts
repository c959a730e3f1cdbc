// loadBatches: deterministic order whatever the concurrency, bounded prefetch, error policies
// (throw with the path by default; skip-and-report on request; never a black image).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { Batch, loadBatches } from '../../src/data/loader';
import { EvalTransform } from '../../src/data/preprocess';
import { memoryStats } from '../../src/tensor';
import { fixturePath, golden, sha256 } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-loader-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tr: EvalTransform = { resize: 32, crop: 28, mean: golden.mean, std: golden.std };
const files = golden.images.map((g) => fixturePath(g.file));
const want = golden.images.map((g) => g.transforms.find((x) => x.resize === 32 && x.crop === 28)!.tensorSha256);
const PER = 3 * 28 * 28;

function slotSha(b: Batch, k: number): string {
  return sha256(b.batch.toFloat32Array().subarray(k * PER, (k + 1) * PER));
}

async function collect(fs_: readonly string[], opts: Parameters<typeof loadBatches>[2]): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loadBatches(fs_, tr, opts)) out.push(b);
  return out;
}

t.test('batches hold the files in order, identical to torchvision, for any concurrency', async (t) => {
  for (const [batchSize, concurrency, prefetch] of [[5, 1, 1], [5, 8, 2], [7, 3, 3], [24, 16, 1], [100, 4, 2]]) {
    const batches = await collect(files, { batchSize, concurrency, prefetch });
    t.equal(batches.length, Math.ceil(files.length / batchSize));
    let k = 0, bad = 0;
    for (const [bi, b] of batches.entries()) {
      t.same(b.index, Array.from({ length: b.index.length }, (_, j) => bi * batchSize + j));
      t.same(b.batch.shape, [b.index.length, 3, 28, 28]);
      t.same(b.skipped, []);
      b.index.forEach((i, j) => { if (slotSha(b, j) !== want[i]) bad++; k++; });
      b.batch.dispose();
    }
    t.equal(k, files.length);
    t.equal(bad, 0, `batchSize ${batchSize}, concurrency ${concurrency}: all tensors identical to torchvision`);
  }
});

t.test('at most `prefetch` batches wait for a slow consumer; an early exit frees them', async (t) => {
  const before = memoryStats().liveBuffers;
  const many = Array.from({ length: 40 }, (_, i) => files[i % files.length]);
  let maxLive = 0, seen = 0;
  for await (const b of loadBatches(many, tr, { batchSize: 4, concurrency: 8, prefetch: 2 })) {
    await new Promise((r) => setTimeout(r, 30));  // the loader runs ahead meanwhile
    maxLive = Math.max(maxLive, memoryStats().liveBuffers - before);
    b.batch.dispose();
    if (++seen === 6) break;
  }
  t.ok(maxLive <= 3, `live batch tensors while consuming: ${maxLive} (the one held + prefetch 2)`);
  await new Promise((r) => setTimeout(r, 300));  // let in-flight work finish
  t.equal(memoryStats().liveBuffers, before, 'nothing left allocated after leaving the loop');
});

t.test('a bad file throws its error with the path, after the batches before it', async (t) => {
  const bad = path.join(tmp, 'truncated.jpg');
  const d = fs.readFileSync(files.find((f) => f.endsWith('.jpg'))!);
  fs.writeFileSync(bad, d.subarray(0, d.length >> 1));
  const list = [...files.slice(0, 8), bad, ...files.slice(8)];
  const before = memoryStats().liveBuffers;
  const got: number[][] = [];
  const err = await (async () => {
    for await (const b of loadBatches(list, tr, { batchSize: 4, concurrency: 6 })) {
      got.push(b.index);
      b.batch.dispose();
    }
  })().catch((e: unknown) => e);
  t.match(err, { code: 'ERR_IMAGE_DECODE', file: bad });
  t.same(got, [[0, 1, 2, 3], [4, 5, 6, 7]], 'the batches before the bad one were delivered');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(memoryStats().liveBuffers, before, 'no batch left allocated');
});

t.test("onError 'skip' leaves bad files out and reports each; never a black image", async (t) => {
  const truncated = path.join(tmp, 'half.jpg');
  const d = fs.readFileSync(files.find((f) => f.endsWith('.jpg'))!);
  fs.writeFileSync(truncated, d.subarray(0, d.length >> 1));
  const svg = path.join(tmp, 'vector.jpg');
  fs.writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg"/>');
  const missing = path.join(tmp, 'missing.png');
  const list = [files[0], truncated, files[1], files[2], svg, missing, files[3]];
  const reported: string[] = [];
  const batches = await collect(list, { batchSize: 4, concurrency: 3, onError: 'skip',
    onSkip: (s) => reported.push(s.file) });
  t.same(batches.map((b) => b.index), [[0, 2, 3], [6]]);
  t.same(batches.map((b) => b.skipped.map((s) => [s.index, s.file, s.error.code])), [
    [[1, truncated, 'ERR_IMAGE_DECODE']],
    [[4, svg, 'ERR_IMAGE_FORMAT'], [5, missing, 'ERR_FILE_NOT_FOUND']],
  ]);
  t.same(reported.sort(), [truncated, svg, missing].sort());
  t.same(batches[0].batch.shape, [3, 3, 28, 28]);
  t.equal(slotSha(batches[0], 0), want[0]);
  t.equal(slotSha(batches[0], 1), want[1]);
  t.equal(slotSha(batches[0], 2), want[2]);
  t.equal(slotSha(batches[1], 0), want[3]);
  for (const b of batches) b.batch.dispose();
  // A whole batch of bad files is an empty batch, still in order.
  const empties = await collect([missing, missing, files[0]], { batchSize: 2, onError: 'skip' });
  t.same(empties.map((b) => [b.index, b.batch.shape[0], b.skipped.length]), [[[], 0, 2], [[2], 1, 0]]);
  for (const b of empties) b.batch.dispose();
});

t.test('options are checked', async (t) => {
  await t.rejects(collect(files, { batchSize: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(collect(files, { batchSize: 2, concurrency: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(collect(files, { batchSize: 2, onError: 'ignore' as never }), { code: 'ERR_INVALID_ARGUMENT' });
  t.same(await collect([], { batchSize: 2 }), []);
});
