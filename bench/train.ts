/**
 * `npm run bench:train`: CPU training-step throughput, ours beside PyTorch's in the same run.
 *
 *   ResNet-18, 32x32, batch 64      ResNet-50, 64x64, batch 16      (ANCHORS.md's CPU training rows)
 *
 * One step = train-mode forward of the backbone (fc removed), backward of loss = sum(features * G)
 * and a torch.optim.SGD step (lr 0.05, momentum 0.9, weight decay 1e-4), on both sides; the same work,
 * so the ratio compares the kernels. Weights are random (speed does not depend on their values).
 *
 * Then whole MoCo v2 steps (`moco-*` rows: ResNet-50 with the MLP head, dim 128, K 65,536, T 0.2, one
 * GPU's worth of main_moco.py's step): MocoV2.step beside builder.py's forward in PyTorch (query
 * forward and backward, momentum update, key forward under no_grad, the loss, SGD, the enqueue).
 * PyTorch runs in a child process with the same thread count (Debian's python3-torch). Prints a table
 * and writes bench/out/train-<date>.json with the machine's description.
 * Options: --threads N, --reps N, --only resnet18|resnet50|moco, --out FILE.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../src/native';
import { TrainableResNet } from '../src/nn/resnet-train';
import { setNumThreads } from '../src/ops';
import { SGD } from '../src/optim/sgd';
import { tensor } from '../src/tensor';
import { MocoV2 } from '../src/train/moco';
import { freshMocoInit } from '../src/train/moco-init';
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

const MOCO_WORKLOADS: Workload[] = [{ name: 'moco-resnet50-64-b16', arch: 'resnet50', size: 64, batch: 16 }];
const MOCO = { dim: 128, K: 65536, m: 0.999, T: 0.2 };

/** Images per second of whole MoCo v2 steps. */
async function oursMoco(w: Workload, reps: number): Promise<number> {
  const moco = await MocoV2.create({ arch: w.arch, mlp: true, ...MOCO }, freshMocoInit(w.arch, MOCO.dim, MOCO.K, true, 0));
  const sgd = new SGD({ lr: 0.03, momentum: 0.9, weightDecay: 1e-4 });
  const n = w.batch * 3 * w.size * w.size;
  const imQ = tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i)), [w.batch, 3, w.size, w.size]);
  const imK = tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i + 0.5)), [w.batch, 3, w.size, w.size]);
  const rates: number[] = [];
  for (let r = -1; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    moco.step(imQ, imK, sgd);
    const rate = w.batch / (Number(process.hrtime.bigint() - t0) / 1e9);
    if (r >= 0) rates.push(rate);
    process.stderr.write(`  step ${r + 2}/${reps + 1}: ${rate.toFixed(1)} img/s\n`);
    await new Promise(setImmediate);
  }
  moco.dispose();
  sgd.dispose();
  imQ.dispose();
  imK.dispose();
  return median(rates);
}

const TORCH_MOCO_SCRIPT = `
import copy, json, sys, time
try:
    import torch, torchvision
    import torch.nn as nn, torch.nn.functional as F
except Exception as e:
    print(json.dumps({"error": "PyTorch not importable: %s" % e})); sys.exit(0)
arch, size, batch, reps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
DIM, K, M, T = ${MOCO.dim}, ${MOCO.K}, ${MOCO.m}, ${MOCO.T}
torch.set_num_threads(threads)
q_enc = getattr(torchvision.models, arch)(num_classes=DIM)
q_enc.fc = nn.Sequential(nn.Linear(q_enc.fc.weight.shape[1], q_enc.fc.weight.shape[1]), nn.ReLU(), q_enc.fc)
k_enc = copy.deepcopy(q_enc)
for p in k_enc.parameters(): p.requires_grad = False
queue = F.normalize(torch.randn(DIM, K), dim=0)
ptr = 0
opt = torch.optim.SGD(q_enc.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
im_q, im_k = torch.randn(batch, 3, size, size), torch.randn(batch, 3, size, size)
rates = []
for r in range(reps + 1):
    t = time.perf_counter()
    q = F.normalize(q_enc(im_q), dim=1)
    with torch.no_grad():
        for pq, pk in zip(q_enc.parameters(), k_enc.parameters()):
            pk.data = pk.data * M + pq.data * (1. - M)
        k = F.normalize(k_enc(im_k), dim=1)
    l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
    l_neg = torch.einsum('nc,ck->nk', [q, queue.clone().detach()])
    logits = torch.cat([l_pos, l_neg], dim=1) / T
    loss = F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long))
    queue[:, ptr:ptr + batch] = k.T
    ptr = (ptr + batch) % K
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if r > 0: rates.append(batch / (time.perf_counter() - t))
rates.sort()
print(json.dumps({"rate": rates[len(rates) // 2], "torch": torch.__version__, "threads": torch.get_num_threads()}))
`;

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
  const results: {
    workload: string; arch: string; size: number; batch: number; oursImgPerSec: number;
    oursPhaseMs: { forward: number; backward: number; update: number } | null;
    pytorchImgPerSec: number | null; pytorchVersion: string | null; pytorchError: string | null; ratio: number | null;
  }[] = [];
  for (const w of WORKLOADS.filter((x) => !only || (only !== 'moco' && x.arch === only))) {
    process.stderr.write(`${w.name}: ours...\n`);
    const mine = await ours(w, reps);
    process.stderr.write(`${w.name}: PyTorch...\n`);
    const theirs = runTorch(TORCH_SCRIPT, w, reps, threads);
    results.push({ workload: w.name, arch: w.arch, size: w.size, batch: w.batch, oursImgPerSec: mine.rate,
      oursPhaseMs: { forward: mine.forward, backward: mine.backward, update: mine.update },
      pytorchImgPerSec: theirs.rate ?? null, pytorchVersion: theirs.version ?? null, pytorchError: theirs.error ?? null,
      ratio: theirs.rate ? mine.rate / theirs.rate : null });
  }
  for (const w of MOCO_WORKLOADS.filter(() => !only || only === 'moco')) {
    process.stderr.write(`${w.name}: ours...\n`);
    const mine = await oursMoco(w, reps);
    process.stderr.write(`${w.name}: PyTorch...\n`);
    const theirs = runTorch(TORCH_MOCO_SCRIPT, w, reps, threads);
    results.push({ workload: w.name, arch: w.arch, size: w.size, batch: w.batch, oursImgPerSec: mine, oursPhaseMs: null,
      pytorchImgPerSec: theirs.rate ?? null, pytorchVersion: theirs.version ?? null, pytorchError: theirs.error ?? null,
      ratio: theirs.rate ? mine / theirs.rate : null });
  }
  const rows = results.map((r) => [r.workload, r.oursImgPerSec.toFixed(1),
    r.oursPhaseMs ? `${r.oursPhaseMs.forward.toFixed(0)} / ${r.oursPhaseMs.backward.toFixed(0)} / ${r.oursPhaseMs.update.toFixed(0)}` : '-',
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
