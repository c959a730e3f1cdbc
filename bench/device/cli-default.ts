/**
 * The CLI with its default device, on the GPU machine: `--device` defaults to auto (cuda:0 when a
 * GPU is usable), so this checks what a user who types no --device gets there.
 *
 *   node build-bench/bench/device/cli-default.js [--out FILE] [--work DIR] [--no-demo]
 *
 * 1. `ssl-inv info --json` names cuda:0 as the default device.
 * 2. `ssl-inv eval-synthetic` on a generated set (ResNet-18, torchvision's initialisation, 518
 *    images, 64 px) for rotation, hue, blur and h_flip: once with no --device, once with
 *    --device cpu. The run without --device must announce cuda:0 on stderr, and every row's distance
 *    and similarity must match the CPU's within 1e-4 relative (fp32 whole-network tolerance) or 1e-6
 *    absolute (for values near zero, like the 0-degree view's distance).
 * 3. `ssl-inv demo` with no flags but --out-dir (the README's main command): on a GPU its defaults are
 *    ResNet-50 and 192 objects. It must exit 0 and write its report; its wall time is recorded.
 * Prints "ok"/"not ok" lines and a summary; writes the details as JSON; exits 1 on any failure.
 * On a machine without a GPU it checks that auto picks the CPU and says so (dry run).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cudaAvailable } from '../../src/device';
import { writeSceneSet } from '../../src/demo/scenes';
import { torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { CliResult, runCli } from '../../test/helpers/cli';

const argv = process.argv.slice(2);
const arg = (n: string) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
const work = arg('--work') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-cli-default-'));
const outFile = arg('--out');
const failures: string[] = [];
const report: Record<string, unknown> = { date: new Date().toISOString(), gpu: cudaAvailable() };

function record(ok: boolean, what: string): void {
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${what}\n`);
  if (!ok) failures.push(what);
}

/** runCli (test/helpers/cli.ts: the CLI in this process, output captured) with its wall time. */
async function cli(args: string[]): Promise<CliResult & { seconds: number }> {
  const t0 = process.hrtime.bigint();
  const r = await runCli(args);
  return { ...r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

interface Row { param: number; distance: number; similarity: number }

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= Math.max(1e-6, 1e-4 * Math.max(Math.abs(a), Math.abs(b)));
}

async function evalSynthetic(): Promise<void> {
  const ckptDir = path.join(work, 'models'), data = path.join(work, 'data');
  fs.mkdirSync(ckptDir, { recursive: true });
  await torchSave(path.join(ckptDir, 'net.pth.tar'), torchvisionInitStateDict('resnet18', 4));
  await writeSceneSet(path.join(data, 'val'), { objects: 37, viewsPerObject: 14, width: 96, height: 72, seed: 2 });
  const rows: Record<string, unknown>[] = [];
  for (const transform of ['rotation', 'hue', 'blur', 'h_flip']) {
    const common = ['eval-synthetic', data, '--model', 'net', '--transform', transform, '--num-images', '4',
      '--batch-size', '64', '--resize', '64', '--crop-size', '56', '--ckpt-dir', ckptDir, ...(transform === 'h_flip' ? [] : ['--k', '8'])];
    const auto = await cli([...common, '--results-dir', path.join(work, 'auto')]);
    const cpu = await cli([...common, '--results-dir', path.join(work, 'cpu'), '--device', 'cpu', '--quiet']);
    record(auto.code === 0 && cpu.code === 0, `eval-synthetic ${transform}: both runs exit 0 (${auto.code}, ${cpu.code})${auto.code ? ` ${auto.stderr.slice(-300)}` : ''}`);
    if (auto.code !== 0 || cpu.code !== 0) continue;
    const announced = /device (cuda:\d+) \(/.exec(auto.stderr)?.[1] ?? 'cpu';
    record(announced === (cudaAvailable() ? 'cuda:0' : 'cpu'), `eval-synthetic ${transform}: no --device ran on ${announced}`);
    const file = `net_backbone_imagenet_${transform}_invariance.json`;
    const a = JSON.parse(fs.readFileSync(path.join(work, 'auto', file), 'utf8')) as { rows: Row[]; device: string };
    const c = JSON.parse(fs.readFileSync(path.join(work, 'cpu', file), 'utf8')) as { rows: Row[]; device: string };
    let worst = 0, ok = a.rows.length === c.rows.length;
    a.rows.forEach((r, i) => {
      const q = c.rows[i]!;
      ok &&= r.param === q.param && close(r.distance, q.distance) && close(r.similarity, q.similarity);
      worst = Math.max(worst, Math.abs(r.distance - q.distance) / Math.max(1e-6, Math.abs(q.distance)), Math.abs(r.similarity - q.similarity));
    });
    record(ok, `eval-synthetic ${transform}: ${a.rows.length} rows on ${a.device} vs ${c.device}, worst difference ${worst.toExponential(2)}`);
    rows.push({ transform, device: a.device, rows: a.rows.length, worst, seconds: auto.seconds, cpuSeconds: cpu.seconds });
  }
  report.evalSynthetic = rows;
}

async function demo(): Promise<void> {
  const out = path.join(work, 'demo');
  const r = await cli(['demo', '--out-dir', out]);
  const report_ = path.join(out, 'results', 'report.html');
  record(r.code === 0 && fs.existsSync(report_), `demo with its defaults: exit ${r.code}, report ${fs.existsSync(report_) ? 'written' : 'missing'} in ${r.seconds.toFixed(1)} s${r.code ? ` ${r.stderr.slice(-300)}` : ''}`);
  const model = /model random \((\w+)/.exec(r.stdout)?.[1];
  record(model === (cudaAvailable() ? 'resnet50' : 'resnet18'), `demo's default network here: ${model}`);
  report.demo = { code: r.code, seconds: r.seconds, model, stdout: r.stdout };
}

async function run(): Promise<void> {
  delete process.env.SSL_INV_DEVICE;  // the check is about the built-in default
  const info = await cli(['info', '--json']);
  const dflt = (JSON.parse(info.stdout || '{}') as { defaultDevice?: string }).defaultDevice;
  record(dflt === (cudaAvailable() ? 'cuda:0' : 'cpu'), `info: default device ${dflt}`);
  report.defaultDevice = dflt;
  await evalSynthetic();
  if (!argv.includes('--no-demo')) await demo();
  report.failures = failures;
  if (outFile) fs.writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`# cli-default: ${failures.length} failures\n`);
  process.exitCode = failures.length ? 1 : 0;
}

run().catch((e: unknown) => {
  process.stderr.write(`cli-default: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
