// torchSave writes archives our loader reads back exactly (torch.load was checked by hand with
// torch 1.13: values, dtypes and the OrderedDict type come back); writes are atomic.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint } from '../../src/io/torch-checkpoint';
import { loadBackbone } from '../../src/io/state-dict';
import { PyDict, PyFloat, PyTuple, TorchTensor, archiveName, torchSave } from '../../src/io/torch-save';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-save-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('round trip of every dtype, nested containers and a state dict', async (t) => {
  const file = path.join(dir, 'a.pth.tar');
  const w = Float32Array.from({ length: 2 * 3 * 3 * 3 }, (_, i) => i / 7);
  const sd = new Map<string | number, TorchTensor>([
    ['module.encoder_q.conv1.weight', new TorchTensor('float32', [2, 3, 3, 3], w)],
    ['module.encoder_q.bn1.num_batches_tracked', new TorchTensor('int64', [], BigInt64Array.from([9n]))],
    ['d', new TorchTensor('float64', [2], Float64Array.from([0.1, 1e300]))],
    ['i', new TorchTensor('int32', [3], Int32Array.from([-1, 0, 2 ** 31 - 1]))],
    ['u', new TorchTensor('uint8', [2], Uint8Array.from([0, 255]))],
  ]);
  await torchSave(file, new PyDict(new Map<string | number, never>([
    ['epoch', 200 as never], ['arch', 'resnet18' as never], ['state_dict', sd as never],
    ['misc', new PyTuple([1, -5, 2 ** 40, 2.5, null, true, 'x', [1, 'a']]) as never],
    ['big', (2n ** 70n) as never], ['neg', (-(2n ** 63n)) as never],
  ])));
  t.same(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
  const ckpt = await loadCheckpoint(file);
  t.equal(ckpt.prefix, 'a.pth');
  const root = ckpt.root as Map<string, unknown>;
  t.equal(root.get('epoch'), 200);
  t.equal(root.get('arch'), 'resnet18');
  t.equal(root.get('big'), 2n ** 70n);
  t.equal(root.get('neg'), -(2n ** 63n));
  t.same(root.get('misc'), [1, -5, 2 ** 40, 2.5, null, true, 'x', [1, 'a']]);
  const state = root.get('state_dict') as Map<string, { read(): Promise<ArrayLike<unknown>>; shape: number[] }>;
  const conv = state.get('module.encoder_q.conv1.weight')!;
  t.same(conv.shape, [2, 3, 3, 3]);
  t.same(Array.from(await conv.read() as Float32Array), Array.from(w));
  t.same(Array.from(await state.get('d')!.read() as Float64Array), [0.1, 1e300]);
  t.same(Array.from(await state.get('i')!.read() as Int32Array), [-1, 0, 2 ** 31 - 1]);
  t.same(Array.from(await state.get('u')!.read() as Uint8Array), [0, 255]);
  t.same(Array.from(await state.get('module.encoder_q.bn1.num_batches_tracked')!.read() as BigInt64Array), [9n]);
  const bb = await loadBackbone(file);
  t.equal(bb.source, 'moco');
  t.equal(bb.arch, 'resnet18');
});

t.test('PyFloat pickles an integral value as a float, a plain number as an int', async (t) => {
  const file = path.join(dir, 'floats.pth');
  await torchSave(file, new PyDict(new Map<string | number, never>([['f', new PyFloat(1) as never], ['i', 1 as never], ['z', new PyFloat(0) as never]])));
  const bytes = fs.readFileSync(file);
  const float = (key: string, v: number) => {
    const b = Buffer.alloc(9);
    b[0] = 0x47; // BINFLOAT
    b.writeDoubleBE(v, 1);
    return Buffer.concat([Buffer.from(key), b]);
  };
  t.ok(bytes.includes(float('f', 1)), "'f': BINFLOAT 1.0");
  t.ok(bytes.includes(float('z', 0)), "'z': BINFLOAT 0.0");
  t.ok(bytes.includes(Buffer.from([0x69, 0x4b, 0x01])), "'i': BININT1 1");
  const root = (await loadCheckpoint(file)).root as Map<string, unknown>;
  t.same([root.get('f'), root.get('i'), root.get('z')], [1, 1, 0], 'all read back as numbers');
});

t.test('names and failures', async (t) => {
  t.equal(archiveName('/x/random.pth.tar'), 'random.pth');
  t.equal(archiveName('model'), 'model');
  const file = path.join(dir, 'keep.pth');
  fs.writeFileSync(file, 'old');
  await t.rejects(torchSave(file, new Map([['x', Symbol('no') as never]])), { code: 'ERR_INVALID_ARGUMENT' });
  t.equal(fs.readFileSync(file, 'utf8'), 'old', 'a failed save leaves the old file');
  await t.rejects(torchSave(path.join(dir, 'missing', 'x.pth'), new Map()), { code: 'ERR_FILE_WRITE' });
  t.throws(() => new TorchTensor('float32', [2, 2], new Float32Array(3)), { code: 'ERR_SHAPE_MISMATCH' });
});
