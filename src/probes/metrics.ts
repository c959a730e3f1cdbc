/**
 * The probes' scores, as the original computes them with scikit-learn 1.2:
 *   - accuracy: `clf.score(X, y)` = accuracy_score = the fraction of exact matches;
 *   - mean per-class accuracy (Caltech101, Flowers): `cm = confusion_matrix(y, pred)`,
 *     `(cm.diagonal() / cm.sum(axis=1)).mean()`. The confusion matrix has a row for every label seen
 *     in either y or pred, so a class that is predicted but absent from y gives 0/0 = NaN and the mean
 *     is NaN, exactly as in the original (numpy warns and carries on);
 *   - R^2: r2_score(y, pred) with multioutput='uniform_average' and force_finite=True: an output with
 *     constant y scores 1 if predicted exactly, else 0; fewer than two samples give NaN;
 *   - MSE: mean_squared_error(y, pred), the per-output means averaged.
 * Regression targets are row-major [n, outputs] float64 arrays.
 */
import { SslInvError } from '../errors';
import { numpyMean, sumAxis0 } from './numeric';

function checkSameLength(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `${what}: ${a.length} true values but ${b.length} predictions`);
  }
}

/** The fraction of predictions equal to the truth. */
export function accuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  checkSameLength(yTrue, yPred, 'accuracy');
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) correct++;
  return correct / yTrue.length;
}

/** confusion_matrix(yTrue, yPred): rows are true labels, columns predictions, over the sorted union of labels. */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): { labels: number[]; matrix: number[][] } {
  checkSameLength(yTrue, yPred, 'confusionMatrix');
  const set = new Set<number>();
  for (let i = 0; i < yTrue.length; i++) {
    set.add(yTrue[i]!);
    set.add(yPred[i]!);
  }
  const labels = [...set].sort((a, b) => a - b);
  const index = new Map(labels.map((l, i) => [l, i]));
  const matrix = labels.map(() => new Array<number>(labels.length).fill(0));
  for (let i = 0; i < yTrue.length; i++) matrix[index.get(yTrue[i]!)!]![index.get(yPred[i]!)!]!++;
  return { labels, matrix };
}

/** The original's mean per-class accuracy: the mean over labels of diag / row sum (NaN if a row is empty). */
export function meanPerClassAccuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  const { matrix } = confusionMatrix(yTrue, yPred);
  const perClass = matrix.map((row, i) => row[i]! / row.reduce((a, b) => a + b, 0));
  return numpyMean(perClass);
}

/** The rows n of [n, outputs] row-major targets and their squared residuals (yTrue - yPred)^2. */
function squaredResiduals(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, outputs: number, op: string):
  { n: number; sq: Float64Array } {
  checkSameLength(yTrue, yPred, op);
  if (!Number.isSafeInteger(outputs) || outputs < 1 || yTrue.length % outputs !== 0) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `${op}: ${yTrue.length} values do not form rows of ${outputs} outputs`);
  }
  const sq = new Float64Array(yTrue.length);
  for (let i = 0; i < sq.length; i++) {
    const r = yTrue[i]! - yPred[i]!;
    sq[i] = r * r;
  }
  return { n: yTrue.length / outputs, sq };
}

/** r2_score(yTrue, yPred) over [n, outputs] row-major arrays, uniform average over outputs. */
export function r2Score(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, outputs = 1): number {
  const { n, sq } = squaredResiduals(yTrue, yPred, outputs, 'r2Score');
  if (n < 2) return NaN;
  const numerator = sumAxis0(sq, n, outputs);
  const mean = sumAxis0(yTrue, n, outputs);
  for (let j = 0; j < outputs; j++) mean[j] = mean[j]! / n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < outputs; j++) {
      const r = yTrue[i * outputs + j]! - mean[j]!;
      sq[i * outputs + j] = r * r;
    }
  }
  const denominator = sumAxis0(sq, n, outputs);
  const scores = new Float64Array(outputs);
  for (let j = 0; j < outputs; j++) {
    const num = numerator[j]!, den = denominator[j]!;
    if (num === 0) scores[j] = 1;
    else if (den === 0) scores[j] = 0;
    else scores[j] = 1 - num / den;
  }
  return numpyMean(scores);
}

/** mean_squared_error(yTrue, yPred) over [n, outputs] row-major arrays, uniform average over outputs. */
export function meanSquaredError(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, outputs = 1): number {
  const { n, sq } = squaredResiduals(yTrue, yPred, outputs, 'meanSquaredError');
  const perOutput = sumAxis0(sq, n, outputs);
  for (let j = 0; j < outputs; j++) perOutput[j] = perOutput[j]! / n;
  return numpyMean(perOutput);
}
