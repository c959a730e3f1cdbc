/**
 * What the ResNet throughput benchmarks (cpu.ts: inference, train.ts: training steps) share: the
 * command-line lookup, random weights (speed does not depend on their values), the median, the
 * machine's description, the PyTorch child process (Debian's python3-torch, with the same thread
 * count; its column says why when it cannot run) and the printed table.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { native } from '../src/native';
import { Arch, allConvBns, resnetSpec } from '../src/nn/resnet-spec';

export interface Workload { name: string; arch: Arch; size: number; batch: number }

/** The value after `name` on the command line. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Kaiming-scaled uniform conv weights, identity batch norms (an LCG: the same numbers every run). */
export function randomResNetParams(arch: Arch): Map<string, Float32Array> {
  let s = 12345;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
  const m = new Map<string, Float32Array>();
  for (const cb of allConvBns(resnetSpec(arch))) {
    const fan = cb.inChannels * cb.kernel * cb.kernel;
    m.set(`${cb.conv}.weight`, Float32Array.from({ length: cb.outChannels * fan }, () => next() * Math.sqrt(12 / fan)));
    m.set(`${cb.bn}.weight`, new Float32Array(cb.outChannels).fill(1));
    m.set(`${cb.bn}.bias`, new Float32Array(cb.outChannels));
    m.set(`${cb.bn}.running_mean`, new Float32Array(cb.outChannels));
    m.set(`${cb.bn}.running_var`, new Float32Array(cb.outChannels).fill(1));
  }
  return m;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** CPU model, cores, memory, our GEMM kernel and the thread count. */
export function machineDescription(threads: number): string {
  return `${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.cpus().length} cores, ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; kernel ${native().info().gemmKernel}; ${threads} threads`;
}

/**
 * Runs a PyTorch script (`python3 -c script w.arch w.size w.batch reps threads`) whose last stdout
 * line is JSON {rate, torch} or {error}.
 */
export function runTorch(script: string, w: Workload, reps: number, threads: number): { rate?: number; version?: string; error?: string } {
  const py = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = spawnSync(py, ['-c', script, w.arch, String(w.size), String(w.batch), String(reps), String(threads)],
    { encoding: 'utf8', timeout: 900_000 });
  if (r.error) return { error: `python3 not runnable: ${r.error.message}` };
  try {
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { rate?: number; torch?: string; error?: string };
    if (out.error) return { error: out.error };
    return { rate: out.rate!, version: out.torch! };
  } catch {
    return { error: `PyTorch run failed: ${r.stderr.slice(-300)}` };
  }
}

/** Left-aligned columns, two spaces apart. */
export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return `${line(head)}\n${rows.map(line).join('\n')}\n`;
}
