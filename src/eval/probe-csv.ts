/**
 * Long-format CSV of a probe search, beside the JSON that eval-downstream and eval-causal3dident
 * write (as the invariance results have theirs): one row per cross-validation score (the
 * hyper-parameters, the fold, the score) and one for the refit's test score (fold `test`), so a
 * plot of score against C needs no JSON parsing. Numbers are written as JavaScript's shortest
 * round-trip form.
 */
import type { KernelRidgeProbeResult, ProbeResult } from '../probes/cv';
import { csvCell } from './results';

function lines(rows: (string | number)[][]): string {
  return `${rows.map((r) => r.map(csvCell).join(',')).join('\n')}\n`;
}

/** model,dataset,metric,C,fold,value: cvScores[j][f] for each C, then the test score at the chosen C. */
export function downstreamCsv(model: string, dataset: string, metric: string, probe: Pick<ProbeResult, 'Cs' | 'cvScores' | 'chosenC' | 'testScore'>): string {
  const rows: (string | number)[][] = [['model', 'dataset', 'metric', 'C', 'fold', 'value']];
  (probe.Cs ?? []).forEach((C, j) => probe.cvScores[j]!.forEach((v, f) => rows.push([model, dataset, metric, C, f, v])));
  rows.push([model, dataset, metric, probe.chosenC, 'test', probe.testScore]);
  return lines(rows);
}

/** model,target,alpha,gamma,fold,value: the grid's CV scores (alpha outer, gamma inner), then the test score. */
export function causal3dIdentCsv(model: string, target: string, probe: Pick<KernelRidgeProbeResult, 'alphas' | 'gammas' | 'cvScores' | 'chosenAlpha' | 'chosenGamma' | 'testScore'>): string {
  const rows: (string | number)[][] = [['model', 'target', 'alpha', 'gamma', 'fold', 'value']];
  probe.alphas.forEach((alpha, ai) => probe.gammas.forEach((gamma, gi) =>
    probe.cvScores[ai * probe.gammas.length + gi]!.forEach((v, f) => rows.push([model, target, alpha, gamma, f, v]))));
  rows.push([model, target, probe.chosenAlpha, probe.chosenGamma, 'test', probe.testScore]);
  return lines(rows);
}
