// Quirks of the original scripts that no golden fixture reaches: model_utils.ModelCombiner's fusion of
// `a+b+c` models (cat in name order; add as Python's sum() in float32; mean as that sum / count),
// eval_causal3dident.py's sample counts (int(4096 c / batch) batches, 100 with --quick, or the whole
// split), and main_moco.py's `_w3` checkpoint names.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelPart, NamedModel, loadNamedModel } from '../../src/eval/models';
import { causal3dIdentSampleCount } from '../../src/eval/downstream-run';
import { torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { tensor } from '../../src/tensor';
import { checkpointName } from '../../src/train/moco-checkpoint';
import { randomArray } from '../helpers/reference';

t.test("ModelCombiner: cat in name order, add and mean as the original's float32 sum", async (t) => {
  const ckptDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-fuse-'));
  t.teardown(() => fs.rmSync(ckptDir, { recursive: true, force: true }));
  for (const [name, seed] of [['a', 1], ['b', 2], ['c', 3]] as const) {
    await torchSave(path.join(ckptDir, `${name}.pth.tar`), torchvisionInitStateDict('resnet18', seed));
  }
  const n = 2, d = 512;
  const x = tensor(randomArray(n * 3 * 32 * 32, 5), [n, 3, 32, 32]);
  // One load of the three checkpoints (in the name's order); the other fusions share its parts.
  const loaded = await loadNamedModel('c+a+b', { ckptDir, fuseMode: 'cat' });
  t.teardown(() => loaded.dispose());
  t.same(loaded.parts.map((p) => p.name), ['c', 'a', 'b'], "the parts in the name's order");
  const [pc, pa, pb] = loaded.parts as [ModelPart, ModelPart, ModelPart];
  const single = (p: ModelPart) => new NamedModel(p.name, [p], 'cat').features(x);
  const order = [single(pc), single(pa), single(pb)];
  const cat = loaded.features(x);
  t.equal(loaded.featureDim, 3 * d, 'cat: the widths add up');
  const catExpected = new Float32Array(n * 3 * d);
  for (let r = 0; r < n; r++) order.forEach((f, k) => catExpected.set(f.subarray(r * d, (r + 1) * d), r * 3 * d + k * d));
  t.ok(Buffer.from(cat.buffer).equals(Buffer.from(catExpected.buffer)), "cat: each row is c's, a's, b's features, in the name's order");
  // sum(features) = ((0 + c) + a) + b, each addition rounded to float32; mean divides that by 3.
  const sum = new Float32Array(n * d);
  for (let i = 0; i < sum.length; i++) sum[i] = Math.fround(Math.fround(order[0]![i]! + order[1]![i]!) + order[2]![i]!);
  const add = new NamedModel('c+a+b', loaded.parts, 'add');
  t.equal(add.featureDim, d);
  const added = add.features(x);
  t.ok(Buffer.from(added.buffer).equals(Buffer.from(sum.buffer)), 'add: bit for bit the float32 sum, left to right');
  const mean = new NamedModel('c+a+b', loaded.parts, 'mean').features(x);
  t.ok(Buffer.from(mean.buffer).equals(Buffer.from(Float32Array.from(sum, (v) => Math.fround(v / 3)).buffer)), 'mean: that sum / 3 in float32');
  // The sum's order matters in float32: a+b+c and c+a+b differ somewhere, so the test would see a reordering.
  const abc = new NamedModel('a+b+c', [pa, pb, pc], 'add').features(x);
  t.notOk(Buffer.from(abc.buffer).equals(Buffer.from(added.buffer)), 'a+b+c sums in another order (some values differ in the last bit)');
});

t.test("eval_causal3dident.py's sample counts", async (t) => {
  t.equal(causal3dIdentSampleCount(50_000, 5, 256, false), 20_480, 'trainval: 80 batches of 256');
  t.equal(causal3dIdentSampleCount(50_000, 10, 256, false), 40_960, 'test: 160 batches of 256');
  t.equal(causal3dIdentSampleCount(50_000, 5, 100, false), 20_400, 'int(204.8) = 204 batches of 100');
  t.equal(causal3dIdentSampleCount(50_000, 5, 64, true), 6_400, '--quick: 100 batches (of 320)');
  t.equal(causal3dIdentSampleCount(50_000, 5, 512, true), 20_480, '--quick with fewer than 100 batches: all 40');
  t.equal(causal3dIdentSampleCount(1_000, 10, 256, false), 1_000, 'a split smaller than that: all of it (the loader runs out)');
  t.equal(causal3dIdentSampleCount(20_000, 5, 8192, false), 16_384, 'int(2.5) = 2 batches');
});

t.test("main_moco.py's checkpoint names", async (t) => {
  t.equal(checkpointName('default', 'resnet50', 0), 'default_0000.pth.tar');
  t.equal(checkpointName('ventral', 'resnet50w3', 199), 'ventral_w3_0199.pth.tar', '_w3 for the widened networks');
  t.equal(checkpointName('dorsal', 'resnet18w3', 12345), 'dorsal_w3_12345.pth.tar', 'an epoch past 9999 keeps all its digits');
});
