/**
 * Issue 5's speed check: the 18-transform synthetic-invariance suite for one ResNet-50 with the
 * original's k, ours on a device against the original's per-image pipeline run on the same machine in
 * the same run (bench/device/original_suite.py: PIL views in one thread, PyTorch fp32 forward of the k
 * views, scipy Mahalanobis per view). Target: the suite at least 30x faster than the original's.
 *
 *   node build-bench/bench/device/suite.js [--device cuda:0] [--images 16] [--py-images 1]
 *       [--size 400x300] [--out FILE] [--no-python]
 *       (dry run without a GPU: --device cpu --arch resnet18 --stats-objects 48 --k 4 --images 1 --no-python)
 *
 * Both sides evaluate the same generated photographs (the demo's textured scenes at --size): ours
 * --images of them per transform (sampled as the original samples, with replacement), the original's
 * the first --py-images. The feature statistics come from 2,304 small scenes (more images than
 * ResNet-50's 2,048 feature dimensions) and are not timed on either side (the original caches them
 * too). Times are per source image; the 1,000-image figures multiply them by 1,000.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSceneSet } from '../../src/demo/scenes';
import { synchronize } from '../../src/device';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess';
import { ensureRandomCheckpoint } from '../../src/eval/models';
import { prepareContext } from '../../src/eval/synthetic-run';
import { evaluateSynthetic } from '../../src/eval/synthetic';
import { defaultK, SYNTHETIC_TRANSFORMS, transformGrid } from '../../src/transforms/grid';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

interface PyRow { k: number; measured: boolean; reason?: string; views_s?: number; forward_s?: number; metrics_s?: number; total_s?: number }

async function main(): Promise<void> {
  const device = arg('--device', 'cuda:0')!;
  const nImages = Number(arg('--images', '16')), nPy = Number(arg('--py-images', '1'));
  const [width, height] = arg('--size', '400x300')!.split('x').map(Number) as [number, number];
  const arch = arg('--arch', 'resnet50') as 'resnet50' | 'resnet18', statsObjects = Number(arg('--stats-objects', '192'));
  const kCap = arg('--k') === undefined ? Infinity : Number(arg('--k'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-suite-'));
  const quiet = { start: () => ({ tick: () => undefined, done: () => undefined }), notice: (m: string) => process.stderr.write(`${m}\n`) };
  const report: Record<string, unknown> = { date: new Date().toISOString(), device, images: nImages, pyImages: nPy, size: [width, height] };
  try {
    const t0 = Date.now();
    await writeSceneSet(path.join(tmp, 'stats', 'val'), { objects: statsObjects, viewsPerObject: 12, width: 64, height: 48, seed: 5 });
    const photos = await writeSceneSet(path.join(tmp, 'photos', 'val'), { objects: nImages, viewsPerObject: 1, width, height, seed: 6 });
    const ckptDir = path.join(tmp, 'models');
    await ensureRandomCheckpoint(ckptDir, undefined, arch);
    process.stderr.write(`images written in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const ctx = await prepareContext({
      data: path.join(tmp, 'stats'), dataset: 'scenes', split: 'val', model: 'random', batchSize: 256, resize: 256, crop: 224, ckptDir,
      resultsDir: path.join(tmp, 'results'), fuseMode: 'cat', featureLayer: 'backbone', device, precision: 'fp32', sink: quiet,
    });
    const ours: Record<string, { k: number; seconds: number; perImage: number }> = {};
    try {
      for (const t of SYNTHETIC_TRANSFORMS) {
        // --k (dry runs only) caps k at a value every grid accepts (deform's and posterize's are fixed; square and n^4 grids round down)
        const capped = (k: number) => (t === 'deform' || t === 'posterize' || k <= kCap ? k : t === 'translation' || t === 'shear' ? Math.floor(Math.sqrt(kCap)) ** 2 : t === 'resized_crop' ? 1 : kCap);
        const grid = transformGrid(t, capped(defaultK(t)), 256, 224);
        const run = () => evaluateSynthetic({
          model: ctx.model, whitening: ctx.whitening, files: photos.files, grid, numImages: nImages, seed: 0, batchSize: 256,
          mean: IMAGENET_MEAN, std: IMAGENET_STD, device,
        });
        if (t === SYNTHETIC_TRANSFORMS[0]) await run();  // warm-up: first kernel launches, allocator
        synchronize(device);
        const s = process.hrtime.bigint();
        await run();
        synchronize(device);
        const seconds = Number(process.hrtime.bigint() - s) / 1e9;
        ours[t] = { k: grid.k, seconds, perImage: seconds / nImages };
        process.stderr.write(`ours ${t}: ${(seconds / nImages).toFixed(4)} s per image\n`);
      }
    } finally {
      ctx.model.dispose();
    }
    report.ours = ours;
    let py: Record<string, PyRow> | undefined;
    if (!process.argv.includes('--no-python')) {
      const out = path.join(tmp, 'original.json');
      const script = path.join(__dirname, '..', '..', '..', 'bench', 'device', 'original_suite.py');
      const r = spawnSync('python3', [script, out, ...photos.files.slice(0, nPy)], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
      if (r.status === 0) {
        const j = JSON.parse(fs.readFileSync(out, 'utf8'));
        py = j.transforms;
        report.original = j;
      } else {
        report.original = { error: (r.stderr || String(r.error)).slice(-2000) };
        process.stderr.write(`original_suite.py failed: ${(r.stderr || String(r.error)).slice(-800)}\n`);
      }
    }
    const lines = [`18-transform suite, ${arch} fp32, original k, ${width}x${height} photos: ours on ${device} (${nImages} images) vs the original's pipeline (${nPy} image${nPy === 1 ? '' : 's'})`,
      `${'transform'.padEnd(14)}${'k'.padStart(5)}${'ours s/img'.padStart(12)}${'orig s/img'.padStart(12)}${'views'.padStart(9)}${'forward'.padStart(9)}${'metrics'.padStart(9)}${'ratio'.padStart(9)}`];
    let oursBoth = 0, origBoth = 0;
    for (const t of SYNTHETIC_TRANSFORMS) {
      const o = ours[t]!, p = py?.[t];
      const measured = p?.measured === true;
      if (measured) { oursBoth += o.perImage; origBoth += p!.total_s!; }
      lines.push(`${t.padEnd(14)}${String(o.k).padStart(5)}${o.perImage.toFixed(4).padStart(12)}` +
        (measured ? `${p!.total_s!.toFixed(3).padStart(12)}${p!.views_s!.toFixed(3).padStart(9)}${p!.forward_s!.toFixed(3).padStart(9)}${p!.metrics_s!.toFixed(3).padStart(9)}${(p!.total_s! / o.perImage).toFixed(1).padStart(8)}x`
          : `${'-'.padStart(12)}   ${p ? `(not measured: ${p.reason})` : ''}`));
    }
    const oursAll = Object.values(ours).reduce((a, o) => a + o.perImage, 0);
    report.summary = { oursSecondsPerImage: oursAll, oursHoursFor1000: (oursAll * 1000) / 3600, comparedTransforms: py ? Object.values(py).filter((p) => p.measured).length : 0,
      oursSecondsPerImageCompared: oursBoth, originalSecondsPerImageCompared: origBoth, ratio: oursBoth > 0 && origBoth > 0 ? origBoth / oursBoth : null };
    lines.push(`all 18: ours ${oursAll.toFixed(3)} s per image, ${((oursAll * 1000) / 60).toFixed(1)} min for 1,000 images`);
    if (origBoth > 0) {
      lines.push(`the transforms both sides measured: ours ${oursBoth.toFixed(3)} s, the original ${origBoth.toFixed(2)} s per image: ${(origBoth / oursBoth).toFixed(1)}x (target 30x); ` +
        `1,000 images: ${((oursBoth * 1000) / 60).toFixed(1)} min against ${((origBoth * 1000) / 3600).toFixed(1)} h`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    const outFile = arg('--out');
    if (outFile) {
      fs.mkdirSync(path.dirname(outFile), { recursive: true });
      fs.writeFileSync(outFile, `${JSON.stringify(report, null, 1)}\n`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});
