// Pearson's r and Spearman's rho (eval/correlation.ts) against scipy.stats 1.10
// (test/fixtures/eval/correlation.json, make_correlation_fixtures.py): ties, perfect and negative
// correlations, n = 2 and 3, a constant vector (NaN), random vectors; within 1e-12.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pearson, rankAverage, spearman } from '../../src/eval/correlation';

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'eval', 'correlation.json'), 'utf8')) as
  { cases: { x: number[]; y: number[]; ranks: number[]; pearson: number | null; spearman: number | null }[] };

t.test('as scipy.stats computes them', async (t) => {
  t.ok(fixture.cases.length >= 7);
  fixture.cases.forEach((c, i) => {
    t.same(rankAverage(c.x), c.ranks, `case ${i}: rankdata's average ranks`);
    for (const [name, f, want] of [['pearson', pearson, c.pearson], ['spearman', spearman, c.spearman]] as const) {
      const got = f(c.x, c.y);
      if (want === null) t.ok(Number.isNaN(got), `case ${i}: ${name} is NaN for a constant vector`);
      else t.ok(Math.abs(got - want) <= 1e-12, `case ${i}: ${name} ${got} vs scipy ${want}`);
    }
  });
  t.ok(Number.isNaN(pearson([1], [2])), 'one value: NaN');
  t.throws(() => spearman([1, 2], [1]), { code: 'ERR_SHAPE_MISMATCH' });
});
