/**
 * The demo: the package's main job on an embedded default, with nothing to download.
 *
 * 1. Builds a deterministic image set (src/demo/scenes.ts): `objects` textured objects, each seen in
 *    `views` poses and lightings, as an ImageFolder tree.
 * 2. Builds a seeded random ResNet (src/demo/random-resnet.ts).
 * 3. Extracts features of every image through the original's evaluation preprocessing
 *    (Resize, CenterCrop, ImageNet normalisation), as `ssl-inv features --data` does.
 * 4. Measures how consistent each object's features are across its views: the mean cosine
 *    similarity of all pairs of its views, after centring the features on their mean over the set
 *    (raw ReLU features all point into the positive orthant, so uncentred cosines are all near 1;
 *    the original's invariance measures centre and whiten for the same reason), against pairs of
 *    views of different objects.
 * Writes features.npy, labels.npy and summary.json into the output folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listImageFolder } from '../data/image-folder';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { featuresOfFiles } from '../eval/features';
import { writeFileAtomic } from '../io/atomic-write';
import { writeNpy } from '../io/npy';
import { ResNetFeatures } from '../nn/resnet';
import { Arch } from '../nn/resnet-spec';
import { randomResNetSource } from './random-resnet';
import { writeSceneSet } from './scenes';

export interface DemoOptions {
  outDir: string;
  arch: Arch;
  objects: number;
  views: number;
  imageSize: [number, number];
  resize: number;
  crop: number;
  batchSize: number;
  seed: number;
  onProgress?: (done: number, total: number) => void;
}

export interface DemoSummary {
  images: number;
  objects: number;
  featureDim: number;
  arch: Arch;
  seed: number;
  sameObjectCosine: number;
  differentObjectCosine: number;
  perObject: { object: string; cosine: number }[];
  seconds: { images: number; features: number };
  files: { features: string; labels: string; summary: string; images: string };
}

/** Rows of f [n, d] centred on their mean row and scaled to unit length, in float64. */
function centredUnitRows(f: Float32Array, d: number): Float64Array {
  const n = f.length / d;
  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j]! += f[r * d + j]! / n;
  const out = new Float64Array(f.length);
  for (let r = 0; r < n; r++) {
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = f[r * d + j]! - mean[j]!;
      out[r * d + j] = v;
      norm += v * v;
    }
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < d; j++) out[r * d + j]! *= inv;
  }
  return out;
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const imagesDir = path.join(o.outDir, 'images');
  fs.mkdirSync(o.outDir, { recursive: true });
  const t0 = Date.now();
  await writeSceneSet(imagesDir, { objects: o.objects, viewsPerObject: o.views, width: o.imageSize[0], height: o.imageSize[1], seed: o.seed });
  const t1 = Date.now();
  const listing = await listImageFolder(imagesDir);
  const net = await ResNetFeatures.load(o.arch, randomResNetSource(o.arch, o.seed));
  const d = net.featureDim;
  const n = listing.samples.length;
  const features = new Float32Array(n * d);
  try {
    const transform = { resize: o.resize, crop: o.crop, mean: IMAGENET_MEAN, std: IMAGENET_STD };
    let done = 0;
    for await (const c of featuresOfFiles(net, listing.samples.map((s) => s.path), transform, { batchSize: o.batchSize })) {
      c.index.forEach((row, i) => features.set(c.features.subarray(i * d, (i + 1) * d), row * d));
      done += c.rows;
      o.onProgress?.(done, n);
    }
  } finally {
    net.dispose();
  }
  const t2 = Date.now();

  const z = centredUnitRows(features, d);
  const labels = listing.samples.map((s) => s.classIndex);
  const cos = (a: number, b: number) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += z[a * d + j]! * z[b * d + j]!;
    return s;
  };
  let same = 0, sameN = 0, diff = 0, diffN = 0;
  const perObject = listing.classes.map((name) => ({ object: name, sum: 0, count: 0 }));
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      const c = cos(a, b);
      if (labels[a] === labels[b]) {
        same += c; sameN++;
        perObject[labels[a]!]!.sum += c;
        perObject[labels[a]!]!.count++;
      } else {
        diff += c; diffN++;
      }
    }
  }
  const files = {
    features: path.join(o.outDir, 'features.npy'),
    labels: path.join(o.outDir, 'labels.npy'),
    summary: path.join(o.outDir, 'summary.json'),
    images: imagesDir,
  };
  await writeNpy(files.features, { dtype: 'float32', shape: [n, d], data: features });
  await writeNpy(files.labels, { dtype: 'int64', shape: [n], data: BigInt64Array.from(labels, (l) => BigInt(l)) });
  const summary: DemoSummary = {
    images: n,
    objects: listing.classes.length,
    featureDim: d,
    arch: o.arch,
    seed: o.seed,
    sameObjectCosine: same / Math.max(1, sameN),
    differentObjectCosine: diff / Math.max(1, diffN),
    perObject: perObject.map((p) => ({ object: p.object, cosine: p.sum / Math.max(1, p.count) })),
    seconds: { images: (t1 - t0) / 1000, features: (t2 - t1) / 1000 },
    files,
  };
  await writeFileAtomic(files.summary, Buffer.from(`${JSON.stringify(summary, null, 2)}\n`));
  return summary;
}
