// The HTML report: heatmap and per-transform plots from invariance results, and, when downstream
// results are there too, the transfer table and the invariance-vs-transfer scatter plot.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvarianceResult, RESULT_FORMAT } from '../../src/eval/results';
import { writeReport } from '../../src/report/html';

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
