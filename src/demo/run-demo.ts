/**
 * The demo: the whole invariance study on an embedded default, with nothing to download.
 *
 * 1. Builds a deterministic image set (scenes.ts): `objects` textured objects, each seen in `views`
 *    poses and lightings, as an ImageFolder tree at {outDir}/data/val (enough images for the
 *    covariance: more than the 512 feature dimensions of ResNet-18).
 * 2. Creates the `random` model in {outDir}/models: a freshly initialised torchvision ResNet-18
 *    (numpy seed 0), saved in torch.save's format, as the original creates random.pth.tar.
 * 3. Runs the synthetic invariance evaluation of all 18 transforms (one statistics pass, one model
 *    load; smaller view grids than the original's 256 so it runs in minutes on 2 CPU cores, except
 *    deform, whose grid is fixed), then a real-world-style evaluation whose groups are the objects
 *    and their views, exactly as eval-realworld treats COIL-100's objects.
 * 4. Writes the results (JSON/CSV) and the HTML report into {outDir}/results.
 */
import * as path from 'node:path';
import { resolveDevice } from '../device';
import { writeReport } from '../report/html';
import { defaultK, SYNTHETIC_TRANSFORMS, SyntheticTransform } from '../transforms/grid';
import { ensureRandomCheckpoint } from '../eval/models';
import { runRealWorld } from '../eval/realworld-run';
import { InvarianceResult } from '../eval/results';
import { prepareContext, ProgressSink, runSyntheticTransforms } from '../eval/synthetic-run';
import { Arch } from '../nn/resnet-spec';
import { writeSceneSet } from './scenes';

export interface DemoOptions {
  outDir: string;
  arch: Arch;
  objects: number;
  views: number;
  imageSize: [number, number];
  resize: number;
  crop: number;
  numImages: number;
  /** Views per transform for the 256-view transforms of the original (translation/shear: a square; resized_crop: a 4th power). */
  k: number;
  batchSize: number;
  seed: number;
  /** Where the network (and the views) run: 'cpu', 'cuda:N' or 'auto' (the default: see defaultDevice). */
  device?: string;
  sink: ProgressSink;
}

export interface DemoSummary {
  images: number;
  objects: number;
  arch: Arch;
  synthetic: InvarianceResult[];
  realworld: InvarianceResult;
  report: string;
  seconds: { images: number; evaluation: number };
}

/** The demo's grid size for a transform: the on/off ones, posterize and deform keep the original's. */
export function demoK(t: SyntheticTransform, k: number): number {
  const d = defaultK(t);
  if (d !== 256 || t === 'deform') return d;
  if (t === 'translation' || t === 'shear') return Math.max(1, Math.floor(Math.sqrt(k))) ** 2;
  if (t === 'resized_crop') return Math.max(1, Math.floor(Math.sqrt(Math.sqrt(k)))) ** 4;
  return k;
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  // Resolved once, before any work: a missing device fails here rather than after the images are written.
  const device = resolveDevice(o.device ?? 'auto');
  const dataDir = path.join(o.outDir, 'data');
  const ckptDir = path.join(o.outDir, 'models');
  const resultsDir = path.join(o.outDir, 'results');
  const t0 = Date.now();
  const set = await writeSceneSet(path.join(dataDir, 'val'),
    { objects: o.objects, viewsPerObject: o.views, width: o.imageSize[0], height: o.imageSize[1], seed: o.seed });
  const t1 = Date.now();
  await ensureRandomCheckpoint(ckptDir, (m) => o.sink.notice(m), o.arch);
  const common = {
    data: dataDir, dataset: 'demo', split: 'val', model: 'random', batchSize: o.batchSize, resize: o.resize, crop: o.crop,
    ckptDir, resultsDir, fuseMode: 'cat' as const, featureLayer: 'backbone', device, precision: 'fp32', sink: o.sink,
  };
  const ctx = await prepareContext(common);
  try {
    const synthetic = await runSyntheticTransforms(ctx, {
      ...common, transforms: [...SYNTHETIC_TRANSFORMS], kFor: (t) => demoK(t, o.k), numImages: o.numImages, seed: 0,
    });
    const groups = set.classes.map((name, i) => ({ name, files: set.files.slice(i * o.views, (i + 1) * o.views) }));
    const { result: realworld } = await runRealWorld({
      model: ctx.model, modelName: 'random', stats: ctx.stats, whitening: ctx.whitening, dataset: 'demo-objects',
      dataRoot: path.join(dataDir, 'val'), groups, resize: o.resize, crop: o.crop, batchSize: o.batchSize,
      featureLayer: 'backbone', fuseMode: 'cat', resultsDir, device, precision: 'fp32', sink: o.sink,
    });
    const report = await writeReport(resultsDir);
    return {
      images: set.files.length, objects: set.classes.length, arch: o.arch, synthetic, realworld, report: report.file,
      seconds: { images: (t1 - t0) / 1000, evaluation: (Date.now() - t1) / 1000 },
    };
  } finally {
    ctx.model.dispose();
  }
}
