/**
 * The MoCo v2 loss, forward and backward, on the CPU: ops.mocoLoss (fused, one pass over the queue,
 * the logits never materialised) beside PyTorch's builder.py arithmetic (einsum logits, cat, / T,
 * cross_entropy, backward to q) in the same run, with the same thread count.
 *
 *   npx tsc -p tsconfig.bench.json && node build-bench/bench/moco-loss.js [--threads N] [--reps 10] [--out FILE]
 *
 * Sizes: dim 128, K 65,536 (main_moco.py's defaults) at N = 256 (issue 3's reference size, one
 * 256-image batch) and N = 16 (one GPU's share of a batch of 128 on 8 GPUs, and the training
 * benchmark's batch). Prints a table and writes bench/out/moco-loss-<date>.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { native } from '../src/native';
import * as ops from '../src/ops';
import { tensor } from '../src/tensor';
import { arg, formatTable, machineDescription, median } from './resnet-bench-common';

const SIZES = [{ n: 256, d: 128, K: 65536 }, { n: 16, d: 128, K: 65536 }];
const T = 0.2;

function ours(n: number, d: number, K: number, reps: number): number {
  const q = tensor(Float32Array.from({ length: n * d }, (_, i) => Math.sin(i) * 0.1), [n, d]);
  const k = tensor(Float32Array.from({ length: n * d }, (_, i) => Math.cos(i) * 0.1), [n, d]);
  const queue = tensor(Float32Array.from({ length: d * K }, (_, i) => Math.sin(i * 0.7) * 0.1), [d, K]);
  const ms: number[] = [];
  for (let r = -1; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    const o = ops.mocoLoss(q, k, queue, T);
    if (r >= 0) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    o.loss.dispose();
    o.dq.dispose();
  }
  for (const x of [q, k, queue]) x.dispose();
  return median(ms);
}

const TORCH = `
import json, sys, time
try:
    import torch, torch.nn.functional as F
except Exception as e:
    print(json.dumps({"error": "PyTorch not importable: %s" % e})); sys.exit(0)
n, d, K, reps, threads, T = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
torch.set_num_threads(threads)
q = (torch.randn(n, d) * 0.1).requires_grad_()
k, queue = torch.randn(n, d) * 0.1, torch.randn(d, K) * 0.1
labels = torch.zeros(n, dtype=torch.long)
ms = []
for r in range(reps + 1):
    t = time.perf_counter()
    l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
    l_neg = torch.einsum('nc,ck->nk', [q, queue])
    loss = F.cross_entropy(torch.cat([l_pos, l_neg], dim=1) / T, labels)
    loss.backward()
    q.grad = None
    if r > 0: ms.append((time.perf_counter() - t) * 1e3)
ms.sort()
print(json.dumps({"ms": ms[len(ms) // 2], "torch": torch.__version__}))
`;

function torch(n: number, d: number, K: number, reps: number, threads: number): { ms?: number; version?: string; error?: string } {
  const py = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = spawnSync(py, ['-c', TORCH, String(n), String(d), String(K), String(reps), String(threads), String(T)], { encoding: 'utf8', timeout: 600_000 });
  if (r.error) return { error: `python3 not runnable: ${r.error.message}` };
  try {
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { ms?: number; torch?: string; error?: string };
    return out.error ? { error: out.error } : { ms: out.ms!, version: out.torch! };
  } catch {
    return { error: `PyTorch run failed: ${r.stderr.slice(-300)}` };
  }
}

function main(): void {
  const threads = Number(arg('--threads') ?? native().info().threads);
  const reps = Number(arg('--reps') ?? 10);
  ops.setNumThreads(threads);
  const machine = machineDescription(threads);
  process.stderr.write(`machine: ${machine}\n`);
  const results = SIZES.map(({ n, d, K }) => {
    process.stderr.write(`N=${n} dim=${d} K=${K}: ours, then PyTorch...\n`);
    const mine = ours(n, d, K, reps);
    const theirs = torch(n, d, K, reps, threads);
    return { n, dim: d, K, T, oursMs: mine, pytorchMs: theirs.ms ?? null, pytorchVersion: theirs.version ?? null,
      pytorchError: theirs.error ?? null, speedup: theirs.ms ? theirs.ms / mine : null };
  });
  process.stdout.write(formatTable(['MoCo loss fwd+bwd', 'ours ms', 'pytorch ms', 'speed-up'], results.map((r) => [
    `N ${r.n}, dim ${r.dim}, K ${r.K}`, r.oursMs.toFixed(1), r.pytorchMs ? r.pytorchMs.toFixed(1) : `n/a (${r.pytorchError})`,
    r.speedup ? `${r.speedup.toFixed(2)}x` : '-'])));
  const out = arg('--out') ?? path.join('bench', 'out', `moco-loss-${new Date().toISOString().slice(0, 10)}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, node: process.version, results }, null, 2)}\n`);
  process.stderr.write(`wrote ${out}\n`);
}

main();
