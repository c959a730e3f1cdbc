// NaN and infinities refused where they would spoil results silently (RELIABILITY §7, row 32):
// firstNonFinite itself; a checkpoint whose weights hold one is refused by the evaluators' loader
// naming the file and the tensor; a MoCo checkpoint is neither written with one (the file keeps its
// previous contents) nor resumed from one, and `--resume latest` passes over such a file.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstNonFinite } from '../../src/io/finite';
import { torchSave } from '../../src/io/torch-save';
import { loadFeatureExtractor } from '../../src/eval/model-loader';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { MocoV2 } from '../../src/train/moco';
import { freshMocoInit } from '../../src/train/moco-init';
import { loadMocoCheckpoint, saveMocoCheckpoint } from '../../src/train/moco-checkpoint';
import { findLatestMocoCheckpoint } from '../../src/train/latest-checkpoint';
import { SGD } from '../../src/optim/sgd';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-finite-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('firstNonFinite', async (t) => {
  t.equal(firstNonFinite(Float32Array.from([0, -1, 3.4028234e38, -0])), -1, 'finite values, the largest float32 included');
  t.equal(firstNonFinite(Float32Array.from([1, 2, NaN, Infinity])), 2);
  t.equal(firstNonFinite(Float32Array.from([1, -Infinity])), 1);
  t.equal(firstNonFinite(Float64Array.from([1e300, Infinity])), 1);
  t.equal(firstNonFinite(new Float32Array(0)), -1);
});

t.test("the evaluators' loader refuses NaN or infinite weights, naming the file and the tensor", async (t) => {
  for (const [key, bad, index] of [['layer2.0.conv1.weight', NaN, 17], ['bn1.running_var', Infinity, 3]] as const) {
    const sd = torchvisionInitStateDict('resnet18', 1);
    const v = sd.get(key)!;
    (v.data as Float32Array)[index] = bad;
    const file = path.join(dir, `bad-${key}.pth`);
    await torchSave(file, sd);
    await t.rejects(loadFeatureExtractor(file), {
      code: 'ERR_NON_FINITE', file, field: key,
      message: new RegExp(`holds ${bad} \\(at index ${index} of ${v.data.length}\\): .*diverged`),
    }, `${bad} in ${key}`);
  }
  const good = path.join(dir, 'good.pth');
  await torchSave(good, torchvisionInitStateDict('resnet18', 1));
  const m = await loadFeatureExtractor(good);
  t.equal(m.arch, 'resnet18', 'the same state dict without it loads');
  m.net.dispose();
});

t.test('MoCo checkpoints: never written with NaN, never resumed from one', async (t) => {
  const cfg = { arch: 'resnet18' as const, dim: 8, K: 16, m: 0.999, T: 0.2, mlp: true };
  const moco = await MocoV2.create(cfg, freshMocoInit('resnet18', 8, 16, true, 0));
  const sgd = new SGD({ lr: 0.03, momentum: 0.9, weightDecay: 1e-4 });
  t.teardown(() => { moco.dispose(); sgd.dispose(); });
  const run = path.join(dir, 'run');
  fs.mkdirSync(run);
  const older = path.join(run, 'default_0000.pth.tar'), newer = path.join(run, 'default_0001.pth.tar');
  await saveMocoCheckpoint(older, moco, sgd, 1);
  await saveMocoCheckpoint(newer, moco, sgd, 2);
  const before = fs.readFileSync(newer);

  // A NaN in a parameter of encoder_k (written back through the tensor the model owns).
  const w = moco.get('encoder_k.layer3.1.bn2.bias');
  const values = w.toFloat32Array();
  values[5] = NaN;
  w.write(values);
  await t.rejects(saveMocoCheckpoint(newer, moco, sgd, 2), {
    code: 'ERR_NON_FINITE', file: newer, field: 'module.encoder_k.layer3.1.bn2.bias', message: /holds NaN \(at index 5 of 256\): no checkpoint is written/,
  }, 'the save is refused, naming the file and the tensor');
  t.ok(fs.readFileSync(newer).equals(before), 'the file keeps its previous contents');
  t.same(fs.readdirSync(run).sort(), ['default_0000.pth.tar', 'default_0001.pth.tar'], 'and no temp file is left');

  // A NaN that reached a checkpoint by another writer (main_moco.py saves whatever it has): written
  // here by torchSave directly, then refused by the resume path, and passed over by --resume latest.
  const { mocoCheckpointValue } = await import('../../src/train/moco-checkpoint');
  values[5] = 0;
  w.write(values);
  const value = mocoCheckpointValue(moco, sgd, 2);
  const sd = (value as unknown as { entries: Map<string, unknown> }).entries.get('state_dict') as Map<string, { data: Float32Array }>;
  sd.get('module.encoder_q.conv1.weight')!.data[0] = -Infinity;
  await torchSave(newer, value);
  await t.rejects(loadMocoCheckpoint(newer), { code: 'ERR_NON_FINITE', file: newer, field: 'module.encoder_q.conv1.weight' }, 'resuming from it is refused');
  const notices: string[] = [];
  const found = await findLatestMocoCheckpoint(run, 'default', 'resnet18', (l) => notices.push(l));
  t.equal(found?.file, older, '--resume latest takes the checkpoint before it');
  t.match(notices.join('\n'), /ERR_NON_FINITE: .*default_0001\.pth\.tar.*-Infinity.*trying the checkpoint before it/);

  // Not about NaN, but about the same writer: main_moco.py's --lr 1, --momentum 0 and --wd 0 are
  // Python floats in the optimiser's state dict; a plain integral number would pickle as an int.
  const whole = new SGD({ lr: 1, momentum: 0, weightDecay: 0 });
  t.teardown(() => whole.dispose());
  const floats = path.join(dir, 'floats.pth.tar');
  await torchSave(floats, mocoCheckpointValue(moco, whole, 1));
  const bytes = fs.readFileSync(floats);
  const binfloat = (key: string, v: number) => {
    const b = Buffer.alloc(9);
    b[0] = 0x47;
    b.writeDoubleBE(v, 1);
    return Buffer.concat([Buffer.from(key), b]);
  };
  for (const [key, v] of [['lr', 1], ['momentum', 0], ['weight_decay', 0]] as const) t.ok(bytes.includes(binfloat(key, v)), `${key}: BINFLOAT ${v}.0`);
  t.ok(bytes.includes(Buffer.concat([Buffer.from('dampening'), Buffer.from([0x4b, 0])])), "dampening: SGD's default, BININT1 0");
});
