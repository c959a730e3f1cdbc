/**
 * Benchmark of pre-training's view making: MoCo v2's two augmented views of each image of a batch,
 * serially on the main thread (augment(), as pretrain did) and on libuv's thread pool
 * (drawAugmentParams on the main thread, then applyAugmentAsync for all views at once, as pretrain
 * does now), in views per second, for each augmentation set.
 *
 *   npm run bench:augment -- [--batch B] [--size S] [--rounds R]
 *
 * The images are the JPEG photos of test/fixtures/images/inputs, decoded once and cycled to B. The
 * pool has UV_THREADPOOL_SIZE threads (4 unless set; ssl-inv sets it to the core count).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeImageFile } from '../src/data/decode';
import type { ImageU8 } from '../src/image-ops';
import { packageRoot } from '../src/native';
import { empty } from '../src/tensor';
import { AUGMENT_SETS, AugmentRng, applyAugmentAsync, augment, drawAugmentParams } from '../src/transforms/augment';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const batch = arg('batch', 64), size = arg('size', 224), rounds = arg('rounds', 3);
  const dir = path.join(packageRoot, 'test', 'fixtures', 'images', 'inputs');
  const photos = fs.readdirSync(dir).filter((f) => f.endsWith('.jpg') && !/cmyk|100x80|gray/.test(f));
  const decoded: ImageU8[] = [];
  for (const f of photos) decoded.push(await decodeImageFile(path.join(dir, f)));
  const images = Array.from({ length: batch }, (_, i) => decoded[i % decoded.length]!);
  console.log(`# batch ${batch} (2 views each, ${size}x${size}) cycling over ${decoded.length} photos ` +
    `(${decoded.map((d) => `${d.width}x${d.height}`).join(', ')}); ${os.cpus().length} CPUs, ` +
    `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '(unset: 4)'}, node ${process.version}`);
  const rng = (r: number, b: number, v: number) => new AugmentRng(r * 1_000_003 + b * 2 + v);
  const per = 3 * size * size;
  for (const set of AUGMENT_SETS) {
    let serial = 0, parallel = 0;
    for (let r = 0; r < rounds + 1; r++) {  // round 0 warms up
      let t0 = performance.now();
      const q = new Float32Array(batch * per), k = new Float32Array(batch * per);
      images.forEach((img, b) => {
        q.set(augment(img, set, rng(r, b, 0), size), b * per);
        k.set(augment(img, set, rng(r, b, 1), size), b * per);
      });
      if (r > 0) serial += performance.now() - t0;
      t0 = performance.now();
      const tq = empty('float32', [batch, 3, size, size]), tk = empty('float32', [batch, 3, size, size]);
      const params = images.map((img, b) => [0, 1].map((v) => drawAugmentParams(img.width, img.height, set, rng(r, b, v), size)));
      await Promise.all(images.flatMap((img, b) => [applyAugmentAsync(img, params[b]![0]!, { tensor: tq, slot: b }),
        applyAugmentAsync(img, params[b]![1]!, { tensor: tk, slot: b })]));
      if (r > 0) parallel += performance.now() - t0;
      tq.dispose();
      tk.dispose();
    }
    const views = 2 * batch * rounds;
    const rate = (ms: number) => `${(views / (ms / 1000)).toFixed(0).padStart(5)} views/s (${(ms / views).toFixed(2)} ms/view)`;
    console.log(`${set.padEnd(8)} serial augment(): ${rate(serial)}   async: ${rate(parallel)}   ` +
      `x${(serial / parallel).toFixed(2)}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
