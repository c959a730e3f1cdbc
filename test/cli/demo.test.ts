// `ssl-inv demo` on a small generated set: all 18 transforms and the real-world-style evaluation
// run, results and the report are written, a second run reuses the cached statistics and gives the
// same numbers.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { SYNTHETIC_TRANSFORMS } from '../../src/transforms/grid';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-demo-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('the demo runs the whole study and is deterministic', async (t) => {
  const out = path.join(dir, 'demo');
  // 37 x 14 = 518 images: just over ResNet-18's 512 feature dimensions.
  // --arch explicit: on a GPU (the default device there) the demo's default becomes ResNet-50.
  const args = ['demo', '--out-dir', out, '--arch', 'resnet18', '--objects', '37', '--views', '14', '--k', '4', '--num-images', '1', '--quiet'];
  const a = await runCli(args);
  t.equal(a.code, 0, a.stderr);
  t.match(a.stdout, /518 images of 37 objects; model random \(resnet18/);
  for (const tr of SYNTHETIC_TRANSFORMS) t.match(a.stdout, new RegExp(`^${tr}\\s+\\d+\\s+[-0-9.]+\\s+[-0-9.]+$`, 'm'), tr);
  t.match(a.stdout, /^real-world\s+37\s/m);
  const results = path.join(out, 'results');
  const jsons = fs.readdirSync(results).filter((n) => n.endsWith('_invariance.json'));
  t.equal(jsons.length, 19, '18 synthetic + 1 real-world result files');
  t.equal(fs.readdirSync(results).filter((n) => n.endsWith('_invariance.csv')).length, 19);
  const html = fs.readFileSync(path.join(results, 'report.html'), 'utf8');
  t.match(html, /<svg/);
  t.match(html, /Similarity: models x transforms/);
  t.ok(fs.existsSync(path.join(out, 'models', 'random.pth.tar')), 'the random model is saved');
  const rot = JSON.parse(fs.readFileSync(path.join(results, 'random_backbone_demo_rotation_invariance.json'), 'utf8'));
  t.equal(rot.statistics.cached, false);
  t.equal(rot.statistics.images, 518);
  t.equal(rot.rows.length, 4);
  const b = await runCli(args);
  t.equal(b.code, 0, b.stderr);
  t.equal(b.stdout.replace(/time: .*/, ''), a.stdout.replace(/time: .*/, ''), 'same numbers on a second run');
  const rot2 = JSON.parse(fs.readFileSync(path.join(results, 'random_backbone_demo_rotation_invariance.json'), 'utf8'));
  t.equal(rot2.statistics.cached, true, 'the second run reuses the statistics');
});
