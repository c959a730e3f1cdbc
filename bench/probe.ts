/**
 * The original's downstream classification probe, ours beside scikit-learn's in the same run.
 *
 * A scaled-down CIFAR-10-like probe: 10 classes, float32 features with overlapping, correlated classes
 * (so many L-BFGS fits stop at max_iter, as on real features), 45 C values x 5 folds + the refit.
 * scikit-learn 1.2 (Debian's python3-sklearn) runs the original's CVTester loop in a child process
 * (/usr/bin/python3) on the same .npy files and the same seeded KFold; we run the same search with the
 * original's warm-start chain, and also in the two batched modes (which are not the original's chain).
 * Both sides use the same number of threads (OpenBLAS / our pool).
 *
 *   npx tsc -p tsconfig.bench.json && node build-bench/bench/probe.js [--rows 5000] [--test 1000]
 *       [--dim 256] [--classes 10] [--threads 2] [--seed 0] [--modes chain,per-fold,none] [--no-sklearn]
 *       [--device cpu|cuda:N] [--also-cpu] [--out FILE]
 *
 * --device runs our searches with their GEMMs and logistic loss on that device; --also-cpu runs each
 * mode on the CPU too, in the same run, and reports the ratio and how many fold scores agree exactly.
 * The GPU device check (bench/device/run.sh) runs the CIFAR-10-sized search with it:
 * --rows 50000 --test 10000 --dim 2048 --classes 10 --modes chain --device cuda:0.
 *
 * Prints a table and writes bench/out/probe-<date>.json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeNpy } from '../src/io/npy';
import { native } from '../src/native';
import { setNumThreads } from '../src/ops';
import { classificationProbe, ProbeResult, WarmStartMode } from '../src/probes/cv';
import { makeClassification } from '../test/probes/data';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const SKLEARN = String.raw`
import json, sys, time, warnings
import numpy as np
from sklearn.linear_model import LogisticRegression as LogReg
from sklearn.model_selection import KFold
from sklearn.exceptions import ConvergenceWarning
import sklearn
warnings.filterwarnings('ignore', category=ConvergenceWarning)
d, seed = sys.argv[1], int(sys.argv[2])
X, y = np.load(d + '/x.npy'), np.load(d + '/y.npy')
Xt, yt = np.load(d + '/xt.npy'), np.load(d + '/yt.npy')
wds = np.array(json.load(open(d + '/wd.json')), dtype=np.float32)
t0 = time.time()
clf = LogReg(solver='lbfgs', multi_class='multinomial', warm_start=True)
kf = KFold(n_splits=5, shuffle=True, random_state=seed)
best, best_C, scores, unconverged = -np.inf, None, [], 0
for wd in wds:
    C = 1. / wd.item()
    clf.set_params(C=C)
    cv = []
    for train, val in kf.split(X):
        clf.fit(X[train], y[train])
        unconverged += int(clf.n_iter_[0] >= 100)
        cv.append(float(clf.score(X[val], y[val])))
    scores.append(cv)
    if np.mean(cv) > best:
        best, best_C = np.mean(cv), C
t1 = time.time()
clf.set_params(C=best_C)
clf.fit(X, y)
test = float(clf.score(Xt, yt))
t2 = time.time()
print(json.dumps({'cv_seconds': t1 - t0, 'refit_seconds': t2 - t1, 'total_seconds': t2 - t0, 'best_C': best_C,
                  'test_score': test, 'cv_scores': scores, 'unconverged_cv_fits': unconverged, 'sklearn': sklearn.__version__}))
`;

/** Ten overlapping classes with correlated features, float32 (what a ResNet would give): the probe
 * tests' generator with a small class separation and a chained feature correlation. */
function makeData(seed: number, n: number, d: number, K: number): { X: Float32Array; y: Int32Array } {
  const { X, y } = makeClassification(seed, n, d, K, 0.18, 0.8);
  return { X: Float32Array.from(X), y };
}

async function main(): Promise<void> {
  const rows = Number(arg('--rows', '5000')), nTest = Number(arg('--test', '1000')), dim = Number(arg('--dim', '256'));
  const classes = Number(arg('--classes', '10')), threads = Number(arg('--threads', '2')), seed = Number(arg('--seed', '0'));
  const modes = (arg('--modes', 'chain,per-fold,none')!).split(',') as WarmStartMode[];
  const device = arg('--device', 'cpu')!, alsoCpu = process.argv.includes('--also-cpu') && device !== 'cpu';
  setNumThreads(threads);
  const data = makeData(1234, rows + nTest, dim, classes);
  const x = { data: data.X.subarray(0, rows * dim), rows, cols: dim }, xt = { data: data.X.subarray(rows * dim), rows: nTest, cols: dim };
  const y = data.y.subarray(0, rows), yt = data.y.subarray(rows);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-bench-probe-'));
  const report: Record<string, unknown> = {
    date: new Date().toISOString(), machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, threads, info: native().info() },
    workload: { trainval: rows, test: nTest, features: dim, classes, C: 45, folds: 5, seed, dtype: 'float32', device },
  };
  try {
    let sk: { total_seconds: number; best_C: number; test_score: number; cv_scores: number[][]; unconverged_cv_fits: number } | undefined;
    if (!process.argv.includes('--no-sklearn')) {
      await writeNpy(path.join(tmp, 'x.npy'), { dtype: 'float32', shape: [rows, dim], data: Float32Array.from(x.data) });
      await writeNpy(path.join(tmp, 'y.npy'), { dtype: 'int32', shape: [rows], data: Int32Array.from(y) });
      await writeNpy(path.join(tmp, 'xt.npy'), { dtype: 'float32', shape: [nTest, dim], data: Float32Array.from(xt.data) });
      await writeNpy(path.join(tmp, 'yt.npy'), { dtype: 'int32', shape: [nTest], data: Int32Array.from(yt) });
      const { wdRange } = await import('../src/probes/cv');
      fs.writeFileSync(path.join(tmp, 'wd.json'), JSON.stringify(wdRange('default')));
      process.stderr.write(`scikit-learn: running the original's search (${threads} threads)...\n`);
      const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
      const r = spawnSync('/usr/bin/python3', ['-c', SKLEARN, tmp, String(seed)], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
      if (r.status === 0) {
        sk = JSON.parse(r.stdout.trim().split('\n').pop()!);
        report.sklearn = { ...sk, cv_scores: undefined };
      } else {
        report.sklearn = { error: (r.stderr || String(r.error)).slice(-2000) };
        process.stderr.write(`scikit-learn failed: ${(r.stderr || String(r.error)).slice(-500)}\n`);
      }
    }
    const ours: Record<string, unknown> = {};
    const countSame = (a: number[][], b: number[][]) => a.reduce((c, row, j) => c + row.filter((v, f) => v === b[j]![f]).length, 0);
    for (const mode of modes) {
      process.stderr.write(`ours: ${mode} on ${device}...\n`);
      const r: ProbeResult = classificationProbe(x, y, xt, yt, { seed, warmStart: mode, device, ...(device === 'cpu' ? {} : { batchBytes: 2 ** 33 }) });
      const sameFold = sk ? countSame(r.cvScores, sk.cv_scores) : 0;
      let cpu: Record<string, unknown> = {};
      if (alsoCpu) {
        process.stderr.write(`ours: ${mode} on the CPU...\n`);
        const c = classificationProbe(x, y, xt, yt, { seed, warmStart: mode });
        cpu = { cpu: { totalSeconds: c.timings.totalSeconds, chosenC: c.chosenC, testScore: c.testScore }, speedupVsOurCpu: c.timings.totalSeconds / r.timings.totalSeconds,
          sameChosenCAsCpu: c.chosenC === r.chosenC, identicalFoldScoresVsCpu: `${countSame(r.cvScores, c.cvScores)}/${45 * 5}` };
      }
      ours[mode] = {
        totalSeconds: r.timings.totalSeconds, cvSeconds: r.timings.cvSeconds, refitSeconds: r.timings.refitSeconds,
        chosenC: r.chosenC, testScore: r.testScore, unconvergedFits: r.unconvergedFits, fits: r.fits, ...cpu,
        ...(sk ? { speedupVsSklearn: sk.total_seconds / r.timings.totalSeconds, sameChosenC: r.chosenC === sk.best_C,
          testScoreDiffPoints: (r.testScore - sk.test_score) * 100, identicalFoldScores: `${sameFold}/${45 * 5}` } : {}),
      };
    }
    report.ours = ours;
    const lines = [`probe bench: ${rows} x ${dim} float32 trainval, ${nTest} test, ${classes} classes, 45 C x 5 folds + refit, ${threads} threads, device ${device}`];
    if (sk) lines.push(`  scikit-learn 1.2 (original's chain)  ${sk.total_seconds.toFixed(1).padStart(7)} s   C ${sk.best_C.toPrecision(6)}   test ${(sk.test_score * 100).toFixed(2)}   (${sk.unconverged_cv_fits} CV fits at max_iter)`);
    for (const [mode, o] of Object.entries(ours) as [string, Record<string, any>][]) { // eslint-disable-line @typescript-eslint/no-explicit-any
      lines.push(`  ours, ${mode.padEnd(9)}                    ${o.totalSeconds.toFixed(1).padStart(7)} s   C ${Number(o.chosenC).toPrecision(6)}   test ${(o.testScore * 100).toFixed(2)}` +
        (sk ? `   x${o.speedupVsSklearn.toFixed(2)} vs scikit-learn, same C: ${o.sameChosenC}, identical fold scores ${o.identicalFoldScores}` : '') +
        (o.cpu ? `   x${o.speedupVsOurCpu.toFixed(2)} vs our CPU (${o.cpu.totalSeconds.toFixed(1)} s), same C: ${o.sameChosenCAsCpu}, identical fold scores ${o.identicalFoldScoresVsCpu}` : ''));
    }
    process.stdout.write(lines.join('\n') + '\n');
    const out = arg('--out') ?? path.join(__dirname, '..', '..', 'bench', 'out', `probe-${new Date().toISOString().slice(0, 10)}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(report, null, 1) + '\n');
    process.stdout.write(`-> ${out}\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});
