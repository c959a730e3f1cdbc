// loadBackbone: MoCo checkpoints (real torch 1.13 file), bare state dicts, `state_dict` wrappers,
// `module.`/`backbone.` prefixes; checkStateDict: missing/extra keys and shape mismatches (RELIABILITY §7 #16).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackbone, checkStateDict, LazyTensor } from '../../src/io/state-dict';
import { torchZip } from '../helpers/zip-writer';
import { pk, PickleWriter } from '../helpers/pickle-writer';

const FIX = path.join(__dirname, '..', 'fixtures', 'io');
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'torch_expected.json'), 'utf8')) as {
  moco: Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
function write(buf: Buffer): string {
  const f = path.join(dir, `c${n++}.pth`);
  fs.writeFileSync(f, buf);
  return f;
}

/** A checkpoint whose state dict maps each name to a small float tensor of the given shape. */
function ckpt(names: [string, number[]][], wrap?: (w: PickleWriter, sd: (w: PickleWriter) => void) => void): string {
  const storages: Record<string, Uint8Array> = {};
  const sd = (w: PickleWriter) => {
    w.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    names.forEach(([name, shape], i) => {
      const numel = shape.reduce((a, b) => a * b, 1);
      const stride = shape.map((_, k) => shape.slice(k + 1).reduce((a, b) => a * b, 1));
      storages[String(i)] = new Uint8Array(new Float32Array(numel).fill(i).buffer);
      w.str(name).tensor({ key: String(i), numel, size: shape, stride });
    });
    w.setitems();
  };
  const w = pk().proto(2);
  if (wrap) wrap(w, sd);
  else sd(w);
  return write(torchZip(w.stop().bytes(), storages));
}

const RESNET_ISH: [string, number[]][] = [
  ['conv1.weight', [4, 3, 3, 3]], ['bn1.weight', [4]], ['bn1.bias', [4]], ['bn1.running_mean', [4]], ['bn1.running_var', [4]],
  ['bn1.num_batches_tracked', []], ['layer1.0.conv1.weight', [4, 4, 1, 1]],
];

t.test('a real MoCo checkpoint: encoder_q without fc, arch and epoch', async (t) => {
  const b = await loadBackbone(path.join(FIX, 'moco_tiny.pth.tar'));
  t.equal(b.source, 'moco');
  t.equal(b.arch, 'resnet50');
  t.equal(b.epoch, 200);
  t.equal(b.droppedPrefix, 'module.encoder_q.');
  t.same([...b.tensors.keys()].sort(), Object.keys(expected.moco).sort(), 'encoder_q trunk keys, torchvision names, fc.* removed');
  t.same([...b.tensors.keys()].slice(0, 2), ['conv1.weight', 'bn1.weight'], 'checkpoint order kept');
  for (const [k, exp] of Object.entries(expected.moco)) {
    const tt = b.tensors.get(k)!;
    t.same(tt.shape, exp.shape, `${k}: shape`);
    const a = await tt.read();
    t.same(Array.from(a as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v)), exp.values, `${k}: values`);
  }
  const shapes = new Map(Object.entries(expected.moco).map(([k, v]) => [k, v.shape]));
  t.doesNotThrow(() => checkStateDict(b.tensors, shapes, { file: 'moco_tiny.pth.tar' }));
});

t.test('MoCo without the module. prefix (single-GPU training)', async (t) => {
  const f = ckpt([['encoder_q.conv1.weight', [2, 3, 1, 1]], ['encoder_q.fc.weight', [5, 2]], ['encoder_k.conv1.weight', [2, 3, 1, 1]], ['queue', [5, 8]]],
    (w, sd) => { w.emptyDict().str('arch').str('resnet18').setitem().str('state_dict'); sd(w); w.setitem(); });
  const b = await loadBackbone(f);
  t.equal(b.source, 'moco');
  t.equal(b.arch, 'resnet18');
  t.equal(b.droppedPrefix, 'encoder_q.');
  t.same([...b.tensors.keys()], ['conv1.weight']);
  t.same(Array.from((await b.tensors.get('conv1.weight')!.read()) as Float32Array), [0, 0, 0, 0, 0, 0]);
});

t.test('bare state dicts, state_dict wrappers, module. and backbone. prefixes', async (t) => {
  const bare = await loadBackbone(ckpt([...RESNET_ISH, ['fc.weight', [10, 4]], ['fc.bias', [10]]]));
  t.equal(bare.source, 'state_dict');
  t.equal(bare.droppedPrefix, undefined);
  t.same([...bare.tensors.keys()], RESNET_ISH.map(([k]) => k), 'fc removed');
  t.equal(bare.arch, undefined);

  const dp = await loadBackbone(ckpt(RESNET_ISH.map(([k, s]) => [`module.${k}`, s])));
  t.equal(dp.droppedPrefix, 'module.');
  t.same([...dp.tensors.keys()], RESNET_ISH.map(([k]) => k));

  const wrapped = await loadBackbone(ckpt(RESNET_ISH, (w, sd) => {
    w.emptyDict().str('epoch').int(7).setitem().str('arch').str('resnet50').setitem().str('state_dict');
    sd(w);
    w.setitem();
  }));
  t.equal(wrapped.source, 'state_dict');
  t.equal(wrapped.epoch, 7);
  t.equal(wrapped.arch, 'resnet50');
  t.equal(wrapped.tensors.size, RESNET_ISH.length);

  const bb = await loadBackbone(ckpt([...RESNET_ISH.map(([k, s]): [string, number[]] => [`module.backbone.${k}`, s])]));
  t.equal(bb.droppedPrefix, 'module.backbone.');
  t.same([...bb.tensors.keys()], RESNET_ISH.map(([k]) => k));

  const heads = await loadBackbone(ckpt([...RESNET_ISH.map(([k, s]): [string, number[]] => [`backbone.${k}`, s]), ['head.fc.weight', [3, 4]]]));
  t.equal(heads.droppedPrefix, 'backbone.');
  t.same([...heads.tensors.keys()], RESNET_ISH.map(([k]) => k), 'heads dropped');
});

t.test('checkpoints that hold no usable state dict', async (t) => {
  const list = write(torchZip(pk().proto(2).emptyList().stop().bytes(), {}));
  await t.rejects(loadBackbone(list), { code: 'ERR_CHECKPOINT_KEYS', file: list, message: /holds a list/ });
  const noTensors = write(torchZip(pk().proto(2).emptyDict().str('epoch').int(1).setitem().stop().bytes(), {}));
  await t.rejects(loadBackbone(noTensors), { code: 'ERR_CHECKPOINT_KEYS', file: noTensors, message: /no state dict found.*\[epoch\]/ });
  const sdNotDict = write(torchZip(pk().proto(2).emptyDict().str('state_dict').int(1).setitem().stop().bytes(), {}));
  await t.rejects(loadBackbone(sdNotDict), { code: 'ERR_CHECKPOINT_KEYS', file: sdNotDict, field: 'state_dict' });
  const nonTensor = ckpt(RESNET_ISH, (w, sd) => {
    w.emptyDict().str('state_dict');
    sd(w);
    w.setitem();
  });
  t.ok(await loadBackbone(nonTensor));
  const withStr = write(torchZip(pk().proto(2).emptyDict().str('state_dict').emptyDict().str('conv1.weight').str('oops').setitem().setitem().stop().bytes(), {}));
  await t.rejects(loadBackbone(withStr), { code: 'ERR_CHECKPOINT_KEYS', file: withStr, message: /'conv1.weight' is a str, not a tensor/ });
  const evil = write(torchZip(pk().proto(2).global('os', 'system').str('true').tuple1().reduce().stop().bytes(), {}));
  await t.rejects(loadBackbone(evil), { code: 'ERR_CHECKPOINT_UNSAFE', file: evil });
  await t.rejects(loadBackbone(path.join(FIX, 'torchscript.pt')), { code: 'ERR_CHECKPOINT_UNSUPPORTED' });
});

t.test('checkStateDict lists missing keys, unexpected keys and shape mismatches', async (t) => {
  const fake = (shape: number[]): LazyTensor => ({ dtype: 'float32', shape, read: async () => new Float32Array(0) });
  const expectedShapes = new Map<string, number[]>(RESNET_ISH);
  const good = new Map<string, LazyTensor>(RESNET_ISH.map(([k, s]) => [k, fake(s)]));
  const opt = { file: '/w/ckpt.pth', optional: (k: string) => k.endsWith('num_batches_tracked') };
  t.doesNotThrow(() => checkStateDict(good, expectedShapes, opt));
  const noNbt = new Map(good);
  noNbt.delete('bn1.num_batches_tracked');
  t.doesNotThrow(() => checkStateDict(noNbt, expectedShapes, opt), 'num_batches_tracked optional');
  t.throws(() => checkStateDict(noNbt, expectedShapes, { file: '/w/ckpt.pth' }), { code: 'ERR_CHECKPOINT_KEYS', message: /1 missing key: bn1.num_batches_tracked/ }, 'not optional without the predicate');

  const bad = new Map(good);
  bad.delete('conv1.weight');
  bad.set('bn1.weight', fake([5]));
  bad.set('extra.thing', fake([1]));
  bad.set('layer9.0.num_batches_tracked', fake([]));
  const err = t.throws(() => checkStateDict(bad, expectedShapes, opt), { code: 'ERR_CHECKPOINT_KEYS', file: '/w/ckpt.pth' }) as unknown as Error;
  t.match(err.message, '/w/ckpt.pth');
  t.match(err.message, /1 missing key: conv1\.weight/);
  t.match(err.message, /1 unexpected key: extra\.thing/);
  t.match(err.message, /1 shape mismatch: bn1\.weight: expected \[4\], found \[5\]/);
  t.notMatch(err.message, /layer9/, 'optional extras are not listed');

  const many = new Map<string, LazyTensor>();
  for (let i = 0; i < 45; i++) many.set(`junk.${i}`, fake([1]));
  const big = t.throws(() => checkStateDict(many, expectedShapes, opt)) as unknown as Error;
  t.match(big.message, /6 missing keys: /);
  t.match(big.message, /45 unexpected keys: junk\.0, .*junk\.19, \.\.\. and 25 more/);
  t.notMatch(big.message, /junk\.20/, 'capped at 20');
  const rank = new Map(good);
  rank.set('conv1.weight', fake([4, 3, 9]));
  t.throws(() => checkStateDict(rank, expectedShapes, opt), { message: /conv1\.weight: expected \[4, 3, 3, 3\], found \[4, 3, 9\]/ });
});
