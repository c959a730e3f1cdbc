/**
 * `ssl-inv selftest [--device cuda|cuda:N] [--json FILE]`: a CUDA device against the CPU backend
 * (src/selftest.ts), one line per check on stdout (its error as a fraction of its tolerance), then
 * a summary; with --json the report as a file too. Exit status 1 with ERR_SELFTEST_FAILED when any
 * check fails, so scripts can gate a run on it; ERR_DEVICE_UNAVAILABLE where no CUDA device is usable.
 */
import { Command, Option } from 'commander';
import { cudaInfo } from '../device';
import { SslInvError } from '../errors';
import { writeFileAtomic } from '../io/atomic-write';
import { runSelfTest, SelfTestCheck } from '../selftest';
import { packageVersion } from './info';
import { DEVICE_DEFAULT, parseDevice } from './common';

function line(c: SelfTestCheck): string {
  const frac = c.limit > 0 ? `${(c.error / c.limit).toFixed(3)} of limit` : c.ok ? 'exact' : 'differs';
  return `${c.ok ? 'ok  ' : 'FAIL'}  ${frac.padEnd(16)}  ${c.name} (${c.error.toExponential(2)}, limit ${c.limit}; ${c.ms} ms)\n`;
}

export function selftestCommand(): Command {
  return new Command('selftest')
    .description('check a CUDA device against the CPU backend (convolutions in every precision, the training ops, pooling, batch norm, GEMM, covariance, the MoCo loss, a ResNet-18)')
    .addOption(new Option('--device <device>', 'cuda, cuda:N or auto (the GPU --device auto picks)').default(DEVICE_DEFAULT))
    .option('--json <file>', 'also write the report as JSON')
    .action(async (opts: { device: string; json?: string }) => {
      const device = parseDevice(opts.device);
      if (device === 'cpu') {
        const info = cudaInfo();
        const why = info.devices.some((d) => d.usable) ? `--device ${opts.device} is the CPU` : info.reason;
        throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `no CUDA device to test (${why}): the self-test compares a CUDA device with the CPU`,
          { field: 'device' });
      }
      const report = await runSelfTest(device, (c) => process.stdout.write(line(c)));
      process.stdout.write(`${report.device} (${report.card}, compute capability ${report.computeCapability}): ` +
        `${report.passed} of ${report.checks.length} checks agree with the CPU\n`);
      if (opts.json) {
        await writeFileAtomic(opts.json, Buffer.from(`${JSON.stringify({ tool: 'ssl-invariances', version: packageVersion(), date: new Date().toISOString(), ...report }, null, 2)}\n`));
      }
      if (report.failed > 0) {
        throw new SslInvError('ERR_SELFTEST_FAILED', `${report.failed} check(s) on ${report.device} disagree with the CPU: ` +
          report.checks.filter((c) => !c.ok).map((c) => c.name).slice(0, 5).join('; '), { field: 'device' });
      }
    });
}
