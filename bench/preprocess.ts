/**
 * Benchmark of the evaluation input pipeline on the fixture photos: decode (sharp) + Resize(256) +
 * CenterCrop(224) + ToTensor + Normalize, in images per second.
 *
 *   npx ts-node --transpile-only bench/preprocess.ts [--images N] [--batch B]
 *
 * (with SSL_INV_ADDON=/path/to/ssl_inv.node to use another build). Reports, for the JPEG photos of
 * test/fixtures/images/inputs repeated to N files: the decode and the native preprocessing alone
 * (one image at a time, on the main thread), then loadBatches with concurrency 1 and with the
 * default concurrency.
 */
import { packageRoot } from '../src/native';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeImageFile, DecodedImage } from '../src/data/decode';
import { defaultConcurrency, loadBatches } from '../src/data/loader';
import { imagenetEvalTransform, preprocess } from '../src/data/preprocess';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const n = arg('images', 240);
  const batchSize = arg('batch', 32);
  const dir = path.join(packageRoot, 'test', 'fixtures', 'images', 'inputs');
  // The RGB photos (not the tiny or special-case files), largest first.
  const photos = fs.readdirSync(dir).filter((f) => f.endsWith('.jpg') && !/cmyk|100x80|gray/.test(f))
    .map((f) => path.join(dir, f));
  const files = Array.from({ length: n }, (_, i) => photos[i % photos.length]);
  const t = imagenetEvalTransform();
  const sizes = await Promise.all(photos.map(async (p) => {
    const d = await decodeImageFile(p);
    return `${d.width}x${d.height}`;
  }));
  console.log(`# ${n} files cycling over ${photos.length} JPEG photos (${sizes.join(', ')}); ` +
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), node ${process.version}`);

  // Stage timings, sequential on the main thread.
  const decoded: DecodedImage[] = [];
  let t0 = performance.now();
  for (const f of files.slice(0, Math.min(n, 60))) decoded.push(await decodeImageFile(f));
  const decodeMs = (performance.now() - t0) / decoded.length;
  t0 = performance.now();
  for (const d of decoded) preprocess(d, t);
  const prepMs = (performance.now() - t0) / decoded.length;
  const rate = (ms: number) => `${ms.toFixed(2)} ms/image  (${(1000 / ms).toFixed(0)} images/s)`;
  console.log(`decode (sharp, one at a time):          ${rate(decodeMs)}`);
  console.log(`resize+crop+normalise (native, sync):   ${rate(prepMs)}`);

  for (const concurrency of [1, defaultConcurrency()]) {
    // Warm-up, then the timed run.
    for await (const b of loadBatches(files.slice(0, batchSize), t, { batchSize, concurrency })) b.batch.dispose();
    t0 = performance.now();
    let count = 0;
    for await (const b of loadBatches(files, t, { batchSize, concurrency })) {
      count += b.index.length;
      b.batch.dispose();
    }
    const s = (performance.now() - t0) / 1000;
    console.log(`loadBatches concurrency ${String(concurrency).padStart(2)}, batch ${batchSize}:  ` +
      `${(count / s).toFixed(0)} images/s (${count} images in ${s.toFixed(2)} s)`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
