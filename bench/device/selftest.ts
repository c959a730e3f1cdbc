/**
 * `ssl-inv selftest` for the device run (bench/device/run.sh), which carries build-bench/ but not
 * lib/: runSelfTest on --device against the CPU, a line per check, the report as JSON (--out).
 *   node build-bench/bench/device/selftest.js [--device cuda:0] [--out FILE]
 * Exit status 1 when a check disagrees.
 */
import * as fs from 'node:fs';
import { runSelfTest } from '../../src/selftest';

const argv = process.argv.slice(2);
const arg = (n: string) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };

async function main(): Promise<void> {
  const report = await runSelfTest(arg('--device') ?? 'cuda:0', (c) =>
    process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name} (${c.error.toExponential(2)}, limit ${c.limit}; ${c.ms} ms)\n`));
  process.stdout.write(`${report.device} (${report.card}, compute capability ${report.computeCapability}): ${report.passed} of ${report.checks.length} checks agree with the CPU\n`);
  const out = arg('--out');
  if (out) fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), ...report }, null, 2)}\n`);
  process.exitCode = report.failed > 0 ? 1 : 0;
}

main().catch((e) => { console.error(e); process.exit(1); });
