/**
 * `ssl-inv report RESULTS_DIR`: one self-contained HTML page (inline SVG, no scripts, no external
 * files) from every invariance result JSON in a folder:
 *   - a models x transforms heatmap of mean similarity (the paper's overview figure), with the
 *     real-world data sets as further columns;
 *   - for each synthetic transform, similarity against the transform parameter, one line per model;
 *   - with downstream results: their table, invariance against transfer (scatter), and the
 *     correlation across models of each transform's similarity with each data set's test score
 *     (correlations.ts; also written as invariance_transfer_correlations.csv beside the page);
 *   - tables of the summary numbers (distance and similarity) and the runs' provenance.
 * The files are read and checked by result-files.ts: a malformed one is an error naming it.
 */
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { writeFileAtomic } from '../io/atomic-write';
import { InvarianceResult } from '../eval/results';
import { SYNTHETIC_TRANSFORMS } from '../transforms/grid';
import { esc, heatmap, lineChart, scatterChart, Series } from './svg';
import { CorrelationRow, correlationsCsv, invarianceTransferCorrelations, MIN_MODELS } from './correlations';
import { DownstreamSummary, readDownstreamResults, readInvarianceResults } from './result-files';

/** x values for a transform's plot: the parameter when it is a number, else the view index. */
function xOf(r: InvarianceResult): { x: number[]; label: string } {
  const scalar = r.rows.every((row) => typeof row.param === 'number');
  return scalar ? { x: r.rows.map((row) => row.param as number), label: r.paramName ?? 'parameter' }
    : { x: r.rows.map((row) => Number(row.id)), label: `view (${r.paramName ?? 'grid'}, in the original's order)` };
}

/** One point per distinct x (the mean of its y's), sorted by x: deform repeats each sigma 32 times. */
function averageRepeats(x: number[], y: number[], name: string): Series {
  const groups = new Map<number, number[]>();
  x.forEach((v, i) => {
    const g = groups.get(v) ?? [];
    g.push(y[i]!);
    groups.set(v, g);
  });
  if (groups.size === x.length) return { name, x, y };
  const xs = [...groups.keys()].sort((a, b) => a - b);
  return { name, x: xs, y: xs.map((v) => { const g = groups.get(v)!; return g.reduce((a, b) => a + b, 0) / g.length; }) };
}

export function renderReport(results: InvarianceResult[], title = 'ssl-invariances report', downstream: DownstreamSummary[] = [],
  corr: CorrelationRow[] = invarianceTransferCorrelations(results, downstream)): string {
  const synth = results.filter((r) => r.kind === 'synthetic');
  const real = results.filter((r) => r.kind === 'realworld');
  const models = [...new Set(results.map((r) => r.model))];
  const transforms = SYNTHETIC_TRANSFORMS.filter((t) => synth.some((r) => r.transform === t));
  const datasets = [...new Set(real.map((r) => r.dataset))].sort();
  const cols = [...transforms, ...datasets];
  const value = (m: string, c: string) => {
    const r = results.find((x) => x.model === m && (x.kind === 'synthetic' ? x.transform === c : x.dataset === c));
    return r ? r.summary.similarity : NaN;
  };
  const body: string[] = [];
  body.push(`<h1>${esc(title)}</h1>`);
  body.push(`<p>${results.length} result file(s): ${synth.length} synthetic, ${real.length} real-world; models ${models.map(esc).join(', ')}.</p>`);
  if (cols.length) {
    body.push('<h2>Mean similarity</h2><p>Cosine similarity of whitened features between an image and its views (synthetic) or among the views of one object (real-world); higher means more invariant.</p>');
    body.push(`<figure>${heatmap('Similarity: models x transforms / data sets', models, cols, models.map((m) => cols.map((c) => value(m, c))))}</figure>`);
  }
  if (transforms.length) {
    body.push('<h2>Similarity against the transform parameter</h2><div class="grid">');
    for (const t of transforms) {
      const rs = synth.filter((r) => r.transform === t);
      const { label } = xOf(rs[0]!);
      const series: Series[] = rs.map((r) => averageRepeats(xOf(r).x, r.rows.map((row) => row.similarity), r.model));
      const repeated = new Set(xOf(rs[0]!).x).size < rs[0]!.rows.length;
      body.push(`<figure>${lineChart(t, repeated ? `${label} (mean of the views with each value)` : label, 'similarity', series)}</figure>`);
    }
    body.push('</div>');
  }
  if (downstream.length) {
    const dsNames = [...new Set(downstream.map((d) => d.dataset))].sort();
    const dModels = [...new Set(downstream.map((d) => d.model))];
    body.push('<h2>Transfer</h2><p>Test score of the original\'s linear probe (accuracy, mean per-class accuracy or R<sup>2</sup>) after its C search.</p>');
    body.push(`<table><thead><tr><th>model</th>${dsNames.map((d) => `<th>${esc(d)}</th>`).join('')}</tr></thead><tbody>`);
    for (const m of dModels) {
      body.push(`<tr><td>${esc(m)}</td>${dsNames.map((d) => {
        const r = downstream.find((x) => x.model === m && x.dataset === d);
        return `<td>${r ? `${r.testScore.toFixed(4)} <small>(C ${r.chosenC.toPrecision(3)})</small>` : ''}</td>`;
      }).join('')}</tr>`);
    }
    body.push('</tbody></table>');
    const meanInv = (m: string) => {
      const rs = synth.filter((r) => r.model === m);
      return rs.length ? rs.reduce((a, r) => a + r.summary.similarity, 0) / rs.length : NaN;
    };
    const withBoth = dModels.filter((m) => Number.isFinite(meanInv(m)));
    if (withBoth.length) {
      body.push('<h2>Invariance and transfer</h2><p>Each point is a model: its mean synthetic-invariance similarity (over the transforms evaluated) against its downstream test score, one colour per data set.</p>');
      body.push(`<figure>${scatterChart('Invariance vs transfer', 'mean similarity (synthetic transforms)', 'downstream test score',
        dsNames.map((d) => ({ name: d, points: withBoth.flatMap((m) => {
          const r = downstream.find((x) => x.model === m && x.dataset === d);
          return r ? [{ x: meanInv(m), y: r.testScore, label: m }] : [];
        }) })))}</figure>`);
    }
    if (corr.length) {
      const corrSets = [...new Set(corr.map((c) => c.dataset))];
      const corrRows = [...new Set(corr.map((c) => c.transform))];
      body.push(`<h2>Does invariance predict transfer?</h2><p>Across the models that have both results: Spearman's rank correlation &rho; (and Pearson's r) of the model's mean similarity under each transform with its downstream test score; n models; none below ${MIN_MODELS}. Also in <code>invariance_transfer_correlations.csv</code>.</p>`);
      body.push(`<table><thead><tr><th>transform</th>${corrSets.map((d) => `<th>${esc(d)}</th>`).join('')}</tr></thead><tbody>`);
      for (const t of corrRows) {
        body.push(`<tr><td>${esc(t)}</td>${corrSets.map((d) => {
          const c = corr.find((x) => x.transform === t && x.dataset === d)!;
          return Number.isNaN(c.spearman) ? `<td>&ndash; <small>(n ${c.n})</small></td>`
            : `<td>&rho; ${c.spearman.toFixed(3)} <small>(r ${Number.isNaN(c.pearson) ? '&ndash;' : c.pearson.toFixed(3)}, n ${c.n})</small></td>`;
        }).join('')}</tr>`);
      }
      body.push('</tbody></table>');
    }
  }
  body.push('<h2>Summary</h2><table><thead><tr><th>model</th><th>kind</th><th>transform / data set</th><th>distance</th><th>similarity</th><th>views</th><th>images</th></tr></thead><tbody>');
  for (const r of results) {
    body.push(`<tr><td>${esc(r.model)}</td><td>${r.kind}</td><td>${esc(r.transform ?? r.dataset)}</td><td>${r.summary.distance.toFixed(6)}</td><td>${r.summary.similarity.toFixed(6)}</td><td>${r.rows.length}</td><td>${esc(String((r.config as { numImages?: number }).numImages ?? ''))}</td></tr>`);
  }
  body.push('</tbody></table>');
  body.push('<h2>Provenance</h2><table><thead><tr><th>model</th><th>checkpoint</th><th>SHA-256</th><th>arch</th><th>statistics</th><th>device</th><th>created</th></tr></thead><tbody>');
  const seen = new Set<string>();
  for (const r of results) {
    for (const m of r.models) {
      const key = `${r.model}|${m.sha256}|${r.statistics.key}`;
      if (seen.has(key)) continue;
      seen.add(key);
      body.push(`<tr><td>${esc(r.model)}</td><td>${esc(m.file)}</td><td><code>${m.sha256.slice(0, 16)}…</code></td><td>${esc(m.arch)}</td><td>${r.statistics.images} images${r.statistics.cached ? ' (cached)' : ''}</td><td>${esc(r.device)} ${esc(r.precision)}${r.activations && r.activations !== 'float32' ? ` (${esc(r.activations)} activations)` : ''}</td><td>${esc(r.created)}</td></tr>`);
    }
  }
  body.push('</tbody></table>');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1120px;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:8px}
figure{margin:0}svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}th{background:#f6f6f6}
code{font-size:11px}
</style></head><body>
${body.join('\n')}
<p style="color:#888;font-size:11px">Made by ssl-inv report.</p>
</body></html>
`;
}

/** Writes the report for a results folder; returns its path. */
export async function writeReport(dir: string, out?: string): Promise<{ file: string; results: number }> {
  const results = await readInvarianceResults(dir);
  const downstream = await readDownstreamResults(dir);
  if (results.length === 0 && downstream.length === 0) {
    throw new SslInvError('ERR_FILE_NOT_FOUND', 'no results (*_invariance.json, *_downstream.json) to report on: run an evaluation first', { file: dir });
  }
  const file = out ?? path.join(dir, 'report.html');
  const corr = invarianceTransferCorrelations(results, downstream);
  await writeFileAtomic(file, Buffer.from(renderReport(results, 'ssl-invariances report', downstream, corr)));
  if (corr.length) await writeFileAtomic(path.join(path.dirname(file), 'invariance_transfer_correlations.csv'), Buffer.from(correlationsCsv(corr)));
  return { file, results: results.length + downstream.length };
}
