// Model weights from safetensors files (io/safetensors-checkpoint.ts through loadCheckpoint):
//   1. The resnet18-plain fixture's state dict written as F32 safetensors (with a `module.` prefix and
//      timm's num_batches_tracked-less BN) gives the torch.save file's features bit for bit.
//   2. The same weights as BF16 (rounded to nearest even here) give the features of an F32 file
//      holding the rounded values, bit for bit: the widening (checked against torch's `.float()` in
//      safetensors.test.ts) is all a half-precision file changes.
//   3. `ssl-inv info` names the container; a damaged file is ERR_CHECKPOINT_CORRUPT naming the file
//      and the tensor; a tensor over maxTensorBytes is ERR_CHECKPOINT_UNSUPPORTED.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadFeatureExtractor } from '../../src/eval/model-loader';
import { encodeSafetensors } from '../../src/io/safetensors';
import { loadBackbone } from '../../src/io/state-dict';
import { loadCheckpoint } from '../../src/io/torch-checkpoint';
import { scope, tensor } from '../../src/tensor';
import { runCli } from '../helpers/cli';
import { fixtureInput, materializeCheckpoint, rowErrors } from '../helpers/model-fixtures';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-st-model-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** float32 -> bfloat16 bits, round to nearest even (torch's conversion; no NaNs in these weights). */
function toBf16Bits(v: Float32Array): Uint16Array {
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const b = bits[i]!;
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** A BF16 safetensors file by hand (encodeSafetensors writes what the caches need: no halves). */
function writeBf16(file: string, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
  const header: Record<string, unknown> = {};
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const b = Buffer.from(toBf16Bits(t.data).buffer);
    header[name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + b.length] };
    blobs.push(b);
    offset += b.length;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, ...blobs]));
}

function features(model: Awaited<ReturnType<typeof loadFeatureExtractor>>): Float32Array {
  const x = fixtureInput('x64');
  return scope(() => model.net.forward(tensor(x.data, x.shape)).toFloat32Array());
}

t.test('safetensors weights: the torch.save file\'s features, F32 bit for bit, BF16 as its widened values', async (t) => {
  const pth = await materializeCheckpoint('resnet18-plain');
  const backbone = await loadBackbone(pth);
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of backbone.tensors) {
    if (k.endsWith('num_batches_tracked')) continue;  // timm's files have none
    weights.set(k, { shape: v.shape, data: (await v.read()) as Float32Array });
  }
  const f32 = path.join(dir, 'resnet18.safetensors');
  fs.writeFileSync(f32, encodeSafetensors(new Map([...weights].map(([k, v]) => [`module.${k}`, v])), { format: 'pt' }));
  const fromPth = await loadFeatureExtractor(pth);
  const fromSt = await loadFeatureExtractor(f32);
  t.equal(fromSt.arch, 'resnet18', `architecture from the shapes (${fromSt.archSource})`);
  t.equal(fromSt.backbone.droppedPrefix, 'module.');
  const a = features(fromPth), b = features(fromSt);
  t.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `F32: ${a.length} features bit-identical to the .pth file's`);

  const bf16 = path.join(dir, 'resnet18-bf16.safetensors');
  writeBf16(bf16, weights);
  const rounded = new Map([...weights].map(([k, v]) => {
    const r = new Float32Array(v.data.length);
    new Uint32Array(r.buffer).set(Array.from(toBf16Bits(v.data), (h) => h << 16 >>> 0));
    return [k, { shape: v.shape, data: r }];
  }));
  const widened = path.join(dir, 'resnet18-rounded.safetensors');
  fs.writeFileSync(widened, encodeSafetensors(rounded));
  const c = features(await loadFeatureExtractor(bf16)), d = features(await loadFeatureExtractor(widened));
  t.ok(Buffer.from(c.buffer).equals(Buffer.from(d.buffer)), 'BF16: bit-identical to the F32 file of the rounded weights');
  const errs = rowErrors(c, a, fixtureInput('x64').shape[0]!);
  t.ok(errs.every((e) => e > 0 && e < 0.05), `and near the float32 weights' features (row errors ${errs.map((e) => e.toExponential(1)).join(', ')}): the rounding is real, not lost`);
  for (const m of [fromPth, fromSt]) m.net.dispose();

  const info = await runCli(['info', f32, '--json']);
  t.equal(info.code, 0, info.stderr);
  t.match(JSON.parse(info.stdout), { container: 'safetensors', arch: 'resnet18', kind: 'state_dict' });
});

t.test('damaged or oversized safetensors files are refused by name', async (t) => {
  const file = path.join(dir, 'small.safetensors');
  fs.writeFileSync(file, encodeSafetensors(new Map([['conv1.weight', { shape: [4, 4], data: new Float32Array(16) }]])));
  const ck = await loadCheckpoint(file);
  t.equal(ck.format, 'safetensors');
  await t.rejects(loadCheckpoint(file, { maxTensorBytes: 32 }), { code: 'ERR_CHECKPOINT_UNSUPPORTED', file, field: 'conv1.weight', message: /64 bytes, over the 32-byte limit/ });
  const cut = path.join(dir, 'cut.safetensors');
  fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, fs.statSync(file).size - 4));
  await t.rejects(loadCheckpoint(cut), { code: 'ERR_CHECKPOINT_CORRUPT', file: cut, field: 'conv1.weight' });
});
