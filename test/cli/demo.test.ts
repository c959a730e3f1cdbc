// `ssl-inv demo` on a small generated set: outputs exist, are deterministic, and views of one
// object are more alike than views of different objects (centred cosine).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNpySync } from '../../src/io/npy';
import { runCli } from '../helpers/cli';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-demo-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('demo runs and is deterministic', async (t) => {
  const args = (out: string) => ['demo', '--out-dir', out, '--objects', '4', '--views', '3', '--quiet'];
  const a = await runCli(args(path.join(dir, 'a')));
  t.equal(a.code, 0, a.stderr);
  t.match(a.stdout, /12 images of 4 objects, resnet18/);
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'a', 'summary.json'), 'utf8')) as {
    sameObjectCosine: number; differentObjectCosine: number; featureDim: number;
  };
  t.equal(summary.featureDim, 512);
  t.ok(summary.sameObjectCosine > summary.differentObjectCosine, `same ${summary.sameObjectCosine} > different ${summary.differentObjectCosine}`);
  const f = readNpySync(path.join(dir, 'a', 'features.npy'));
  t.same(f.shape, [12, 512]);
  t.same(readNpySync(path.join(dir, 'a', 'labels.npy')).shape, [12]);
  const b = await runCli(args(path.join(dir, 'b')));
  t.equal(b.code, 0);
  t.same(fs.readFileSync(path.join(dir, 'b', 'features.npy')), fs.readFileSync(path.join(dir, 'a', 'features.npy')), 'same seed, same bytes');
  const png = (d: string) => fs.readFileSync(path.join(dir, d, 'images', 'object_0', 'view_0.png'));
  t.same(png('b'), png('a'), 'images are byte-identical');
});
