// `ssl-inv probe` end to end on .npy files: the score line, the JSON result, and bad inputs.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { probeCommand } from '../../src/cli/probe';
import { reportError } from '../../src/cli/common';
import { cudaAvailable } from '../../src/device';
import { writeNpy } from '../../src/io/npy';
import { fixture, makeClassification, makeRegression } from './data';

async function runProbe(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [], err: string[] = [];
  const ow = process.stdout.write.bind(process.stdout), ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => { out.push(String(c)); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { err.push(String(c)); return true; }) as typeof process.stderr.write;
  try {
    const program = new Command('ssl-inv').exitOverride();
    program.addCommand(probeCommand().exitOverride());
    let code = 0;
    try {
      await program.parseAsync(['node', 'ssl-inv', 'probe', ...args]);
    } catch (e) {
      code = e instanceof CommanderError ? (e.exitCode === 0 ? 0 : 2) : reportError(e as Error);
    }
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-probe-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => path.join(dir, name);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const S = fixture<any>('searches.json');

t.test('classification: the original\'s search, score line and JSON', async (t) => {
  const c = S.logistic_chain_binary, { data } = c;
  const g = makeClassification(data.seed, data.n, data.d, data.K, data.sep, data.chain);
  const nt = data.nTrainval, d = data.d;
  await writeNpy(f('x.npy'), { dtype: 'float32', shape: [nt, d], data: Float32Array.from(g.X.slice(0, nt * d)) });
  await writeNpy(f('x64.npy'), { dtype: 'float64', shape: [nt, d], data: g.X.slice(0, nt * d) });
  await writeNpy(f('y.npy'), { dtype: 'int64', shape: [nt], data: BigInt64Array.from(g.y.slice(0, nt), (v) => BigInt(v)) });
  await writeNpy(f('xt.npy'), { dtype: 'float64', shape: [data.n - nt, d], data: g.X.slice(nt * d) });
  await writeNpy(f('yt.npy'), { dtype: 'int32', shape: [data.n - nt], data: g.y.slice(nt) });
  const r = await runProbe(['--mode', 'classification', '--features', f('x64.npy'), '--targets', f('y.npy'), '--test-features', f('xt.npy'),
    '--test-targets', f('yt.npy'), '--seed', String(c.cvSeed), '--model-name', c.modelName, '--out', f('r.json'), '--quiet']);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines[lines.length - 1], `score: ${c.test_score}`, 'the last line is the test score, as scikit-learn\'s');
  const json = JSON.parse(fs.readFileSync(f('r.json'), 'utf8'));
  t.equal(json.chosenC, c.best_C);
  t.equal(json.cvScores.length, 45);
  t.equal(json.seed, c.cvSeed);
  t.equal(json.warmStart, 'chain');
  t.ok(json.timings.totalSeconds > 0);
  // float32 features are widened (as scikit-learn converts them for lbfgs); a fixed C skips the search
  const r2 = await runProbe(['--mode', 'classification', '--features', f('x.npy'), '--targets', f('y.npy'), '--test-features', f('xt.npy'),
    '--test-targets', f('yt.npy'), '--C', '1', '--quiet']);
  t.equal(r2.code, 0, r2.stderr);
  t.match(r2.stdout, /score: 0\.\d+\n$/);
  // progress goes to stderr
  const r3 = await runProbe(['--mode', 'classification', '--features', f('x.npy'), '--targets', f('y.npy'), '--test-features', f('xt.npy'),
    '--test-targets', f('yt.npy'), '--C', '1']);
  t.match(r3.stderr, /probe: 1\/1 fits/);
});

t.test('regression and kernel ridge', async (t) => {
  const c = S.ridge_primal, { data } = c;
  const g = makeRegression(data.seed, data.n, data.d, data.T, data.noise, data.chain, data.quad);
  const nt = data.nTrainval, d = data.d, T = data.T;
  await writeNpy(f('rx.npy'), { dtype: 'float64', shape: [nt, d], data: g.X.slice(0, nt * d) });
  await writeNpy(f('ry.npy'), { dtype: 'float64', shape: [nt, T], data: g.Y.slice(0, nt * T) });
  await writeNpy(f('rxt.npy'), { dtype: 'float64', shape: [data.n - nt, d], data: g.X.slice(nt * d) });
  await writeNpy(f('ryt.npy'), { dtype: 'float64', shape: [data.n - nt, T], data: g.Y.slice(nt * T) });
  const r = await runProbe(['--mode', 'regression', '--features', f('rx.npy'), '--targets', f('ry.npy'), '--test-features', f('rxt.npy'),
    '--test-targets', f('ryt.npy'), '--out', f('rr.json'), '--quiet']);
  t.equal(r.code, 0, r.stderr);
  const score = Number(r.stdout.trim().split('\n').pop()!.replace('score: ', ''));
  t.ok(Math.abs(score - c.test_score) <= 1e-6, `R^2 ${score} vs ${c.test_score}`);
  t.equal(JSON.parse(fs.readFileSync(f('rr.json'), 'utf8')).chosenAlpha, c.best_C);

  const k = S.kernel_ridge, kd = k.data;
  const h = makeRegression(kd.seed, kd.n, kd.d, kd.T, kd.noise, kd.chain, kd.quad);
  await writeNpy(f('kx.npy'), { dtype: 'float64', shape: [kd.nTrainval, kd.d], data: h.X.slice(0, kd.nTrainval * kd.d) });
  await writeNpy(f('ky.npy'), { dtype: 'float64', shape: [kd.nTrainval], data: h.Y.slice(0, kd.nTrainval) });
  await writeNpy(f('kxt.npy'), { dtype: 'float64', shape: [kd.n - kd.nTrainval, kd.d], data: h.X.slice(kd.nTrainval * kd.d) });
  await writeNpy(f('kyt.npy'), { dtype: 'float64', shape: [kd.n - kd.nTrainval], data: h.Y.slice(kd.nTrainval) });
  const rk = await runProbe(['--mode', 'kernel-ridge', '--features', f('kx.npy'), '--targets', f('ky.npy'), '--test-features', f('kxt.npy'),
    '--test-targets', f('kyt.npy'), '--quiet']);
  t.equal(rk.code, 0, rk.stderr);
  const ks = Number(rk.stdout.trim().split('\n').pop()!.replace('score: ', ''));
  t.ok(Math.abs(ks - k.test_score) <= 1e-5, `kernel ridge R^2 ${ks} vs ${k.test_score}`);
});

t.test('bad inputs and flags', async (t) => {
  const base = ['--features', f('x.npy'), '--targets', f('y.npy'), '--test-features', f('xt.npy'), '--test-targets', f('yt.npy'), '--quiet'];
  let r = await runProbe(['--mode', 'classification', ...base.map((a) => (a === f('y.npy') ? f('ry.npy') : a))]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_DTYPE_MISMATCH|ERR_SHAPE_MISMATCH/, 'float targets for classification');
  r = await runProbe(['--mode', 'classification', ...base.map((a) => (a === f('xt.npy') ? f('rxt.npy') : a))]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_SHAPE_MISMATCH/, 'test features of another width');
  r = await runProbe(['--mode', 'classification', ...base.map((a) => (a === f('x.npy') ? f('missing.npy') : a))]);
  t.match(r.stderr, /ERR_FILE_NOT_FOUND/);
  r = await runProbe(['--mode', 'classification', ...base, '--metric', 'r2']);
  t.equal(r.code, 2);
  r = await runProbe(['--mode', 'classification', ...base, '--C', '-1']);
  t.equal(r.code, 2);
  r = await runProbe(['--mode', 'bogus', ...base]);
  t.equal(r.code, 2);
  r = await runProbe(['--mode', 'regression', ...base, '--warm-start', 'none']);
  t.equal(r.code, 2);
  r = await runProbe(['--mode', 'classification', ...base, '--device', 'gpu']);
  t.equal(r.code, 2, '--device gpu is a usage error');
});

t.test('--device cuda: the same score as the CPU where there is a GPU, ERR_DEVICE_UNAVAILABLE where there is none', async (t) => {
  const base = ['--features', f('x.npy'), '--targets', f('y.npy'), '--test-features', f('xt.npy'), '--test-targets', f('yt.npy'), '--quiet'];
  const cpu = await runProbe(['--mode', 'classification', ...base, '--C', '1', '--device', 'cpu']);
  t.equal(cpu.code, 0);
  const r = await runProbe(['--mode', 'classification', ...base, '--C', '1', '--device', 'cuda']);
  if (cudaAvailable()) {
    t.equal(r.code, 0, r.stderr);
    const score = (s: string) => Number(/score: (\S+)\s*$/.exec(s)![1]);
    t.ok(Math.abs(score(r.stdout) - score(cpu.stdout)) <= 0.01, `GPU ${score(r.stdout)} vs CPU ${score(cpu.stdout)}`);
  } else {
    t.equal(r.code, 1);
    t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE/);
  }
});
