/**
 * `ssl-inv probe`: the original's downstream probes on features the user already has.
 *
 *   ssl-inv probe --mode classification|multi-label|regression|kernel-ridge
 *                 --features X.npy --targets Y.npy --test-features X2.npy --test-targets Y2.npy
 *                 [--C C] [--metric accuracy|mean-per-class|r2] [--cv-folds 5] [--seed 0]
 *                 [--model-name NAME] [--warm-start chain|per-fold|none] [--out result.json]
 *                 [--device cpu|cuda|cuda:N|auto] [--threads N] [--quiet]
 *
 * Without --C it runs the original's cross-validated search (src/probes/cv.ts): 45 C values from
 * wd_range (offset by --model-name as the original offsets it), k folds, refit on all of the
 * trainval rows with the best C, score on the test rows. Classification is scikit-learn's
 * LogisticRegression(lbfgs, multinomial) with the original's warm-start chain; regression is Ridge with
 * alpha = C; kernel-ridge is the Causal3DIdent StandardScaler + RBF KernelRidge grid. With --device
 * cuda the float64 GEMMs and the logistic loss run on the GPU (src/probes/cv.ts, 'Devices').
 *
 * Features: float32/float64 [n, d]. Targets: integer class indices [n] (classification), 0/1 integers
 * [n, labels] (multi-label), numbers [n] or [n, outputs] (regression, kernel-ridge).
 * stdout: a short summary, and `score: <test score>` as the last line. --out: JSON with the chosen
 * hyper-parameters, every CV score, the test score, the seed and timings (written atomically).
 * Progress (with rate and ETA) goes to stderr.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { SslInvError } from '../errors';
import { writeFileAtomic } from '../io/atomic-write';
import { NpyArray, readNpy } from '../io/npy';
import { setNumThreads } from '../ops';
import {
  classificationProbe, ClassificationMetric, FeatureMatrix, kernelRidgeProbe, ProbeResult, ProgressCallback, regressionProbe,
  WarmStartMode,
} from '../probes/cv';
import { packageVersion } from './info';
import { announceOnStderr, DEVICE_DEFAULT, deviceHelp, parseDevice, parseSeed, positiveInt } from './common';
import { createProgress, Progress } from './progress';

type Mode = 'classification' | 'multi-label' | 'regression' | 'kernel-ridge';

interface ProbeOptions {
  mode: Mode;
  features: string;
  targets: string;
  testFeatures: string;
  testTargets: string;
  C?: number;
  metric?: 'accuracy' | 'mean-per-class' | 'r2';
  cvFolds: number;
  seed: number;
  modelName: string;
  warmStart: WarmStartMode;
  out?: string;
  device?: string;
  threads?: number;
  quiet?: boolean;
}

function positiveNumber(flag: string): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || !(x > 0)) throw new InvalidArgumentError(`${flag} takes a positive number, got '${v}'`);
    return x;
  };
}

function seedInt(v: string): number {
  try {
    return parseSeed(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message); // commander's form of a bad option value
  }
}

export function probeCommand(): Command {
  return new Command('probe')
    .description('fit the original\'s downstream probe (logistic regression / Ridge / RBF kernel ridge) on given features, with its CV search')
    .addOption(new Option('--mode <mode>', 'classification, multi-label, regression (Ridge) or kernel-ridge (Causal3DIdent)')
      .choices(['classification', 'multi-label', 'regression', 'kernel-ridge']).makeOptionMandatory())
    .requiredOption('--features <file>', 'trainval features, float32/float64 .npy [n, d]')
    .requiredOption('--targets <file>', 'trainval targets .npy: class indices [n], 0/1 labels [n, L], or values [n] / [n, T]')
    .requiredOption('--test-features <file>', 'test features .npy [m, d]')
    .requiredOption('--test-targets <file>', 'test targets .npy')
    .option('--C <C>', 'a fixed C (Ridge: alpha = C) instead of the cross-validated search', positiveNumber('--C'))
    .addOption(new Option('--metric <metric>', 'accuracy or mean-per-class (classification), r2 (regression)')
      .choices(['accuracy', 'mean-per-class', 'r2']))
    .option('--cv-folds <k>', 'cross-validation folds', positiveInt('--cv-folds'), 5)
    .option('--seed <seed>', 'the KFold shuffle seed (the original\'s folds are unseeded)', seedInt, 0)
    .option('--model-name <name>', 'the model name, for the original\'s wd_range offset (w3 models: 2, else the number of \'+\')', 'default')
    .addOption(new Option('--warm-start <mode>', 'logistic warm starts: the original\'s single chain, per fold (batched), or none (all fits batched)')
      .choices(['chain', 'per-fold', 'none']).default('chain'))
    .option('--out <file>', 'write the result as JSON')
    .option('--device <device>', deviceHelp('where the float64 GEMMs and the logistic loss run'), DEVICE_DEFAULT)
    .option('--threads <n>', 'CPU threads for the kernels (default: all cores)', positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .action(async (opts: ProbeOptions) => {
      await runProbe(opts);
    });
}

function features(a: NpyArray, file: string): FeatureMatrix {
  if (a.shape.length !== 2) throw new SslInvError('ERR_SHAPE_MISMATCH', `features must be 2-D [n, d], got [${a.shape.join(', ')}]`, { file, field: 'shape' });
  if (a.dtype !== 'float32' && a.dtype !== 'float64') {
    throw new SslInvError('ERR_DTYPE_MISMATCH', `features must be float32 or float64, got ${a.dtype}`, { file, field: 'descr' });
  }
  return { data: a.data as Float32Array | Float64Array, rows: a.shape[0]!, cols: a.shape[1]! };
}

function numbers(a: NpyArray): number[] | Float64Array {
  return a.data instanceof BigInt64Array ? Array.from(a.data, (v) => Number(v)) : Float64Array.from(a.data as ArrayLike<number>);
}

function classTargets(a: NpyArray, file: string, rows: number, multiLabel: boolean): number[] {
  if (a.dtype === 'float32' || a.dtype === 'float64') {
    throw new SslInvError('ERR_DTYPE_MISMATCH', `class targets must be integers (int32, int64 or uint8), got ${a.dtype}`, { file, field: 'descr' });
  }
  const ok = multiLabel ? a.shape.length === 2 : a.shape.length === 1 || (a.shape.length === 2 && a.shape[1] === 1);
  if (!ok || a.shape[0] !== rows) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `expected ${multiLabel ? `[${rows}, labels]` : `[${rows}]`} targets, got [${a.shape.join(', ')}]`, { file, field: 'shape' });
  }
  const v = Array.from(numbers(a));
  if (v.some((x) => !Number.isSafeInteger(x))) throw new SslInvError('ERR_INVALID_ARGUMENT', 'class targets out of range', { file });
  if (multiLabel && v.some((x) => x !== 0 && x !== 1)) throw new SslInvError('ERR_INVALID_ARGUMENT', 'multi-label targets must be 0 or 1', { file });
  return v;
}

function valueTargets(a: NpyArray, file: string, rows: number): { y: Float64Array; outputs: number } {
  if (a.shape.length !== 1 && a.shape.length !== 2) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `regression targets must be [n] or [n, outputs], got [${a.shape.join(', ')}]`, { file, field: 'shape' });
  }
  if (a.shape[0] !== rows) throw new SslInvError('ERR_SHAPE_MISMATCH', `${a.shape[0]} target rows for ${rows} feature rows`, { file, field: 'shape' });
  const y = Float64Array.from(numbers(a));
  const bad = y.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new SslInvError('ERR_INVALID_ARGUMENT', `non-finite target at element ${bad}`, { file });
  return { y, outputs: a.shape.length === 2 ? a.shape[1]! : 1 };
}

function progressReporter(quiet: boolean): { cb: ProgressCallback; end: () => void } {
  let bar: Progress | undefined;
  let last = 0;
  return {
    cb: (e) => {
      if (!bar) bar = createProgress({ label: 'probe', total: e.total, unit: 'fits', silent: quiet });
      bar.tick(e.done - last);
      last = e.done;
    },
    end: () => bar?.done(),
  };
}

async function runProbe(opts: ProbeOptions): Promise<void> {
  const device = parseDevice(opts.device, announceOnStderr(opts.quiet));
  if (opts.threads !== undefined) setNumThreads(opts.threads);
  const mode = opts.mode;
  const regression = mode === 'regression' || mode === 'kernel-ridge';
  if (opts.metric !== undefined) {
    if (regression && opts.metric !== 'r2') throw new SslInvError('ERR_USAGE', `--metric ${opts.metric} is a classification metric; ${mode} is scored by r2`);
    if (!regression && opts.metric === 'r2') throw new SslInvError('ERR_USAGE', '--metric r2 is for regression');
    if (mode === 'multi-label' && opts.metric === 'mean-per-class') throw new SslInvError('ERR_USAGE', 'multi-label probes score the mean accuracy over labels');
  }
  if (mode === 'kernel-ridge' && opts.C !== undefined) throw new SslInvError('ERR_USAGE', '--C does not apply to kernel-ridge (its grid is alpha x gamma)');
  if (mode !== 'classification' && opts.warmStart !== 'chain') {
    throw new SslInvError('ERR_USAGE', `--warm-start ${opts.warmStart} applies to --mode classification only`);
  }
  const [xa, ya, xta, yta] = await Promise.all([readNpy(opts.features), readNpy(opts.targets), readNpy(opts.testFeatures), readNpy(opts.testTargets)]);
  const x = features(xa, opts.features), xt = features(xta, opts.testFeatures);
  if (xt.cols !== x.cols) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `test features have ${xt.cols} columns but trainval features ${x.cols}`, { file: opts.testFeatures, field: 'shape' });
  }
  const started = Date.now();
  const progress = progressReporter(opts.quiet ?? false);
  const common = { folds: opts.cvFolds, seed: opts.seed, onProgress: progress.cb, device };
  let json: Record<string, unknown>;
  let summary: string[];
  let score: number;
  if (mode === 'kernel-ridge') {
    const y = valueTargets(ya, opts.targets, x.rows), yt = valueTargets(yta, opts.testTargets, xt.rows);
    if (y.outputs !== yt.outputs) throw new SslInvError('ERR_SHAPE_MISMATCH', `${y.outputs} trainval outputs but ${yt.outputs} test outputs`, { file: opts.testTargets });
    const r = kernelRidgeProbe(x, y.y, xt, yt.y, common);
    progress.end();
    score = r.testScore;
    json = { mode, metric: 'r2', ...r };
    summary = [`probe     StandardScaler + RBF KernelRidge, ${r.alphas.length} alphas x ${r.gammas.length} gammas, ${r.folds}-fold CV (seed ${r.seed})`,
      `chosen    alpha ${r.chosenAlpha}, gamma ${r.chosenGamma} (mean CV R^2 ${r.meanCvScores[r.bestIndex]})`];
  } else {
    let r: ProbeResult;
    if (mode === 'regression') {
      const y = valueTargets(ya, opts.targets, x.rows), yt = valueTargets(yta, opts.testTargets, xt.rows);
      if (y.outputs !== yt.outputs) throw new SslInvError('ERR_SHAPE_MISMATCH', `${y.outputs} trainval outputs but ${yt.outputs} test outputs`, { file: opts.testTargets });
      r = regressionProbe(x, y.y, xt, yt.y, { ...common, modelName: opts.modelName, ...(opts.C !== undefined ? { C: opts.C } : {}) });
    } else {
      const multiLabel = mode === 'multi-label';
      const y = classTargets(ya, opts.targets, x.rows, multiLabel), yt = classTargets(yta, opts.testTargets, xt.rows, multiLabel);
      if (multiLabel && ya.shape[1] !== yta.shape[1]) throw new SslInvError('ERR_SHAPE_MISMATCH', `${ya.shape[1]} trainval labels but ${yta.shape[1]} test labels`, { file: opts.testTargets });
      r = classificationProbe(x, y, xt, yt, {
        ...common, multiLabel, modelName: opts.modelName, warmStart: opts.warmStart,
        metric: (opts.metric ?? 'accuracy') as ClassificationMetric, ...(opts.C !== undefined ? { C: opts.C } : {}),
      });
    }
    progress.end();
    score = r.testScore;
    const { model: _model, ...rest } = r;
    void _model;
    json = { ...rest };
    const what = mode === 'regression' ? `Ridge (alpha = C), R^2` : `LogisticRegression(lbfgs, multinomial), ${r.metric}`;
    summary = [`probe     ${what}${r.Cs ? `, ${r.Cs.length} C values x ${r.folds}-fold CV (seed ${r.seed}${mode === 'classification' ? `, warm start: ${r.warmStart}` : ''})` : ', fixed C'}`,
      `chosen    C ${r.chosenC}${r.Cs ? ` (mean CV score ${r.meanCvScores[r.bestIndex]})` : ''}`];
    if (r.unconvergedFits) summary.push(`fits      ${r.fits}, ${r.unconvergedFits} stopped at max_iter (as scikit-learn's would)`);
    if (r.testMse !== undefined) summary.push(`test MSE  ${r.testMse}`);
    for (const note of r.notes) summary.push(`note      ${note}`);
  }
  const seconds = (Date.now() - started) / 1000;
  json = {
    ...json, testScore: score, seed: opts.seed, version: packageVersion(),
    inputs: { features: opts.features, targets: opts.targets, testFeatures: opts.testFeatures, testTargets: opts.testTargets, modelName: opts.modelName },
    seconds,
  };
  if (opts.out !== undefined) await writeFileAtomic(opts.out, Buffer.from(JSON.stringify(json, null, 1) + '\n'));
  process.stdout.write(`${summary.join('\n')}\n` +
    `data      ${x.rows} trainval x ${x.cols} features, ${xt.rows} test rows\n` +
    `time      ${seconds.toFixed(1)} s${opts.out !== undefined ? `\nresult    -> ${opts.out}` : ''}\n` +
    `score: ${score}\n`);
}
