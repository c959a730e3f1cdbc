// The HTML report: heatmap and per-transform plots from invariance results, and, when downstream
// results are there too, the transfer table and the invariance-vs-transfer scatter plot. Result files
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
