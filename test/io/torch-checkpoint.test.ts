// loadCheckpoint: real torch 1.13 files (zip and legacy), lazy strided reads, and RELIABILITY §7 #1-#3,
// #7, #9-#15, #17 on checkpoints built in the test (zip writer, pickle writer, byte surgery).
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint, gatherTensor, CheckpointTensor, MAX_ZIP_FORMAT_VERSION } from '../../src/io/torch-checkpoint';
import { OrderedDict, PyValue, isTensor } from '../../src/io/pickle';
import { ZipArchive } from '../../src/io/zip';
import { buildZip, torchZip } from '../helpers/zip-writer';
import { pk, stateDictPickle } from '../helpers/pickle-writer';

const FIX = path.join(__dirname, '..', 'fixtures', 'io');
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'torch_expected.json'), 'utf8')) as {
  state: Record<string, { dtype: string; shape: number[]; stride: number[]; offset: number; values: (number | string)[] }>;
  state_keys: string[];
  state_metadata_keys: string[];
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let counter = 0;
function write(buf: Uint8Array, ext = '.pth'): string {
  const f = path.join(dir, `f${counter++}${ext}`);
  fs.writeFileSync(f, buf);
  return f;
}

function vals(a: ArrayLike<unknown>): (number | string)[] {
  return Array.from(a as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v));
}

async function refuseLoad(t: Test, file: string, code: string, msg: RegExp, name: string): Promise<void> {
  let err: unknown;
  try {
    await loadCheckpoint(file);
  } catch (e) {
    err = e;
  }
  t.ok(err, `${name}: refused`);
  t.equal((err as { code?: string })?.code, code, `${name}: code (${(err as Error)?.message})`);
  t.equal((err as { file?: string })?.file, file, `${name}: file`);
  t.match((err as Error)?.message ?? '', msg, `${name}: message`);
  t.match((err as Error)?.message ?? '', file, `${name}: message names the file`);
}

const ckptZip = torchZip;

const f32 = (...xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);
const ONE = stateDictPickle([{ name: 'w', key: '0', numel: 6, size: [2, 3], stride: [3, 1] }]);

/** Reads every record of a real torch zip. */
async function entriesOf(file: string): Promise<{ name: string; data: Buffer }[]> {
  const za = await ZipArchive.open(file);
  const out = [];
  for (const name of za.names()) out.push({ name, data: await za.read(name) });
  await za.close();
  return out;
}

async function checkState(t: Test, file: string, format: 'zip' | 'legacy'): Promise<void> {
  const c = await loadCheckpoint(file);
  t.equal(c.format, format);
  t.equal(c.file, file);
  t.equal(c.byteorder, 'little');
  t.ok(c.root instanceof OrderedDict, 'a module state dict is an OrderedDict');
  const root = c.root as OrderedDict;
  t.same([...root.keys()], expected.state_keys, 'keys in order');
  t.same([...(root.attrs.get('_metadata') as Map<string, PyValue>).keys()], expected.state_metadata_keys, '_metadata from BUILD');
  for (const [k, exp] of Object.entries(expected.state)) {
    const v = root.get(k) as CheckpointTensor;
    t.ok(isTensor(v), `${k} is a tensor`);
    t.equal(v.dtype, exp.dtype, `${k}: dtype`);
    t.same(v.shape, exp.shape, `${k}: shape`);
    t.same(v.stride, exp.stride, `${k}: stride`);
    t.equal(v.storageOffset, exp.offset, `${k}: offset`);
    const a = await v.read();
    t.same(vals(a), exp.values, `${k}: values (${format})`);
    t.equal(a.length, exp.shape.reduce((x, y) => x * y, 1));
  }
  const w = root.get('view.w') as CheckpointTensor;
  t.equal((root.get('view.w_t') as CheckpointTensor).storage, w.storage, 'a view shares its storage');
  t.equal((root.get('view.sub') as CheckpointTensor).storageKey, w.storageKey);
  t.equal((await (root.get('dt.f16') as CheckpointTensor).read()).constructor, Float32Array, 'half widened to float32');
  t.equal((await (root.get('dt.bf16') as CheckpointTensor).read()).constructor, Float32Array, 'bfloat16 widened');
  t.equal((await (root.get('dt.i64') as CheckpointTensor).read()).constructor, BigInt64Array);
  t.equal((await (root.get('dt.i16') as CheckpointTensor).read()).constructor, Int32Array);
  t.equal((await (root.get('dt.bool') as CheckpointTensor).read()).constructor, Uint8Array);
  t.equal((await (root.get('dt.f64') as CheckpointTensor).read()).constructor, Float64Array);
}

t.test('a real torch 1.13 zip checkpoint: every dtype, views, 0-d, empty, parameters', async (t) => {
  await checkState(t, path.join(FIX, 'torch_state.pt'), 'zip');
  const c = await loadCheckpoint(path.join(FIX, 'torch_state.pt'));
  t.equal(c.version, 3);
  t.equal(c.prefix, 'torch_state');
});

t.test('the same state dict in the legacy (pre-1.6) stream format', async (t) => {
  await checkState(t, path.join(FIX, 'torch_state_legacy.pt'), 'legacy');
});

t.test('plain values next to tensors (torch_misc.pt)', async (t) => {
  const c = await loadCheckpoint(path.join(FIX, 'torch_misc.pt'));
  const r = c.root as Map<string, PyValue>;
  t.equal(r.get('arch'), 'resnet18');
  t.equal(r.get('lr'), 0.125);
  t.equal(r.get('big'), 2 ** 40);
  t.equal(r.get('huge'), 2n ** 70n);
  t.same(vals(await (r.get('t') as CheckpointTensor).read()), [1, 1]);
});

t.test('zip64 archives and a deflated data.pkl are read; cuda storages load to host', async (t) => {
  const pkl = stateDictPickle([{ name: 'w', key: '0', numel: 3, size: [3], stride: [1], location: 'cuda:1' }]);
  const f = write(ckptZip(pkl, { 0: f32(1, 2, 3) }, { zip64: true, pklMethod: 8 }));
  const c = await loadCheckpoint(f);
  t.same(vals(await ((c.root as Map<string, PyValue>).get('w') as CheckpointTensor).read()), [1, 2, 3]);
  t.equal(((c.root as Map<string, PyValue>).get('w') as CheckpointTensor).storage.location, 'cuda:1');
});

t.test('byteorder: big is byte-swapped, absent is little, anything else refused', async (t) => {
  const real = path.join(FIX, 'torch_state.pt');
  const c = await loadCheckpoint(real);
  const itemsize = new Map<string, number>();
  for (const v of (c.root as Map<string, PyValue>).values()) if (isTensor(v)) itemsize.set(v.storageKey, v.storage.itemsize);
  const entries = await entriesOf(real);
  const swapped = entries.map(({ name, data }) => {
    const m = /\/data\/(\d+)$/.exec(name);
    if (!m) return { name, data };
    const size = itemsize.get(m[1]!)!;
    const b = Buffer.from(data);
    for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
    return { name, data: b };
  });
  swapped.splice(1, 0, { name: 'torch_state/byteorder', data: Buffer.from('big') });
  const big = write(buildZip(swapped));
  const cb = await loadCheckpoint(big);
  t.equal(cb.byteorder, 'big');
  const rb = cb.root as Map<string, PyValue>;
  for (const [k, exp] of Object.entries(expected.state)) {
    t.same(vals(await (rb.get(k) as CheckpointTensor).read()), exp.values, `${k} from a big-endian archive`);
  }
  const little = write(ckptZip(ONE, { 0: f32(1, 2, 3, 4, 5, 6) }, { byteorder: 'little' }));
  t.same(vals(await ((await loadCheckpoint(little)).root as Map<string, CheckpointTensor>).get('w')!.read()), [1, 2, 3, 4, 5, 6]);
  await refuseLoad(t, write(ckptZip(ONE, { 0: f32(1, 2, 3, 4, 5, 6) }, { byteorder: 'middle' })), 'ERR_CHECKPOINT_UNSUPPORTED', /unsupported byteorder "middle"/, 'byteorder middle');
  await refuseLoad(t, write(ckptZip(ONE, { 0: f32(1, 2, 3, 4, 5, 6) }, { byteorder: 'little\n' })), 'ERR_CHECKPOINT_UNSUPPORTED', /byteorder/, 'byteorder with newline');
});

t.test('version records', async (t) => {
  const S = { 0: f32(1, 2, 3, 4, 5, 6) };
  t.equal((await loadCheckpoint(write(ckptZip(ONE, S, { version: null, dataVersion: '3\n' })))).version, 3, '.data/version');
  t.equal((await loadCheckpoint(write(ckptZip(ONE, S, { version: '1' })))).version, 1);
  t.equal((await loadCheckpoint(write(ckptZip(ONE, S, { version: `${MAX_ZIP_FORMAT_VERSION}\n` })))).version, MAX_ZIP_FORMAT_VERSION);
  await refuseLoad(t, write(ckptZip(ONE, S, { version: null })), 'ERR_CHECKPOINT_CORRUPT', /no version record/, 'version missing');
  await refuseLoad(t, write(ckptZip(ONE, S, { version: `${MAX_ZIP_FORMAT_VERSION + 1}\n` })), 'ERR_CHECKPOINT_UNSUPPORTED', /version 11 is not supported/, 'future version');
  await refuseLoad(t, write(ckptZip(ONE, S, { version: '0\n' })), 'ERR_CHECKPOINT_UNSUPPORTED', /version 0/, 'version 0');
  await refuseLoad(t, write(ckptZip(ONE, S, { version: 'three' })), 'ERR_CHECKPOINT_CORRUPT', /not an integer/, 'version not a number');
  await refuseLoad(t, write(ckptZip(ONE, S, { version: '3\n', dataVersion: '4\n' })), 'ERR_CHECKPOINT_CORRUPT', /disagree/, 'versions disagree');
  await refuseLoad(t, write(ckptZip(ONE, S, { version: 'x'.repeat(100) })), 'ERR_CHECKPOINT_UNSAFE', /over the cap/, 'huge version record');
});

t.test('zip structure: truncation, missing data.pkl, two top-level directories, caps', async (t) => {
  const real = fs.readFileSync(path.join(FIX, 'torch_state.pt'));
  const offsets = [1, 10, 100, 1000, 2000, 3000, 4000, 5000, 6000, real.length - 100, real.length - 22, real.length - 1];
  for (const off of offsets) {
    await refuseLoad(t, write(real.subarray(0, off)), 'ERR_CHECKPOINT_CORRUPT', /zip|central directory|truncated|no records/i, `truncated at ${off}`);
  }
  const S = { 0: f32(1, 2, 3, 4, 5, 6) };
  await refuseLoad(t, write(buildZip([{ name: 'archive/version', data: '3\n' }, { name: 'archive/data/0', data: f32(1) }])), 'ERR_CHECKPOINT_CORRUPT', /no 'archive\/data.pkl' record/, 'missing data.pkl');
  await refuseLoad(t, write(ckptZip(ONE, S, { more: [{ name: 'other/data.pkl', data: ONE }] })), 'ERR_CHECKPOINT_CORRUPT', /two top-level directories: 'archive\/' and 'other\/'/, 'two top-level dirs');
  await refuseLoad(t, write(buildZip([{ name: 'data.pkl', data: ONE }])), 'ERR_CHECKPOINT_CORRUPT', /not inside a top-level directory/, 'data.pkl at the root');
  await refuseLoad(t, write(buildZip([])), 'ERR_CHECKPOINT_CORRUPT', /no records/, 'empty zip');
  const bomb = buildZip([{ name: 'archive/data.pkl', data: ONE, method: 8, declaredSize: 2 ** 40 }, { name: 'archive/version', data: '3\n' }], { zip64: true });
  await refuseLoad(t, write(bomb), 'ERR_CHECKPOINT_UNSAFE', /over the cap/, 'deflated data.pkl over the cap');
});

t.test('TorchScript, legacy tar, PYTORCH1, LFS pointers, HTML and other non-checkpoints', async (t) => {
  await refuseLoad(t, path.join(FIX, 'torchscript.pt'), 'ERR_CHECKPOINT_UNSUPPORTED', /not a weights checkpoint: this is a TorchScript archive/, 'torch.jit.save file');
  await refuseLoad(t, write(ckptZip(ONE, { 0: f32(1, 2, 3, 4, 5, 6) }, { more: [{ name: 'archive/constants.pkl', data: pk().proto(2).emptyTuple().stop().bytes() }] })), 'ERR_CHECKPOINT_UNSUPPORTED', /TorchScript/, 'constants.pkl');
  const tar = Buffer.alloc(2048);
  tar.write('storages', 0);
  tar.write('ustar\x0000', 257, 'latin1');
  await refuseLoad(t, write(tar, '.tar'), 'ERR_CHECKPOINT_UNSUPPORTED', /unsupported legacy tar/, 'legacy tar');
  await refuseLoad(t, write(Buffer.from('PYTORCH1\x00\x00\x00\x00rest of the preview file')), 'ERR_CHECKPOINT_UNSUPPORTED', /PYTORCH1 preview format/, 'PYTORCH1');
  await refuseLoad(t, write(Buffer.from('version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 102502400\n')), 'ERR_CHECKPOINT_UNSUPPORTED', /Git LFS pointer/, 'LFS pointer');
  await refuseLoad(t, write(Buffer.from('\n  <!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>')), 'ERR_CHECKPOINT_UNSUPPORTED', /not a weights checkpoint: this is an HTML/, 'HTML page');
  await refuseLoad(t, write(Buffer.from('<html><body>404</body></html>')), 'ERR_CHECKPOINT_UNSUPPORTED', /HTML/, 'bare <html>');
  await refuseLoad(t, path.join(FIX, 'npy_f4.npy'), 'ERR_CHECKPOINT_UNSUPPORTED', /NumPy \.npy/, '.npy');
  const st = Buffer.concat([Buffer.alloc(8), Buffer.from('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'), Buffer.alloc(4)]);
  st.writeBigUInt64LE(BigInt(st.length - 12), 0);
  // safetensors is loaded now (test/io/safetensors-model.test.ts): sniffed, not refused.
  t.equal((await loadCheckpoint(write(st))).format, 'safetensors', 'safetensors: sniffed and read');
  await refuseLoad(t, write(Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3])), 'ERR_CHECKPOINT_UNSUPPORTED', /unrecognised format, first bytes de ad be ef/, 'random bytes');
  await refuseLoad(t, write(Buffer.alloc(0)), 'ERR_CHECKPOINT_CORRUPT', /empty/, 'empty file');
  await refuseLoad(t, write(pk().proto(2).emptyDict().stop().bytes(), '.pkl'), 'ERR_CHECKPOINT_UNSUPPORTED', /plain pickle/, 'plain pickle');
  await t.rejects(loadCheckpoint(path.join(dir, 'nope.pth')), { code: 'ERR_FILE_NOT_FOUND', file: path.join(dir, 'nope.pth') });
  await t.rejects(loadCheckpoint(dir), { code: 'ERR_FILE_READ' });
});

t.test('hostile pickles inside a zip checkpoint; the canary is never created', async (t) => {
  const canary = path.join(dir, 'canary');
  for (const [m, n] of [['os', 'system'], ['posix', 'system'], ['subprocess', 'call'], ['builtins', 'eval']]) {
    const evil = pk().proto(2).emptyDict().str('w').global(m!, n!).str(`touch ${canary}`).tuple1().reduce().setitem().stop().bytes();
    await refuseLoad(t, write(ckptZip(evil, {})), 'ERR_CHECKPOINT_UNSAFE', new RegExp(`global ${m}\\.${n}, which is not allowed`), `zip with ${m}.${n}`);
  }
  await refuseLoad(t, write(ckptZip(fs.readFileSync(path.join(FIX, 'proto4.pkl')), {})), 'ERR_CHECKPOINT_UNSAFE', /0x95 \(FRAME\)/, 'protocol 4 data.pkl');
  t.notOk(fs.existsSync(canary), 'canary file does not exist');
});

t.test('storages: missing records, wrong sizes, two dtypes, unknown types, bad ids', async (t) => {
  const six = f32(1, 2, 3, 4, 5, 6);
  await refuseLoad(t, write(ckptZip(stateDictPickle([{ name: 'w', key: '7', numel: 6, size: [6], stride: [1] }]), { 0: six })), 'ERR_CHECKPOINT_CORRUPT', /storage '7' has no record 'archive\/data\/7'/, 'data/7 missing');
  await refuseLoad(t, write(ckptZip(ONE, { 0: six.subarray(0, 20) })), 'ERR_CHECKPOINT_CORRUPT', /wrong byte size: 20 bytes, but 6 float32 elements need 24/, 'storage short');
  await refuseLoad(t, write(ckptZip(ONE, { 0: Buffer.concat([six, Buffer.alloc(4)]) })), 'ERR_CHECKPOINT_CORRUPT', /wrong byte size: 28 bytes/, 'storage long');
  const asDouble = await loadCheckpoint(write(ckptZip(stateDictPickle([{ name: 'w', key: '0', numel: 3, type: 'DoubleStorage', size: [3], stride: [1] }]), { 0: six })));
  t.equal(((asDouble.root as Map<string, CheckpointTensor>).get('w')!).dtype, 'float64', 'the same 24 bytes read as 3 doubles is consistent');
  await refuseLoad(t, write(ckptZip(stateDictPickle([
    { name: 'a', key: '0', numel: 6, size: [6], stride: [1] },
    { name: 'b', key: '0', numel: 6, type: 'IntStorage', size: [6], stride: [1] },
  ]), { 0: six })), 'ERR_CHECKPOINT_CORRUPT', /storage '0' is read as both float32 and int32/, 'one key, two dtypes');
  await refuseLoad(t, write(ckptZip(stateDictPickle([
    { name: 'a', key: '0', numel: 6, size: [6], stride: [1] },
    { name: 'b', key: '0', numel: 5, size: [5], stride: [1] },
  ]), { 0: six })), 'ERR_CHECKPOINT_CORRUPT', /declared with 6 and 5 elements/, 'one key, two sizes');
  const q8 = pk().proto(2).emptyDict().str('w').global('torch._utils', '_rebuild_tensor_v2').mark().mark().str('storage').global('torch', 'QInt8Storage');
  await refuseLoad(t, write(ckptZip(q8.bytes(), {})), 'ERR_CHECKPOINT_UNSUPPORTED', /unsupported storage type torch\.QInt8Storage/, 'QInt8Storage');
  const pid = (build: (w: ReturnType<typeof pk>) => void) => {
    const w = pk().proto(2).mark();
    build(w);
    return write(ckptZip(w.tuple().persid().stop().bytes(), { 0: six }));
  };
  await refuseLoad(t, pid((w) => w.str('storage').global('torch', 'FloatStorage').str('0').str('cpu')), 'ERR_CHECKPOINT_CORRUPT', /persistent id has 4 elements, expected 5/, 'pid arity 4');
  await refuseLoad(t, pid((w) => w.str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(6).none()), 'ERR_CHECKPOINT_CORRUPT', /6 elements, expected 5/, 'pid arity 6 in a zip');
  await refuseLoad(t, pid((w) => w.str('storage').str('FloatStorage').str('0').str('cpu').int(6)), 'ERR_CHECKPOINT_UNSUPPORTED', /unknown storage type str/, 'storage type as a string');
  await refuseLoad(t, pid((w) => w.str('storage').global('torch', 'FloatStorage').str('../data.pkl').str('cpu').int(6)), 'ERR_CHECKPOINT_CORRUPT', /bad storage key "..\/data.pkl"/, 'path in storage key');
  await refuseLoad(t, pid((w) => w.str('storage').global('torch', 'FloatStorage').str('0').str('/dev/sda').int(6)), 'ERR_CHECKPOINT_UNSUPPORTED', /unsupported location/, 'odd location');
  await refuseLoad(t, pid((w) => w.str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(-1)), 'ERR_CHECKPOINT_CORRUPT', /bad element count -1/, 'negative numel');
  await refuseLoad(t, pid((w) => w.str('module').str('x').str('y')), 'ERR_CHECKPOINT_UNSAFE', /starting with 'storage'/, "non-'storage' pid");
});

t.test('tensor bounds against the storage', async (t) => {
  const six = f32(1, 2, 3, 4, 5, 6);
  const one = (o: { offset?: number | bigint; size: (number | bigint)[]; stride: (number | bigint)[] }) =>
    write(ckptZip(stateDictPickle([{ name: 'w', key: '0', numel: 6, ...o }]), { 0: six }));
  await refuseLoad(t, one({ size: [2, 4], stride: [4, 1] }), 'ERR_CHECKPOINT_CORRUPT', /reaches element 7, past its storage '0' of 6 elements/, 'extent past storage');
  await refuseLoad(t, one({ offset: 4, size: [3], stride: [1] }), 'ERR_CHECKPOINT_CORRUPT', /past its storage/, 'offset + size past storage');
  await refuseLoad(t, one({ size: [2, 3], stride: [3, -1] }), 'ERR_CHECKPOINT_CORRUPT', /negative stride/, 'negative stride');
  await refuseLoad(t, one({ size: [2n ** 40n, 2n ** 40n], stride: [0, 0] }), 'ERR_CHECKPOINT_CORRUPT', /more than 2\^53 elements/, 'int64 overflow of sizes');
  await refuseLoad(t, one({ size: [2n ** 63n - 1n], stride: [1] }), 'ERR_CHECKPOINT_CORRUPT', /beyond 2\^53/, 'size 2^63-1');
  await refuseLoad(t, one({ size: [2, 2], stride: [2n ** 62n, 1] }), 'ERR_CHECKPOINT_CORRUPT', /beyond 2\^53/, 'stride 2^62');
  await refuseLoad(t, one({ size: [1e6, 1e3], stride: [0, 0] }), 'ERR_CHECKPOINT_UNSUPPORTED', /over the 2147483648-byte limit/, 'broadcast to 4 GB');
  // in-bounds strided views read correctly
  const c = await loadCheckpoint(one({ offset: 1, size: [2, 2], stride: [3, 1] }));
  t.same(vals(await ((c.root as Map<string, CheckpointTensor>).get('w')!.read())), [2, 3, 5, 6], 'gathered [[2,3],[5,6]]');
  const c2 = await loadCheckpoint(one({ offset: 0, size: [3, 2], stride: [1, 3] }));
  t.same(vals(await ((c2.root as Map<string, CheckpointTensor>).get('w')!.read())), [1, 4, 2, 5, 3, 6], 'transposed');
  await refuseLoad(t, one({ offset: 1, size: [2, 2], stride: [3, 2] }), 'ERR_CHECKPOINT_CORRUPT', /reaches element 6, past/, 'one past the end');
});

t.test('a file replaced after loading is detected by read()', async (t) => {
  const f = write(ckptZip(ONE, { 0: f32(1, 2, 3, 4, 5, 6) }));
  const c = await loadCheckpoint(f);
  const w = (c.root as Map<string, CheckpointTensor>).get('w')!;
  fs.writeFileSync(f, ckptZip(ONE, { 0: f32(9, 9, 9, 9, 9, 9) }, { more: [{ name: 'archive/pad', data: 'x' }] }));
  await t.rejects(w.read(), { code: 'ERR_CHECKPOINT_CORRUPT', file: f, message: /changed on disk/ });
});

t.test("a real torch 1.13 checkpoint with one bit flipped in a weight: the read names the record, not a changed weight", async (t) => {
  const src = path.join(FIX, 'torch_state.pt');
  const za = await ZipArchive.open(src);
  const record = za.names().find((n) => /\/data\/\d+$/.test(n) && (za.entry(n)?.uncompressedSize ?? 0) >= 16)!;
  const localHeader = (za.ref(record).entry as unknown as { relativeOffsetOfLocalHeader: number }).relativeOffsetOfLocalHeader;
  await za.close();
  const buf = fs.readFileSync(src);
  const dataStart = localHeader + 30 + buf.readUInt16LE(localHeader + 26) + buf.readUInt16LE(localHeader + 28);
  buf[dataStart + 5]! ^= 0x01;
  const f = write(buf);
  const c = await loadCheckpoint(f);
  const tensors = [...(c.root as Map<string, PyValue>).values()].filter(isTensor) as CheckpointTensor[];
  const results = await Promise.allSettled(tensors.map((v) => v.read()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.ok(failed.length > 0, `a tensor of ${record} fails to read (${failed.length} of ${tensors.length})`);
  for (const r of failed) t.match(r.reason, { code: 'ERR_CHECKPOINT_CORRUPT', file: f, field: record, message: /CRC-32/ });
  t.ok(results.some((r) => r.status === 'fulfilled'), 'the tensors of other records still read');
});

// ---- legacy stream ----------------------------------------------------------------------------

const MAGIC_PKL = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
const PROTO_PKL = Buffer.from([0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]);
const SYSINFO = (le = true) => pk().proto(2).emptyDict().str('protocol_version').int(1001).setitem().str('little_endian')[le ? 'true' : 'false']().setitem().stop().bytes();

function legacyFile(main: Buffer, keys: string[], storages: { count: bigint; bytes: Uint8Array }[], o: { le?: boolean } = {}): Buffer {
  const kw = pk().proto(2).emptyList().mark();
  for (const k of keys) kw.str(k);
  const parts: Buffer[] = [MAGIC_PKL, PROTO_PKL, SYSINFO(o.le ?? true), main, kw.appends().stop().bytes()];
  for (const s of storages) {
    const c = Buffer.alloc(8);
    c.writeBigInt64LE(s.count);
    parts.push(c, Buffer.from(s.bytes));
  }
  return Buffer.concat(parts);
}

t.test('legacy stream: valid, bad magic, protocol != 1001, short data, wrong counts, key lists', async (t) => {
  const main = stateDictPickle([{ name: 'w', key: '5', numel: 3, size: [3], stride: [1] }], true);
  const good = legacyFile(main, ['5'], [{ count: 3n, bytes: f32(1, 2, 3) }]);
  const c = await loadCheckpoint(write(good));
  t.equal(c.format, 'legacy');
  t.same(vals(await ((c.root as Map<string, CheckpointTensor>).get('w')!.read())), [1, 2, 3]);

  const real = fs.readFileSync(path.join(FIX, 'torch_state_legacy.pt'));
  const badMagic = Buffer.from(real);
  badMagic[5] ^= 0xff;
  await refuseLoad(t, write(badMagic), 'ERR_CHECKPOINT_CORRUPT', /bad magic number/, 'bad magic');
  const badProto = Buffer.from(real);
  t.equal(badProto.readUInt16LE(18), 1001);
  badProto.writeUInt16LE(1002, 18);
  await refuseLoad(t, write(badProto), 'ERR_CHECKPOINT_UNSUPPORTED', /legacy protocol version 1002/, 'protocol 1002');
  await refuseLoad(t, write(real.subarray(0, real.length - 1)), 'ERR_CHECKPOINT_CORRUPT', /file truncated: storage '\d+' needs/, 'short data');
  await refuseLoad(t, write(real.subarray(0, real.length - 40)), 'ERR_CHECKPOINT_CORRUPT', /file truncated/, 'short data (more)');
  await refuseLoad(t, write(real.subarray(0, 600)), 'ERR_CHECKPOINT_CORRUPT', /pickle truncated/, 'cut inside the main pickle');
  await refuseLoad(t, write(real.subarray(0, 10)), 'ERR_CHECKPOINT_CORRUPT', /pickle truncated/, 'cut inside the magic');
  await refuseLoad(t, write(Buffer.concat([real, Buffer.from([0])])), 'ERR_CHECKPOINT_CORRUPT', /1 unexpected bytes after the last storage/, 'trailing byte');
  await refuseLoad(t, write(legacyFile(main, ['5'], [{ count: 4n, bytes: f32(1, 2, 3, 4) }])), 'ERR_CHECKPOINT_CORRUPT', /storage has wrong byte size: '5' holds 4 elements, the pickle says 3/, 'count != numel');
  await refuseLoad(t, write(legacyFile(main, ['5'], [{ count: -1n, bytes: f32(1, 2, 3) }])), 'ERR_CHECKPOINT_CORRUPT', /wrong byte size/, 'negative count');
  await refuseLoad(t, write(legacyFile(main, [], [])), 'ERR_CHECKPOINT_CORRUPT', /storage '5' is used but not listed/, 'key not listed');
  await refuseLoad(t, write(legacyFile(main, ['5', '6'], [{ count: 3n, bytes: f32(1, 2, 3) }])), 'ERR_CHECKPOINT_CORRUPT', /'6' is listed but no tensor uses it/, 'extra key');
  await refuseLoad(t, write(legacyFile(main, ['5', '5'], [{ count: 3n, bytes: f32(1, 2, 3) }])), 'ERR_CHECKPOINT_CORRUPT', /listed twice/, 'key twice');
  await refuseLoad(t, write(legacyFile(main, ['5'], [{ count: 3n, bytes: f32(1, 2, 3) }], { le: false })), 'ERR_CHECKPOINT_UNSUPPORTED', /big-endian machine/, 'big-endian sys_info');
  const five = stateDictPickle([{ name: 'w', key: '5', numel: 3, size: [3], stride: [1] }], false);
  await refuseLoad(t, write(legacyFile(five, ['5'], [{ count: 3n, bytes: f32(1, 2, 3) }])), 'ERR_CHECKPOINT_CORRUPT', /5 elements, expected 6/, '5-element pid in a legacy file');
  const view = pk().proto(2).emptyDict().str('w').global('torch._utils', '_rebuild_tensor_v2').mark()
    .storage('FloatStorage', '5', 3, 'cpu', (w) => w.str('9').int(0).int(2).tuple3()).int(0).int(2).tuple1().int(1).tuple1().false()
    .global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce().setitem().stop().bytes();
  await refuseLoad(t, write(legacyFile(view, ['5'], [{ count: 3n, bytes: f32(1, 2, 3) }])), 'ERR_CHECKPOINT_UNSUPPORTED', /storage view/, 'legacy storage view');
  const evil = pk().proto(2).global('os', 'system').str('true').tuple1().reduce().stop().bytes();
  await refuseLoad(t, write(legacyFile(evil, [], [])), 'ERR_CHECKPOINT_UNSAFE', /os\.system/, 'os.system in the legacy main pickle');
  await refuseLoad(t, write(Buffer.concat([pk().proto(2).long1(12345n).stop().bytes(), PROTO_PKL])), 'ERR_CHECKPOINT_CORRUPT', /bad magic number 3039/, 'other number as magic');
});

t.test('legacy metadata larger than the first read is read in full', async (t) => {
  // 3 MB of pickled names before the storages: the loader must read more than its first 1 MiB.
  const w = pk().proto(2).emptyDict().mark();
  for (let i = 0; i < 300; i++) w.str(`k${i}`).str('x'.repeat(10_000));
  w.str('w').tensor({ key: '1', numel: 2, size: [2], stride: [1], legacy: true });
  const main = w.setitems().stop().bytes();
  const f = write(legacyFile(main, ['1'], [{ count: 2n, bytes: f32(7, 8) }]));
  const c = await loadCheckpoint(f);
  t.same(vals(await ((c.root as Map<string, CheckpointTensor>).get('w')!.read())), [7, 8]);
  await t.rejects(loadCheckpoint(f, { maxLegacyHeaderBytes: 1 << 20 }), { code: 'ERR_CHECKPOINT_UNSUPPORTED', message: /larger than/ });
});

t.test('gatherTensor: strides, offsets, widening', async (t) => {
  const storage = { kind: 'storage' as const, dtype: 'float16' as const, itemsize: 2, key: '0', location: 'cpu', numel: 6 };
  const halves = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000]).buffer);
  const out = gatherTensor({ kind: 'tensor', dtype: 'float16', shape: [3, 2], stride: [1, 3], storageOffset: 0, storageKey: '0', storage, requiresGrad: false }, halves, false);
  t.same(Array.from(out as Float32Array), [1, 0x0001 * 2 ** -24, -2, Infinity, 65504, -0]);
});
