// numpy's legacy RandomState reproduced draw for draw (golden draws from numpy 1.24).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RandomState } from '../../src/random/mt19937';

const g = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'random', 'numpy-legacy.json'), 'utf8')) as Record<string, number[]>;

t.test('the original image sampling: np.random.seed(0); np.random.choice(np.arange(n), k)', async (t) => {
  t.same(new RandomState(0).choice(50000, 10), g.choice50000);
  t.same(new RandomState(0).choice(7, 20), g.choice7);
});

t.test('rand, randint, shuffle', async (t) => {
  t.same(Array.from(new RandomState(12345).rand(5)), g.rand12345);
  t.same(new RandomState(0).randint(0, 1000, 8), g.randint0);
  const p = Array.from({ length: 11 }, (_, i) => i);
  new RandomState(3).shuffle(p);
  t.same(p, g.shuffle3);
  t.same(Array.from(new RandomState(4294967295).rand(3)), g.sample_max);
  const r = new RandomState(0);
  const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 1e-15 * Math.abs(b[i]!));
  t.ok(close(Array.from({ length: 7 }, () => r.standardNormal()), g.normal0!), 'standard_normal (polar Box-Muller)');
  t.ok(close(Array.from({ length: 3 }, () => r.uniform(-2, 3)), g.uniform!), 'uniform');
  t.ok(close(Array.from({ length: 2 }, () => r.standardNormal()), g.normal_after!), 'the cached normal comes first');
  t.throws(() => new RandomState(-1));
  t.throws(() => new RandomState(2 ** 32));
});
