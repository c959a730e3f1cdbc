// The pre-training schedule's pure parts: each epoch's image order (a seeded permutation that
// changes from epoch to epoch and run to run, and is the same when recomputed, which resume relies
// on), main_moco.py's learning-rate rule, and which images make each step: one process's drop_last
// batches, or DistributedSampler's padded, strided shares on N GPUs (--bn-splits N).
import t from 'tap';
import { epochOrder, learningRate, stepImages, stepPositions, stepsPerEpoch } from '../../src/train/pretrain';

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

t.test('the images of each step, on one GPU and as DistributedSampler deals them to N', async (t) => {
  const order = [10, 11, 12, 13, 14, 15, 16];
  t.equal(stepsPerEpoch(7, 4), 1, 'one process: floor(7 / 4), the remainder dropped');
  t.same(stepImages(order, 0, 4), [10, 11, 12, 13]);
  // 2 GPUs: the order padded to 8 with its first image; rank 0 takes positions 0, 2, 4, 6 and rank
  // 1 positions 1, 3, 5, 7; each rank's loader takes 2 per step: 2 steps where one process has 1.
  t.equal(stepsPerEpoch(7, 4, 2), 2, 'floor(ceil(7 / 2) / 2)');
  t.same(stepImages(order, 0, 4, 2), [10, 12, 11, 13], "step 0: rank 0's two, then rank 1's");
  t.same(stepImages(order, 1, 4, 2), [14, 16, 15, 10], 'step 1: the padding repeats the first image');
  t.same(stepPositions(1, 4, 2), [4, 6, 5, 7], 'at padded position 7 (7 / 7 = 1: a repeat, whose views get draws of their own)');
  t.equal(stepsPerEpoch(1281167, 256, 8), 5004, 'ImageNet on 8 GPUs at batch 256');
  t.equal(stepsPerEpoch(9, 4, 2), 2);
  t.equal(stepsPerEpoch(3, 4, 2), 1, '3 images, padded to 4: one step of 2 + 2');
  t.same(stepImages([5, 6, 7], 0, 4, 2), [5, 7, 6, 5]);
  const big = epochOrder(3, 0, 100);
  const seen = new Set<number>();
  for (let s = 0; s < stepsPerEpoch(100, 8, 4); s++) for (const i of stepImages(big, s, 8, 4)) seen.add(i);
  t.equal(seen.size, 96, 'N | n: every image of the 12 whole steps once (100 = 4 x 25; 25 // 2 = 12 steps of 8)');
});
