// Cancellation (src/abort.ts): every long-running entry point takes an AbortSignal, looks at it between
// its units of work and stops with ERR_ABORTED saying where, frees the tensors it made (memoryStats
// back to where it started) and leaves no file, temp file or half-written checkpoint behind. A signal
// aborted before the call stops it before any work (no decode, no file read). Each case aborts after
// the first unit, from the hook or progress callback the entry point offers.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SslInvError } from '../../src/errors';
import { memoryStats } from '../../src/tensor';
import { decodeImageFile, DecodeOptions, ImageDecoder } from '../../src/data/decode';
import { listImageFolder } from '../../src/data/image-folder';
import { loadBatches } from '../../src/data/loader';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess';
import { featuresOfArray, featuresOfFiles } from '../../src/eval/features';
import { Whitening } from '../../src/eval/invariance';
import { LoadedModel } from '../../src/eval/model-loader';
import { NamedModel } from '../../src/eval/models';
import { evaluateRealWorld } from '../../src/eval/realworld';
import { runRealWorld } from '../../src/eval/realworld-run';
import { FeatureStats, loadOrComputeStats } from '../../src/eval/stats';
import { evaluateSynthetic } from '../../src/eval/synthetic';
import { ProgressSink, runSyntheticEvaluation, runSyntheticTransforms } from '../../src/eval/synthetic-run';
import { runCausal3DIdent, runDownstream } from '../../src/eval/downstream-run';
import { ResNetFeatures } from '../../src/nn/resnet';
import { classificationProbe, kernelRidgeProbe, regressionProbe } from '../../src/probes/cv';
import { transformGrid } from '../../src/transforms/grid';
import { loadMocoCheckpoint } from '../../src/train/moco-checkpoint';
import { PretrainOptions, runPretraining } from '../../src/train/pretrain';
import { DownstreamDataset, Sample } from '../../src/datasets';
import { makeClassification } from '../probes/data';
import { randomResNetParams } from '../helpers/random-resnet';
import { writeTinyImageFolder } from '../helpers/tiny-image-folder';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-abort-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const data = path.join(dir, 'data');
let files: string[] = [];
let net: ResNetFeatures;
const transform = { resize: 32, crop: 32, mean: IMAGENET_MEAN, std: IMAGENET_STD };

t.before(async () => {
  await writeTinyImageFolder(data, 8);
  files = (await listImageFolder(path.join(data, 'train'))).samples.map((s) => s.path);
  net = await ResNetFeatures.load('resnet18', randomResNetParams('resnet18'));
});
t.teardown(() => net?.dispose());

/** Awaits `p`, which must reject with ERR_ABORTED and a message matching `message`. */
async function rejectsAborted(t: Test, p: Promise<unknown>, message: RegExp, what: string): Promise<SslInvError | undefined> {
  try {
    await p;
  } catch (e) {
    t.equal((e as SslInvError).code, 'ERR_ABORTED', `${what}: ERR_ABORTED`);
    t.match((e as Error).message, message, `${what}: says where (${(e as Error).message})`);
    return e as SslInvError;
  }
  t.fail(`${what}: not stopped`);
  return undefined;
}

/** Live native buffers once work still in flight (decodes, preprocessing on libuv threads) has settled. */
async function settledBuffers(want: number): Promise<number> {
  for (let i = 0; i < 100 && memoryStats().liveBuffers !== want; i++) await new Promise((r) => setTimeout(r, 20));
  return memoryStats().liveBuffers;
}

/** A decoder that counts its calls (in-process decoding underneath) and runs `onCall` first. */
function countingDecoder(onCall: (n: number) => void = () => undefined): { decode: DecodeOptions; calls: () => number } {
  let calls = 0;
  const decoder: ImageDecoder = {
    decodeFile: (file, opts) => {
      onCall(++calls);
      return decodeImageFile(file, { ...opts, decoder: undefined });
    },
  };
  return { decode: { decoder }, calls: () => calls };
}

function abortedSignal(): AbortSignal {
  const c = new AbortController();
  c.abort();
  return c.signal;
}

/** Every file under `root`, relative, sorted (temp files included: they start with a dot). */
function filesUnder(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(root, f)).isFile()).sort();
}

t.test('loadBatches', async (t) => {
  const start = memoryStats().liveBuffers;
  {
    const counter = countingDecoder();
    await rejectsAborted(t, loadBatches(['/nonexistent/a.png'], transform, { batchSize: 2, signal: abortedSignal(), decode: counter.decode }).next(),
      /image loading stopped after 0 of 1 batches/, 'aborted before the call');
    t.equal(counter.calls(), 0, 'nothing decoded');
    await rejectsAborted(t, loadBatches([], transform, { batchSize: 2, signal: abortedSignal() }).next(), /after 0 of 0 batches/, 'no files, aborted before');
  }
  {
    // Aborted by the consumer after the first batch: the second is not delivered, and no decode starts
    // after the abort (one at a time here, so without the check the loader would go on decoding the
    // second batch before it noticed).
    const c = new AbortController();
    const counter = countingDecoder();
    const it = loadBatches(files, transform, { batchSize: 2, concurrency: 1, signal: c.signal, decode: counter.decode });
    const first = await it.next();
    t.equal(first.done, false);
    if (!first.done) first.value.batch.dispose();
    c.abort();
    const startedBefore = counter.calls();
    await rejectsAborted(t, it.next(), /after 1 of 4 batches/, 'aborted after the first batch');
    t.equal(await settledBuffers(start), start, 'the batches prepared ahead are freed');
    t.equal(counter.calls(), startedBefore, `no decode started after the abort (${startedBefore} of ${files.length} started)`);
  }
  {
    // Aborted while the first batch decodes (from inside the decoder): that batch is not delivered.
    const c = new AbortController();
    const counter = countingDecoder((n) => { if (n === 1) c.abort(new Error('user cancelled')); });
    let delivered = 0;
    const e = await rejectsAborted(t, (async () => {
      for await (const b of loadBatches(files, transform, { batchSize: 2, signal: c.signal, decode: counter.decode })) {
        delivered++;
        b.batch.dispose();
      }
    })(), /after 0 of 4 batches \(aborted: user cancelled\)/, 'aborted during a decode');
    t.equal(delivered, 0, 'no batch delivered after the abort');
    t.equal((e?.cause as Error | undefined)?.message, 'user cancelled', 'cause: the signal\'s reason');
    t.equal(await settledBuffers(start), start, 'the batch being decoded is freed');
  }
});

t.test('featuresOfFiles and featuresOfArray', async (t) => {
  const start = memoryStats().liveBuffers;
  {
    const counter = countingDecoder();
    await rejectsAborted(t, featuresOfFiles(net, files, transform, { batchSize: 2, signal: abortedSignal(), decode: counter.decode }).next(),
      /feature extraction of 8 images stopped before it started/, 'files: aborted before the call');
    t.equal(counter.calls(), 0, 'nothing decoded');
  }
  {
    const c = new AbortController();
    let chunks = 0;
    await rejectsAborted(t, (async () => {
      for await (const chunk of featuresOfFiles(net, files, transform, { batchSize: 2, signal: c.signal })) {
        t.equal(chunk.features.length, 2 * net.featureDim);
        chunks++;
        c.abort();
      }
    })(), /feature extraction stopped after 2 of 8 images/, 'files: aborted after the first batch');
    t.equal(chunks, 1, 'one chunk');
    t.equal(await settledBuffers(start), start, 'every tensor freed');
  }
  {
    const x = new Float32Array(6 * 3 * 32 * 32).fill(0.5);
    await rejectsAborted(t, featuresOfArray(net, x, [6, 3, 32, 32], 2, 'x.npy', { signal: abortedSignal() }).next(),
      /feature extraction of x\.npy stopped after 0 of 6 rows/, 'array: aborted before the call');
    const c = new AbortController();
    let chunks = 0;
    await rejectsAborted(t, (async () => {
      for await (const _ of featuresOfArray(net, x, [6, 3, 32, 32], 2, 'x.npy', { signal: c.signal })) {
        chunks++;
        c.abort();
      }
    })(), /feature extraction of x\.npy stopped after 2 of 6 rows/, 'array: aborted after the first batch');
    t.equal(chunks, 1, 'one chunk');
    t.equal(memoryStats().liveBuffers, start, 'every tensor freed');
  }
});

const identityWhitening = (d: number): Whitening => {
  const chol = new Float32Array(d * d), inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) { chol[i * d + i] = 1; inv[i * d + i] = 1; }
  return { dim: d, mean: new Float32Array(d), chol, inv };
};

const quietSink = (onTick: (label: string, done: number) => void = () => undefined): ProgressSink => ({
  start: (label) => {
    let done = 0;
    return { tick: (n) => { done += n; onTick(label, done); }, done: () => undefined };
  },
  notice: () => undefined,
});

/** A NamedModel around the test's random network (no checkpoint file behind it). */
function namedModel(): NamedModel {
  const model = { net, arch: 'resnet18', archSource: 'option', file: 'random.pth.tar' } as unknown as LoadedModel;
  const m = new NamedModel('random', [{ name: 'random', file: 'random.pth.tar', sha256: '0'.repeat(64), model }], 'cat');
  // Disposing this wrapper would free the shared network: the test disposes `net` itself.
  return m;
}

t.test('synthetic invariance', async (t) => {
  const start = memoryStats().liveBuffers;
  const whitening = identityWhitening(net.featureDim);
  const grid = transformGrid('h_flip', 2, 32, 32);
  const base = { model: net, whitening, files, grid, numImages: 6, seed: 0, batchSize: 6, mean: IMAGENET_MEAN, std: IMAGENET_STD };
  {
    const counter = countingDecoder();
    await rejectsAborted(t, evaluateSynthetic({ ...base, decode: counter.decode, signal: abortedSignal() }),
      /synthetic evaluation of h_flip stopped after 0 of 6 images/, 'evaluateSynthetic: aborted before the call');
    t.equal(counter.calls(), 0, 'nothing decoded');
  }
  {
    // batchSize 6, k = 2: two images per group; the first group's metrics are reported while the
    // second group's passes run, so the stop comes before the third.
    const c = new AbortController();
    let reports = 0;
    await rejectsAborted(t, evaluateSynthetic({ ...base, signal: c.signal, onProgress: () => { reports++; c.abort(); } }),
      /synthetic evaluation of h_flip stopped after 4 of 6 images/, 'evaluateSynthetic: aborted at the first progress report');
    t.equal(reports, 1, 'one progress report');
    t.equal(await settledBuffers(start), start, 'every tensor freed');
  }
  {
    // runSyntheticTransforms: stopped after the first transform's results are written.
    const resultsDir = path.join(dir, 'results-synthetic');
    const listing = await listImageFolder(path.join(data, 'train'));
    const d = net.featureDim;
    const stats: FeatureStats = {
      key: 'k', inputs: {} as FeatureStats['inputs'], count: 8, dim: d, mean: new Float64Array(d), cov: new Float64Array(d * d), file: 'stats', cached: true,
    };
    const ctx = { model: namedModel(), listing, stats, whitening };
    const c = new AbortController();
    const written: string[] = [];
    const o = {
      data, dataset: 'tiny', split: 'train', model: 'random', transforms: ['h_flip', 'v_flip'] as const, k: 2, batchSize: 6, numImages: 4,
      resize: 32, crop: 32, ckptDir: dir, resultsDir, fuseMode: 'cat' as const, featureLayer: 'backbone', seed: 0, device: 'cpu',
      precision: 'fp32', sink: quietSink(), signal: c.signal,
      onResult: (_r: unknown, f: { json: string; csv: string }) => { written.push(path.basename(f.json), path.basename(f.csv)); c.abort(); },
    };
    await rejectsAborted(t, runSyntheticTransforms(ctx, { ...o, transforms: [...o.transforms] }),
      /synthetic evaluation of random stopped after 1 of 2 transforms, before v_flip/, 'runSyntheticTransforms: aborted after the first transform');
    t.same(filesUnder(resultsDir), written.sort(), 'the first transform\'s results, whole; nothing of the second, no temp file');
    t.equal(await settledBuffers(start), start, 'every tensor freed');
    // The whole run, aborted before: not even the model is looked for (there is no checkpoint here).
    await rejectsAborted(t, runSyntheticEvaluation({ ...o, transforms: ['h_flip'], signal: abortedSignal() }),
      /the evaluation of random stopped before its model was loaded/, 'runSyntheticEvaluation: aborted before the call');
  }
});

t.test('feature statistics', async (t) => {
  const start = memoryStats().liveBuffers;
  const resultsDir = path.join(dir, 'results-stats');
  const listing = await listImageFolder(path.join(data, 'train'));
  const c = new AbortController();
  await rejectsAborted(t, loadOrComputeStats({
    model: net, modelName: 'random', models: [{ name: 'random', sha256: '0'.repeat(64) }], fuseMode: 'cat', featureLayer: 'backbone',
    dataset: 'tiny', split: 'train', listing, transform, batchSize: 2, resultsDir, signal: c.signal, onProgress: () => c.abort(),
  }), /feature extraction stopped after 2 of 8 images/, 'aborted after the first batch');
  t.same(filesUnder(resultsDir), [], 'no statistics file, no temp file');
  t.equal(await settledBuffers(start), start, 'the accumulator and batches are freed');
});

t.test('real-world invariance', async (t) => {
  const start = memoryStats().liveBuffers;
  const whitening = identityWhitening(net.featureDim);
  const groups = [{ name: 'a', files: files.slice(0, 3) }, { name: 'b', files: files.slice(3, 6) }, { name: 'c', files: files.slice(6) }];
  const c = new AbortController();
  let reports = 0;
  await rejectsAborted(t, evaluateRealWorld({ model: net, whitening, groups, transform, batchSize: 2, signal: c.signal, onProgress: () => { reports++; c.abort(); } }),
    /real-world evaluation stopped after 1 of 3 groups/, 'evaluateRealWorld: aborted after the first group');
  t.equal(reports, 1);
  t.equal(await settledBuffers(start), start, 'every tensor freed');
  const resultsDir = path.join(dir, 'results-realworld');
  const stats = { key: 'k', inputs: {}, count: 8, dim: net.featureDim, mean: new Float64Array(0), cov: new Float64Array(0), file: 's', cached: true } as unknown as FeatureStats;
  await rejectsAborted(t, runRealWorld({
    model: namedModel(), modelName: 'random', stats, whitening, dataset: 'tiny', dataRoot: data, groups, resize: 32, crop: 32, batchSize: 2,
    featureLayer: 'backbone', fuseMode: 'cat', resultsDir, device: 'cpu', precision: 'fp32', sink: quietSink(), signal: abortedSignal(),
  }), /real-world evaluation of random on tiny stopped before it started/, 'runRealWorld: aborted before the call');
  t.same(filesUnder(resultsDir), [], 'nothing written');
});

t.test('probe searches', async (t) => {
  const start = memoryStats().liveBuffers;
  const { X, y, n, d } = makeClassification(3, 60, 5, 3);
  const x = { data: X, rows: n, cols: d };
  const Cs = [0.1, 1, 10];
  for (const warmStart of ['chain', 'none'] as const) {
    const c = new AbortController();
    let reports = 0;
    t.throws(() => classificationProbe(x, y, x, y, { Cs, folds: 3, warmStart, batchBytes: 1, signal: c.signal, onProgress: () => { reports++; c.abort(); } }),
      { code: 'ERR_ABORTED', message: /the logistic regression search stopped after 1 of 10 fits/ }, `classification (${warmStart}): aborted after the first fit`);
    t.equal(reports, 1, `${warmStart}: one fit reported`);
    t.equal(memoryStats().liveBuffers, start, `${warmStart}: the fold tensors are freed`);
  }
  {
    // Not an abort, the same path: an error inside the chain (a training fold of one class) frees the
    // fold tensors too (they used to stay until garbage collection).
    const oneClass = Int32Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 0));
    t.throws(() => classificationProbe(x, oneClass, x, oneClass, { Cs: [1], folds: 5 }), { code: 'ERR_INVALID_ARGUMENT' }, 'a one-class fold');
    t.equal(memoryStats().liveBuffers, start, 'the fold tensors are freed after an error too');
  }
  t.throws(() => classificationProbe(x, y, x, y, { Cs, folds: 3, signal: abortedSignal() }),
    { code: 'ERR_ABORTED', message: /after 0 of 10 fits/ }, 'classification: aborted before the call');
  {
    // The refit is a unit too: stopped after the last CV fit.
    const c = new AbortController();
    t.throws(() => classificationProbe(x, y, x, y, { Cs, folds: 3, signal: c.signal, onProgress: (e) => { if (e.done === 9) c.abort(); } }),
      { code: 'ERR_ABORTED', message: /after 9 of 10 fits/ }, 'classification: aborted before the refit');
    t.equal(memoryStats().liveBuffers, start, 'refit: nothing left');
  }
  const yr = Float64Array.from(y, (v, i) => v + 0.01 * i);
  {
    const c = new AbortController();
    t.throws(() => regressionProbe(x, yr, x, yr, { Cs, folds: 3, signal: c.signal, onProgress: () => c.abort() }),
      { code: 'ERR_ABORTED', message: /the ridge search stopped after 1 of 4 fits/ }, 'ridge: aborted after the first fold');
    t.throws(() => regressionProbe(x, yr, x, yr, { Cs, folds: 3, signal: abortedSignal() }), { code: 'ERR_ABORTED', message: /after 0 of 4 fits/ },
      'ridge: aborted before the call');
    const c2 = new AbortController();
    t.throws(() => regressionProbe(x, yr, x, yr, { Cs, folds: 3, signal: c2.signal, onProgress: (e) => { if (e.done === 3) c2.abort(); } }),
      { code: 'ERR_ABORTED', message: /after 3 of 4 fits/ }, 'ridge: aborted before the refit');
    t.equal(memoryStats().liveBuffers, start, 'ridge: nothing left');
  }
  {
    const c = new AbortController();
    t.throws(() => kernelRidgeProbe(x, yr, x, yr, { alphas: [1, 0.1], gammas: [0.1, 1], folds: 3, signal: c.signal, onProgress: () => c.abort() }),
      { code: 'ERR_ABORTED', message: /the kernel ridge search stopped after 1 of 16 solves/ }, 'kernel ridge: aborted after the first solve');
    t.throws(() => kernelRidgeProbe(x, yr, x, yr, { folds: 3, signal: abortedSignal() }), { code: 'ERR_ABORTED', message: /after 0 of \d+ solves/ },
      'kernel ridge: aborted before the call');
    t.equal(memoryStats().liveBuffers, start, 'kernel ridge: the grid\'s tensors are freed');
  }
});

t.test('downstream and Causal3DIdent runs', async (t) => {
  const start = memoryStats().liveBuffers;
  const samples = files.map((f, i) => ({ path: f, target: i % 2 }));
  const dataset: DownstreamDataset<Sample> = {
    name: 'tiny', root: data, task: 'classification', numClasses: 2, metric: 'accuracy',
    splits: { trainval: { samples, source: 'test' }, test: { samples: samples.slice(0, 4), source: 'test' } },
  };
  const base = { model: namedModel(), modelName: 'random', dataset, transform, batchSize: 2, folds: 2, seed: 0, quick: false };
  {
    const counter = countingDecoder();
    await rejectsAborted(t, runDownstream({ ...base, sink: quietSink(), decode: counter.decode, signal: abortedSignal() }),
      /the downstream evaluation of random on tiny stopped before it started/, 'runDownstream: aborted before the call');
    await rejectsAborted(t, runCausal3DIdent({ ...base, sink: quietSink(), decode: counter.decode, signal: abortedSignal() }),
      /the Causal3DIdent evaluation stopped before it started/, 'runCausal3DIdent: aborted before the call');
    t.equal(counter.calls(), 0, 'nothing decoded');
  }
  {
    const c = new AbortController();
    await rejectsAborted(t, runDownstream({ ...base, sink: quietSink(() => c.abort()), signal: c.signal }),
      /feature extraction stopped after 2 of 8 samples/, 'runDownstream: aborted after the first feature batch');
    t.equal(await settledBuffers(start), start, 'every tensor freed');
  }
  {
    // Aborted at the end of the trainval features: the test split's first images are not even decoded.
    const c = new AbortController();
    const counter = countingDecoder();
    await rejectsAborted(t, runDownstream({ ...base, decode: counter.decode, signal: c.signal, sink: quietSink((label, done) => {
      if (label === 'trainval features' && done === 8) c.abort();
    }) }), /feature extraction stopped after 0 of 4 samples/, 'runDownstream: aborted between the splits');
    t.equal(counter.calls(), 8, 'the trainval images only');
  }
  {
    const c = new AbortController();
    const sink = quietSink((label) => { if (label === 'logistic regression search') c.abort(); });
    await rejectsAborted(t, runDownstream({ ...base, sink, signal: c.signal }),
      /the logistic regression search stopped after 1 of \d+ fits/, 'runDownstream: aborted after the probe\'s first fit');
    t.equal(await settledBuffers(start), start, 'every tensor freed');
  }
});

t.test('runPretraining', async (t) => {
  const options = (outDir: string, signal: AbortSignal): PretrainOptions => ({
    data, split: 'train', model: 'default', arch: 'resnet18', epochs: 2, startEpoch: 0, batchSize: 4, lr: 0.03, schedule: [], cos: false,
    momentum: 0.9, weightDecay: 1e-4, mocoDim: 16, mocoK: 16, mocoM: 0.999, mocoT: 0.2, mlp: true, seed: 1, imageSize: 32, outDir, workers: 2, signal,
  });
  const start = memoryStats().liveBuffers;
  {
    const outDir = path.join(dir, 'pretrain-before');
    await rejectsAborted(t, runPretraining({ ...options(outDir, abortedSignal()), data: path.join(dir, 'nonexistent') }),
      /pretraining stopped before it started/, 'aborted before the call (the data is not even listed)');
    t.notOk(fs.existsSync(outDir), 'no output folder made');
  }
  {
    // Aborted while the model is made (here from the notice that no checkpoint was found to resume).
    const outDir = path.join(dir, 'pretrain-setup');
    const c = new AbortController();
    await rejectsAborted(t, runPretraining({ ...options(outDir, c.signal), resume: 'latest' }, { notice: () => c.abort() }),
      /pretraining stopped before its first step/, 'aborted while setting up');
    t.notOk(fs.existsSync(outDir), 'no output folder made');
    t.equal(await settledBuffers(start), start, 'the model and optimizer are freed');
  }
  {
    // 8 images, batch 4: two steps an epoch. Stopped after step 0: the epoch is dropped, nothing written.
    const outDir = path.join(dir, 'pretrain-step');
    const c = new AbortController();
    const steps: string[] = [];
    await rejectsAborted(t, runPretraining(options(outDir, c.signal), { onStep: (s) => { steps.push(`${s.epoch}.${s.step}`); c.abort(); } }),
      /pretraining stopped at epoch 0, step 1 of 2; this run wrote no checkpoint/, 'aborted after the first step');
    t.same(steps, ['0.0'], 'one step ran');
    t.same(filesUnder(outDir), [], 'no checkpoint, no temp file');
    t.equal(await settledBuffers(start), start, 'the model, optimizer and views are freed');
  }
  {
    // Stopped during an epoch's last step: that epoch's checkpoint is written whole, then the run stops.
    const outDir = path.join(dir, 'pretrain-epoch');
    const c = new AbortController();
    const ends: number[] = [];
    await rejectsAborted(t, runPretraining(options(outDir, c.signal), {
      onStep: (s) => { if (s.step === s.steps - 1) c.abort(); },
      onEpochEnd: (r) => ends.push(r.epoch),
    }), /pretraining stopped at epoch 1, step 0 of 2; the last checkpoint is .*default_0000\.pth\.tar \(aborted/, 'aborted in the last step of epoch 0');
    t.same(ends, [0], 'epoch 0 ended');
    t.same(filesUnder(outDir), ['default_0000.pth.tar'], 'its checkpoint only, no temp file');
    const ck = await loadMocoCheckpoint(path.join(outDir, 'default_0000.pth.tar'));
    t.equal(ck.epoch, 1, 'the checkpoint is whole and records one epoch done');
    t.equal(await settledBuffers(start), start, 'the model, optimizer and views are freed');
  }
});
