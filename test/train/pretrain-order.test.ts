// The pre-training schedule's pure parts: each epoch's image order (a seeded permutation that
// changes from epoch to epoch and run to run, and is the same when recomputed, which resume relies
// on) and main_moco.py's learning-rate rule.
import t from 'tap';
import { epochOrder, learningRate } from '../../src/train/pretrain';

t.test('epoch order', async (t) => {
  const a = epochOrder(0, 0, 50);
  t.same([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i), 'a permutation of the images');
  t.same(epochOrder(0, 0, 50), a, 'recomputed the same (a resumed run sees the same batches)');
  t.notSame(epochOrder(0, 1, 50), a, 'another epoch, another order');
  t.notSame(epochOrder(1, 0, 50), a, 'another seed, another order');
});

t.test('learning rate', async (t) => {
  const o = { lr: 0.03, epochs: 200, schedule: [120, 160], cos: false };
  t.equal(learningRate(o, 119), 0.03);
  t.ok(Math.abs(learningRate(o, 120) - 0.003) < 1e-15 && Math.abs(learningRate(o, 160) - 0.0003) < 1e-15, 'x0.1 at each milestone');
  t.equal(learningRate({ ...o, cos: true }, 0), 0.03);
  t.ok(Math.abs(learningRate({ ...o, cos: true }, 100) - 0.015) < 1e-15, 'cosine: half way, half the rate');
});
