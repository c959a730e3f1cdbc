/**
 * What decoding in memory-capped processes (DecodePool, --decode-workers N) costs against decoding in
 * this process, in images per second, for ImageNet-sized JPEGs (500 x 375, the mean ImageNet size is
 * about 400 x 350) and for larger ones (1600 x 1200).
 *
 *   npm run bench:decode-pool [-- --images N --reps R --out FILE]
 *
 * Each repetition times, back to back and in a rotating order so that the machine's drift does not
 * favour one: decodeImageFile in this process with 4 x CPUs in flight (the loader's default), and
 * through a pool of 1, 2 and #CPUs workers (4 in flight each) started and warmed beforehand. The
 * median of the repetitions is reported, with the ratio to in-process. Writes the JSON to --out
 * (default bench/results/<date>-decode-pool-<cpu>.json).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImageFile, DecodeOptions } from '../src/data/decode';
import { DecodePool } from '../src/data/decode-pool';
import { packageRoot } from '../src/native';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

async function makeImages(dir: string, n: number, w: number, h: number): Promise<string[]> {
  const src = path.join(packageRoot, 'test', 'fixtures', 'images', 'inputs', 'flower_500x375_444.jpg');
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = path.join(dir, `${w}x${h}-${i}.jpg`);
    await sharp(src).resize(w, h, { fit: 'fill' }).modulate({ brightness: 1 + (i % 7) / 20 }).jpeg({ quality: 85 + (i % 10) }).toFile(f);
    files.push(f);
  }
  return files;
}

async function timeDecodes(files: string[], inFlight: number, opts: DecodeOptions): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < files.length) await decodeImageFile(files[next++]!, opts);
  }));
  return files.length / ((performance.now() - t0) / 1000);
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;

async function main(): Promise<void> {
  const n = Number(arg('images', '300'));
  const reps = Number(arg('reps', '5'));
  const cpus = os.availableParallelism();
  const cpu = os.cpus()[0]?.model ?? '?';
  const tag = /xeon/i.test(cpu) ? 'xeon' : /epyc/i.test(cpu) ? 'amd-epyc' : 'cpu';
  const out = arg('out', path.join(packageRoot, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-decode-pool-${tag}-${cpus}core.json`));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-bench-pool-'));
  const inFlight = Math.max(4, Math.min(32, 4 * cpus));
  const workerCounts = [...new Set([1, 2, cpus])];
  console.log(`# ${cpus} CPUs (${cpu}), node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}; ` +
    `${n} JPEGs per size, ${inFlight} decodes in flight, median of ${reps}`);
  const results: Record<string, unknown>[] = [];
  try {
    for (const [w, h] of [[500, 375], [1600, 1200]] as const) {
      const files = await makeImages(dir, w > 1000 ? Math.max(20, n >> 3) : n, w, h);
      const pools = workerCounts.map((workers) => new DecodePool({ workers, inFlightPerWorker: 4 }));
      try {
        const modes: { name: string; opts: DecodeOptions }[] = [
          { name: 'in-process', opts: {} },
          ...pools.map((p, i) => ({ name: `pool ${workerCounts[i]} worker(s)`, opts: { decoder: p } })),
        ];
        for (const m of modes) await timeDecodes(files.slice(0, 16), inFlight, m.opts);  // start and warm
        const rates = modes.map(() => [] as number[]);
        for (let r = 0; r < reps; r++) {
          for (let k = 0; k < modes.length; k++) {
            const j = (k + r) % modes.length;
            rates[j]!.push(await timeDecodes(files, inFlight, modes[j]!.opts));
          }
        }
        const base = median(rates[0]!);
        console.log(`\n${w}x${h} (${files.length} files)`);
        modes.forEach((m, j) => {
          const med = median(rates[j]!);
          console.log(`  ${m.name.padEnd(20)} ${med.toFixed(0).padStart(6)} img/s   ${(med / base).toFixed(2)}x`);
          results.push({ size: `${w}x${h}`, mode: m.name, imagesPerSecond: med, ratioToInProcess: med / base, runs: rates[j] });
        });
      } finally {
        await Promise.all(pools.map((p) => p.close()));
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: { cpus, cpu, node: process.version }, inFlight, reps, results }, null, 1)}\n`);
  console.log(`\n-> ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
