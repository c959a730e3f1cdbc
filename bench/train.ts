/**
 * `npm run bench:train`: CPU training-step throughput, ours beside PyTorch's in the same run.
 *
 *   ResNet-18, 32x32, batch 64      ResNet-50, 64x64, batch 16      (ANCHORS.md's CPU training rows)
 *
 * One step = train-mode forward of the backbone (fc removed), backward of loss = sum(features * G)
 * and a torch.optim.SGD step (lr 0.05, momentum 0.9, weight decay 1e-4), on both sides; the same work,
 * so the ratio compares the kernels. Weights are random (speed does not depend on their values).
 * PyTorch runs in a child process with the same thread count (Debian's python3-torch). Prints a table
 * and writes bench/out/train-<date>.json with the machine's description.
 * Options: --threads N, --reps N, --only resnet18|resnet50, --out FILE.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../src/native';
import { TrainableResNet } from '../src/nn/resnet-train';
import { setNumThreads } from '../src/ops';
import { SGD } from '../src/optim/sgd';
import { tensor } from '../src/tensor';
import { Workload, arg, formatTable, machineDescription, median, randomResNetParams, runTorch } from './resnet-bench-common';

const WORKLOADS: Workload[] = [
  { name: 'resnet18-32-b64', arch: 'resnet18', size: 32, batch: 64 },
  { name: 'resnet50-64-b16', arch: 'resnet50', size: 64, batch: 16 },
];

/** Images per second of whole steps, and the median share of each phase. */
async function ours(w: Workload, reps: number): Promise<{ rate: number; forward: number; backward: number; update: number }> {
  const params = randomResNetParams(w.arch);
  const net = await TrainableResNet.load(w.arch, (k) => params.get(k)!);
  const sgd = new SGD({ lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  const x = tensor(Float32Array.from({ length: w.batch * 3 * w.size * w.size }, (_, i) => Math.sin(i)), [w.batch, 3, w.size, w.size]);
  const g = tensor(Float32Array.from({ length: w.batch * net.featureDim }, (_, i) => Math.cos(i)), [w.batch, net.featureDim]);
  const phases = { forward: [] as number[], backward: [] as number[], update: [] as number[] };
  const rates: number[] = [];
  for (let r = -1; r < reps; r++) { // r = -1: warm-up (allocator, page faults)
    const t0 = process.hrtime.bigint();
    const { features, tape } = net.forwardTrain(x);
    features.dispose();
    const t1 = process.hrtime.bigint();
    const { grads } = net.backward(tape, g);
    const t2 = process.hrtime.bigint();
    net.step(sgd, grads);
    for (const v of grads.values()) v.dispose();
    const t3 = process.hrtime.bigint();
    if (r >= 0) {
      rates.push(w.batch / (Number(t3 - t0) / 1e9));
      phases.forward.push(Number(t1 - t0) / 1e6);
      phases.backward.push(Number(t2 - t1) / 1e6);
      phases.update.push(Number(t3 - t2) / 1e6);
    }
    process.stderr.write(`  step ${r + 2}/${reps + 1}: ${(w.batch / (Number(t3 - t0) / 1e9)).toFixed(1)} img/s\n`);
    await new Promise(setImmediate);
  }
  net.dispose();
  sgd.dispose();
  x.dispose();
  g.dispose();
  return { rate: median(rates), forward: median(phases.forward), backward: median(phases.backward), update: median(phases.update) };
}

const TORCH_SCRIPT = `
import json, sys, time
try:
    import torch, torchvision
except Exception as e:
    print(json.dumps({"error": "PyTorch not importable: %s" % e})); sys.exit(0)
arch, size, batch, reps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
m = getattr(torchvision.models, arch)().train()
m.fc = torch.nn.Identity()
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
x = torch.randn(batch, 3, size, size)
g = torch.randn(batch, 512 if arch == "resnet18" else 2048)
rates = []
for r in range(reps + 1):
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    (m(x) * g).sum().backward()
    opt.step()
    if r > 0: rates.append(batch / (time.perf_counter() - t))
rates.sort()
print(json.dumps({"rate": rates[len(rates) // 2], "torch": torch.__version__, "threads": torch.get_num_threads()}))
`;

async function main(): Promise<void> {
  const info = native().info();
  const threads = Number(arg('--threads') ?? info.threads);
  const reps = Number(arg('--reps') ?? 5);
  const only = arg('--only');
  setNumThreads(threads);
  const machine = machineDescription(threads);
  process.stderr.write(`machine: ${machine}\n`);
  const results = [];
  for (const w of WORKLOADS.filter((x) => !only || x.arch === only)) {
    process.stderr.write(`${w.name}: ours...\n`);
    const mine = await ours(w, reps);
    process.stderr.write(`${w.name}: PyTorch...\n`);
    const theirs = runTorch(TORCH_SCRIPT, w, reps, threads);
    results.push({ workload: w.name, arch: w.arch, size: w.size, batch: w.batch, oursImgPerSec: mine.rate,
      oursPhaseMs: { forward: mine.forward, backward: mine.backward, update: mine.update },
      pytorchImgPerSec: theirs.rate ?? null, pytorchVersion: theirs.version ?? null, pytorchError: theirs.error ?? null,
      ratio: theirs.rate ? mine.rate / theirs.rate : null });
  }
  const rows = results.map((r) => [r.workload, r.oursImgPerSec.toFixed(1),
    `${r.oursPhaseMs.forward.toFixed(0)} / ${r.oursPhaseMs.backward.toFixed(0)} / ${r.oursPhaseMs.update.toFixed(0)}`,
    r.pytorchImgPerSec ? r.pytorchImgPerSec.toFixed(1) : `n/a (${r.pytorchError})`, r.ratio ? `${r.ratio.toFixed(2)}x` : '-']);
  process.stdout.write(formatTable(['training step (img/s)', 'ours', 'ours fwd / bwd / sgd ms', 'pytorch', 'ratio'], rows));
  const out = arg('--out') ?? path.join('bench', 'out', `train-${new Date().toISOString().slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, node: process.version, results }, null, 2)}\n`);
  process.stderr.write(`wrote ${out}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
