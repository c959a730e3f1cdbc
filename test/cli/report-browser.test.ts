// The HTML report opens in a real browser: headless Chromium renders it to a screenshot. Runs where
// Debian's chromium is installed (apt-get install chromium) and is skipped elsewhere.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { renderReport } from '../../src/report/html';
import { InvarianceResult, RESULT_FORMAT } from '../../src/eval/results';

const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

t.test('headless Chromium renders the report', { skip: chromium ? false : 'chromium is not installed' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-browser-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mk = (model: string, transform: string, f: (x: number) => number): InvarianceResult => ({
    format: RESULT_FORMAT, kind: 'synthetic', model, models: [{ name: model, file: `${model}.pth.tar`, sha256: '0'.repeat(64), arch: 'resnet50' }],
    fuseMode: 'cat', featureLayer: 'backbone', dataset: 'imagenet', transform, paramName: 'angle (degrees)', originalIndex: 0,
    config: { numImages: 10 }, statistics: { file: 's', key: 'k', images: 100, cached: false }, device: 'cpu', precision: 'fp32',
    versions: {}, rows: Array.from({ length: 32 }, (_, j) => ({ id: j, param: j * 11.25, distance: 1 + j, similarity: f(j * 11.25) })),
    summary: { distance: 10, similarity: 0.5 }, created: '2026-11-28T00:00:00Z', seconds: 1,
  });
  const html = renderReport([mk('default', 'rotation', (a) => Math.cos((a * Math.PI) / 180)), mk('ventral', 'rotation', (a) => Math.cos((a * Math.PI) / 360))]);
  const page = path.join(dir, 'report.html'), shot = path.join(dir, 'shot.png');
  fs.writeFileSync(page, html);
  const r = spawnSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${path.join(dir, 'profile')}`,
    '--window-size=1000,900', `--screenshot=${shot}`, `file://${page}`], { timeout: 60_000 });
  t.ok(fs.existsSync(shot), `screenshot written (exit ${r.status})`);
  const stats = await sharp(shot).stats();
  const spread = stats.channels.map((c) => c.max - c.min);
  t.ok(spread.every((s) => s > 100), 'the page rendered with content (not blank)');
});
