// The HTML report: heatmap and per-transform plots from invariance results, and, when downstream
// results are there too, the transfer table, the invariance-vs-transfer scatter plot and the
// correlation across models of each transform's similarity with each data set's score (scipy's
// values for the first case of test/fixtures/eval/correlation.json). Result files
// that are ours but malformed are ERR_RESULTS_FORMAT naming the file and field (a structural fuzz
// of the files checks that nothing else escapes: before these checks, its mutants ended in TypeErrors
// thrown from the middle of the renderer).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvarianceResult, RESULT_FORMAT } from '../../src/eval/results';
import { writeReport } from '../../src/report/html';
import { isSslInvError } from '../../src/errors';
import { FuzzRng, mutateJson } from '../helpers/fuzz';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-report-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

function synthetic(model: string, transform: string, sim: number): InvarianceResult {
  return {
    format: RESULT_FORMAT, kind: 'synthetic', model, models: [{ name: model, file: `${model}.pth.tar`, sha256: 'a'.repeat(64), arch: 'resnet50' }],
    fuseMode: 'cat', featureLayer: 'backbone', dataset: 'imagenet', transform, paramName: 'angle (degrees)', originalIndex: 0,
    config: { numImages: 10 }, statistics: { file: 's', key: 'k', images: 100, cached: false }, device: 'cpu', precision: 'fp32',
    versions: {}, rows: [0, 1, 2, 3].map((j) => ({ id: j, param: j * 90, distance: j, similarity: j === 0 ? 1 : sim })),
    summary: { distance: 1.5, similarity: sim }, created: '2026-11-28T00:00:00Z', seconds: 1,
  };
}

t.test('invariance and transfer sections', async (t) => {
  for (const [m, s] of [['default', 0.4], ['ventral', 0.6]] as const) {
    fs.writeFileSync(path.join(dir, `${m}_backbone_imagenet_rotation_invariance.json`), JSON.stringify(synthetic(m, 'rotation', s)));
    fs.writeFileSync(path.join(dir, `${m}_flowers_downstream.json`), JSON.stringify({
      format: 'ssl-inv-downstream/1', model: m, dataset: 'flowers', metric: 'accuracy', probe: { testScore: s + 0.2, chosenC: 10 },
    }));
  }
  fs.writeFileSync(path.join(dir, 'unrelated_invariance.json'), '{"not": "ours"}');
  const r = await writeReport(dir);
  t.equal(r.results, 4, 'two invariance and two downstream results (the stray file is ignored)');
  const html = fs.readFileSync(r.file, 'utf8');
  t.match(html, /Similarity: models x transforms/);
  t.match(html, /<h2>Transfer<\/h2>/);
  t.match(html, /<td>default<\/td><td>0\.6000/);
  t.match(html, /Invariance vs transfer/);
  t.equal((html.match(/<circle[^>]*r="4"/g) ?? []).length, 2, 'one point per model');
  t.notMatch(html, /<script/i, 'no scripts: a self-contained page');
  t.match(html, /Does invariance predict transfer\?/);
  t.match(html, /<td>rotation<\/td><td>&ndash; <small>\(n 2\)<\/small><\/td>/, 'two models: no coefficient');
  const csv = fs.readFileSync(path.join(dir, 'invariance_transfer_correlations.csv'), 'utf8');
  t.equal(csv, 'transform,dataset,n,spearman,pearson\nrotation,flowers,2,,\nmean of the transforms,flowers,2,,\n', 'the CSV: no coefficient below 3 models');
});

t.test('the correlation of invariance with transfer across models (scipy\'s rho and r)', async (t) => {
  const d = fs.mkdtempSync(path.join(dir, 'corr-'));
  // Five models, two transforms, two data sets: the first fixture case of correlation.json for
  // rotation x flowers (scipy: Pearson 0.98106580091716, Spearman 1.0); hue ranks the models the other way.
  const sims = [0.91, 0.42, 0.77, 0.63, 0.55], scores = [71.2, 40.3, 66.0, 58.9, 49.1];
  sims.forEach((sim, i) => {
    const m = `m${i}`;
    fs.writeFileSync(path.join(d, `${m}_backbone_imagenet_rotation_invariance.json`), JSON.stringify(synthetic(m, 'rotation', sim)));
    fs.writeFileSync(path.join(d, `${m}_backbone_imagenet_hue_invariance.json`), JSON.stringify(synthetic(m, 'hue', 1 - sim)));
    fs.writeFileSync(path.join(d, `${m}_flowers_downstream.json`), JSON.stringify({
      format: 'ssl-inv-downstream/1', model: m, dataset: 'flowers', metric: 'accuracy', probe: { testScore: scores[i], chosenC: 1 } }));
    if (i < 4) {  // one model fewer on 300w
      fs.writeFileSync(path.join(d, `${m}_300w_downstream.json`), JSON.stringify({
        format: 'ssl-inv-downstream/1', model: m, dataset: '300w', metric: 'r2', probe: { testScore: i, chosenC: 1 } }));
    }
  });
  const r = await writeReport(d);
  const html = fs.readFileSync(r.file, 'utf8');
  t.match(html, /<td>rotation<\/td><td>&rho; -0\.400 <small>\(r -0\.[0-9]{3}, n 4\)<\/small><\/td><td>&rho; 1\.000 <small>\(r 0\.981, n 5\)<\/small><\/td>/,
    'rotation: 300w from 4 models, flowers from 5 as scipy gives');
  t.match(html, /<td>hue<\/td><td>&rho; 0\.400 <small>[^<]*<\/small><\/td><td>&rho; -1\.000 /, 'hue: the reversed ranking');
  const rows = fs.readFileSync(path.join(d, 'invariance_transfer_correlations.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  t.same(rows[0], ['transform', 'dataset', 'n', 'spearman', 'pearson']);
  const flowers = rows.find((x) => x[0] === 'rotation' && x[1] === 'flowers')!;
  t.equal(flowers[2], '5');
  t.ok(Math.abs(Number(flowers[3]) - 1) < 1e-12 && Math.abs(Number(flowers[4]) - 0.9810658009171622) < 1e-12, `rotation x flowers: ${flowers.join(',')}`);
  t.equal(rows.length, 1 + 3 * 2, 'rotation, hue and their mean, for two data sets');
});

t.test('an empty folder is an error', async (t) => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-report-empty-'));
  await t.rejects(writeReport(empty), { code: 'ERR_FILE_NOT_FOUND' });
  fs.rmSync(empty, { recursive: true });
});

t.test('a malformed result file of ours: ERR_RESULTS_FORMAT naming it and the field', async (t) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-report-bad-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  const file = path.join(d, 'default_backbone_imagenet_rotation_invariance.json');
  const cases: [(r: Record<string, unknown>) => void, RegExp][] = [
    [(r) => { r.summary = { distance: 1, similarity: 'high' }; }, /summary\.similarity: expected a number, got "high"/],
    [(r) => { delete r.models; }, /models: expected an array, got nothing/],
    [(r) => { (r.rows as unknown[])[2] = null; }, /rows\[2\]: expected an object, got null/],
    [(r) => { r.kind = 'intrinsic'; }, /kind: expected 'synthetic' or 'realworld'/],
    [(r) => { (r.statistics as Record<string, unknown>).cached = 'yes'; }, /statistics\.cached: expected true or false/],
  ];
  for (const [mutate, msg] of cases) {
    const r = synthetic('default', 'rotation', 0.5) as unknown as Record<string, unknown>;
    mutate(r);
    fs.writeFileSync(file, JSON.stringify(r));
    const err = await t.rejects(writeReport(d), { code: 'ERR_RESULTS_FORMAT', file }) as unknown as Error;
    t.match(err.message, msg);
  }
  fs.writeFileSync(file, '{"format": "ssl-inv-invariance/1", "kind": "synth');
  await t.rejects(writeReport(d), { code: 'ERR_RESULTS_FORMAT', file, message: /not JSON/ }, 'a truncated file');
  fs.writeFileSync(file, JSON.stringify({ ...synthetic('default', 'rotation', 0.5), format: 'someone-else/3' }));
  await t.rejects(writeReport(d), { code: 'ERR_FILE_NOT_FOUND' }, "another tool's JSON is left out, not an error");
});

t.test('NaN similarities (written as null) are shown, not fatal', async (t) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-report-nan-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  const r = synthetic('default', 'rotation', NaN);
  fs.writeFileSync(path.join(d, 'default_backbone_imagenet_rotation_invariance.json'), JSON.stringify(r));
  t.match(JSON.stringify(r), /"similarity":null/, 'JSON.stringify writes NaN as null');
  const out = await writeReport(d);
  t.match(fs.readFileSync(out.file, 'utf8'), /<td>NaN<\/td>/);
});

t.test('structural fuzz of result files: read, or refused with a code', async (t) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-report-fuzz-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  const inv = path.join(d, 'default_backbone_imagenet_rotation_invariance.json');
  const down = path.join(d, 'default_flowers_downstream.json');
  const downstream = { format: 'ssl-inv-downstream/1', model: 'default', dataset: 'flowers', metric: 'accuracy', probe: { testScore: 0.5, chosenC: 10 } };
  const rng = new FuzzRng(0x2e9027);
  const failures: string[] = [];
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    const a = synthetic('default', 'rotation', 0.5), b = structuredClone(downstream);
    const target = i % 3 === 2 ? b : a;
    for (let j = 0, n = 1 + rng.below(3); j < n; j++) mutateJson(target, rng);
    fs.writeFileSync(inv, JSON.stringify(a));
    fs.writeFileSync(down, JSON.stringify(b));
    try {
      await writeReport(d);
    } catch (e) {
      if (isSslInvError(e)) refused++;
      else failures.push(`mutant ${i}: ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  t.same(failures.slice(0, 3), [], `300 mutants, ${refused} refused with a code`);
  t.ok(refused > 50, 'the mutants reach the checks');
});
