/**
 * `ssl-inv info`: version, compiled backends, devices, whether the CUDA convolutions tune 'auto' at
 * run time, CPU kernel and threads, as a short table (or JSON with --json).
 * `ssl-inv info FILE`: what a checkpoint is (io/checkpoint-info.ts), the same way.
 */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convAutotune, cudaInfo, defaultDevice } from '../device';
import { native, packageRoot } from '../native';
import { describeCheckpoint } from '../io/checkpoint-info';

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** What --device auto picks here, or why SSL_INV_DEVICE cannot be used (info itself never fails on it). */
function describeDefaultDevice(): string {
  try {
    return defaultDevice();
  } catch (e) {
    return `none: ${(e as Error).message}`;
  }
}

export function collectInfo(): Record<string, unknown> {
  const n = native().info();
  const cuda = cudaInfo();
  return {
    version: packageVersion(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    backends: n.cudaCompiled ? ['cpu', 'cuda'] : ['cpu'],
    devices: ['cpu', ...cuda.devices.map((d) => `cuda:${d.index} (${d.name}, sm_${d.computeCapability.replace('.', '')}, ` +
      `${(d.totalMemory / 2 ** 30).toFixed(0)} GiB${d.usable ? '' : ', not usable by this build'})`)],
    ...(cuda.compiled ? { cudaArchitectures: cuda.architectures, cudaRuntime: cuda.runtimeVersion, cudaDriver: cuda.driverVersion || 'none' } : {}),
    ...(cuda.compiled && !cuda.devices.some((d) => d.usable) ? { cuda: `no usable device: ${cuda.reason}` } : {}),
    defaultDevice: describeDefaultDevice(),
    ...(cuda.compiled ? { convTuning: convAutotune() ? "on: 'auto' convolutions run the fastest kernel with the default's bits (SSL_INV_CONV_AUTOTUNE=0 turns it off)" : 'off: the default kernels (SSL_INV_CONV_AUTOTUNE)' } : {}),
    cpuKernel: n.gemmKernel,
    cpuIsa: n.isa,
    threads: n.threads,
  };
}

export function infoCommand(): Command {
  return new Command('info')
    .description('show the version, the backends compiled in, the devices found and the CPU threads; with a checkpoint, what it holds')
    .argument('[checkpoint]', 'a checkpoint to describe: container, trunk and architecture, MoCo parts, run settings, finiteness')
    .option('--json', 'print JSON instead of a table')
    .action(async (checkpoint: string | undefined, opts: { json?: boolean }) => {
      const info: Record<string, unknown> = checkpoint === undefined ? collectInfo() : { ...(await describeCheckpoint(checkpoint)) };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
        return;
      }
      const width = Math.max(...Object.keys(info).map((k) => k.length));
      const show = (v: unknown): string => Array.isArray(v) ? v.join(', ')
        : v !== null && typeof v === 'object' ? Object.entries(v).map(([a, b]) => `${a} ${String(b)}`).join(', ') : String(v);
      for (const [k, v] of Object.entries(info)) process.stdout.write(`${k.padEnd(width)}  ${show(v)}\n`);
    });
}
