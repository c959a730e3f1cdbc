/**
 * `npm run bench`: CPU inference throughput, ours beside PyTorch's in the same run on the same machine.
 *
 *   ResNet-50, 224x224, batch 8      ResNet-18, 32x32, batch 64
 *
 * Weights are random (speed does not depend on their values). PyTorch runs in a child process with
 * the same thread count (Debian's python3-torch, if installed; otherwise its column says so).
 * Ours and PyTorch's alternate in rounds (--rounds, default 3; each round times --reps passes of
 * each and keeps their median), so that a shared or throttled machine's drift falls on both sides:
 * this VM's speed moves by up to 1.8x between runs minutes apart. The ratio is the median of the
 * rounds' ratios, reported with their range.
 * Prints a table and writes bench/out/cpu-<date>.json with the machine's description.
 * Options: --threads N, --reps N, --rounds N, --only resnet50|resnet18, --out FILE.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../src/native';
import { ResNetFeatures } from '../src/nn/resnet';
import { setNumThreads } from '../src/ops';
import { tensor } from '../src/tensor';
import { Workload, arg, formatTable, machineDescription, median, randomResNetParams, runTorch } from './resnet-bench-common';

const WORKLOADS: Workload[] = [
  { name: 'resnet50-224-b8', arch: 'resnet50', size: 224, batch: 8 },
  { name: 'resnet18-32-b64', arch: 'resnet18', size: 32, batch: 64 },
];

/** Our network for a workload, loaded and warmed up once; rate() times `reps` passes (median img/s). */
async function ours(w: Workload): Promise<{ rate: (reps: number) => Promise<number>; dispose: () => void }> {
  const weights = randomResNetParams(w.arch);
  const net = await ResNetFeatures.load(w.arch, (k) => weights.get(k)!);
  const x = tensor(Float32Array.from({ length: w.batch * 3 * w.size * w.size }, (_, i) => Math.sin(i)), [w.batch, 3, w.size, w.size]);
  net.forward(x).dispose(); // warm-up: packs, caches, page faults
  return {
    rate: async (reps) => {
      const rates: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        net.forward(x).dispose();
        rates.push(w.batch / (Number(process.hrtime.bigint() - t0) / 1e9));
        await new Promise(setImmediate);
      }
      return median(rates);
    },
    dispose: () => {
      net.dispose();
      x.dispose();
    },
  };
}

const TORCH_SCRIPT = `
import json, sys, time
try:
    import torch, torchvision
except Exception as e:
    print(json.dumps({"error": "PyTorch not importable: %s" % e})); sys.exit(0)
arch, size, batch, reps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
m = getattr(torchvision.models, arch)().eval()
m.fc = torch.nn.Identity()
x = torch.randn(batch, 3, size, size)
rates = []
with torch.no_grad():
    m(x)
    for _ in range(reps):
        t = time.perf_counter(); m(x); rates.append(batch / (time.perf_counter() - t))
rates.sort()
print(json.dumps({"rate": rates[len(rates) // 2], "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "mkldnn": torch.backends.mkldnn.is_available()}))
`;

async function main(): Promise<void> {
  const info = native().info();
  const threads = Number(arg('--threads') ?? info.threads);
  const reps = Number(arg('--reps') ?? 5);
  const rounds = Number(arg('--rounds') ?? 3);
  const only = arg('--only');
  setNumThreads(threads);
  const machine = machineDescription(threads);
  process.stderr.write(`machine: ${machine}\n`);
  const results = [];
  for (const w of WORKLOADS.filter((x) => !only || x.arch === only)) {
    const net = await ours(w);
    const mine: number[] = [], theirs: number[] = [], ratios: number[] = [];
    let version: string | null = null, error: string | null = null;
    for (let round = 1; round <= rounds; round++) {
      process.stderr.write(`${w.name}: round ${round} of ${rounds}: ours...\n`);
      mine.push(await net.rate(reps));
      process.stderr.write(`${w.name}: round ${round} of ${rounds}: PyTorch...\n`);
      const t = runTorch(TORCH_SCRIPT, w, reps, threads);
      if (t.rate === undefined) {
        error = t.error ?? 'no rate';
        break;
      }
      version = t.version ?? null;
      theirs.push(t.rate);
      ratios.push(mine[mine.length - 1]! / t.rate);
    }
    net.dispose();
    results.push({ workload: w.name, arch: w.arch, size: w.size, batch: w.batch, oursImgPerSec: median(mine),
      pytorchImgPerSec: theirs.length ? median(theirs) : null, pytorchVersion: version, pytorchError: error,
      ratio: ratios.length ? median(ratios) : null, rounds: { ours: mine, pytorch: theirs, ratios } });
  }
  const range = (v: number[]) => v.length > 1 ? ` (${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)})` : '';
  const rows = results.map((r) => [r.workload, r.oursImgPerSec.toFixed(1),
    r.pytorchImgPerSec ? r.pytorchImgPerSec.toFixed(1) : `n/a (${r.pytorchError})`, r.ratio ? `${r.ratio.toFixed(2)}x${range(r.rounds.ratios)}` : '-']);
  process.stdout.write(formatTable(['workload (img/s)', 'ours', 'pytorch', `ratio (${rounds} rounds: range)`], rows));
  const out = arg('--out') ?? path.join('bench', 'out', `cpu-${new Date().toISOString().slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, node: process.version, results }, null, 2)}\n`);
  process.stderr.write(`wrote ${out}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
