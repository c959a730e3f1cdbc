// The allowlist unpickler: every supported opcode, the value model, and hostile pickles (RELIABILITY §7
// #4-#8, #11): disallowed globals and opcodes, wrong targets, bad persistent ids, memo/stack/MARK bombs,
// huge lengths, tensor bounds, cycles. A canary proves that nothing is ever executed.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  unpickle, OrderedDict, PyValue, StorageRef, TensorDescriptor, UnpickleOptions, isTuple, isTensor,
} from '../../src/io/pickle';
import { pk, PickleWriter } from '../helpers/pickle-writer';

const FIX = path.join(__dirname, '..', 'fixtures', 'io');
const FILE = '/ckpt/model.pth';

/** persistentLoad accepting ('storage', torch.X, key, loc, numel) with any storage type. */
function pl(pid: readonly PyValue[]): StorageRef {
  const type = pid[1] as { name: string };
  const dtype = type.name === 'LongStorage' ? 'int64' : 'float32';
  return { kind: 'storage', dtype, itemsize: dtype === 'int64' ? 8 : 4, key: String(pid[2]), location: String(pid[3]), numel: Number(pid[4]) };
}

function load(buf: Uint8Array, extra: Partial<UnpickleOptions> = {}): PyValue {
  return unpickle(buf, { file: FILE, record: 'archive/data.pkl', persistentLoad: pl, ...extra }).value;
}

function refuse(t: Test, buf: Uint8Array, code: string, msg: RegExp, name: string, extra: Partial<UnpickleOptions> = {}): void {
  let err: unknown;
  try {
    load(buf, extra);
  } catch (e) {
    err = e;
  }
  t.ok(err, `${name}: refused`);
  t.equal((err as { code?: string })?.code, code, `${name}: code`);
  t.equal((err as { file?: string })?.file, FILE, `${name}: file`);
  t.match((err as Error)?.message ?? '', msg, `${name}: message`);
  t.match((err as Error)?.message ?? '', FILE, `${name}: message names the file`);
  t.notOk(err instanceof RangeError, `${name}: not a raw RangeError`);
}

t.test('every supported opcode, and the value model', async (t) => {
  const w = pk().proto(2).emptyDict().binput(0).mark()
    .str('int1').int(200)
    .str('int2').int(60000)
    .str('int4').binint(-7)
    .str('long').long1(-(2n ** 70n))
    .str('long_small').long1(123456789012n)
    .str('float').float(-0.125)
    .str('none').none()
    .str('bools').true().false().tuple2()
    .str('tuple0').emptyTuple()
    .str('tuple1').int(1).tuple1()
    .str('tuple3').int(1).int(2).int(3).tuple3()
    .str('tupleN').mark().int(1).int(2).int(3).int(4).tuple()
    .str('list').emptyList().longBinput(70000).int(1).append().mark().int(2).int(3).appends()
    .str('again').longBinget(70000)
    .str('short').shortBinstring('py2 str')
    .str('binstr').binstring('older ünïcode')
    .str('od').global('collections', 'OrderedDict').emptyTuple().reduce().binput(1)
    .str('k').int(5).setitem()
    .emptyDict().str('_metadata').emptyDict().str('').emptyDict().str('version').int(1).setitem().setitem().setitem()
    .build()
    .str('od2').global('collections', 'OrderedDict').emptyTuple().newobj()
    .str('size').global('torch', 'Size').int(2).int(3).tuple2().tuple1().reduce()
    .str('dev').global('torch', 'device').str('cuda').int(1).tuple2().reduce()
    .str('dev2').global('torch', 'device').str('cpu').tuple1().reduce()
    .str('intkeys').emptyDict().int(0).str('a').setitem().int(1).true().setitem()
    .str('param').global('torch._utils', '_rebuild_parameter')
    .tensor({ key: '0', numel: 6, size: [2, 3], stride: [3, 1] })
    .true().global('collections', 'OrderedDict').emptyTuple().reduce().tuple3().reduce()
    .str('memo').binget(1)
    .setitems().stop();
  const v = load(w.bytes());
  t.ok(v instanceof Map && !(v instanceof OrderedDict), 'dict → Map');
  const d = v as Map<string, PyValue>;
  t.equal(d.get('int1'), 200);
  t.equal(d.get('int2'), 60000);
  t.equal(d.get('int4'), -7);
  t.equal(d.get('long'), -(2n ** 70n), 'big LONG1 → bigint');
  t.equal(d.get('long_small'), 123456789012, 'small LONG1 → number');
  t.equal(d.get('float'), -0.125);
  t.equal(d.get('none'), null);
  t.same(d.get('bools'), [true, false]);
  t.ok(isTuple(d.get('tuple3')), 'tuples are frozen arrays');
  t.same(d.get('tupleN'), [1, 2, 3, 4]);
  t.same(d.get('tuple0'), []);
  t.same(d.get('list'), [1, 2, 3]);
  t.notOk(isTuple(d.get('list')));
  t.equal(d.get('again'), d.get('list'), 'memo returns the same object');
  t.equal(d.get('short'), 'py2 str');
  t.equal(d.get('binstr'), 'older ünïcode');
  const od = d.get('od') as OrderedDict;
  t.ok(od instanceof OrderedDict);
  t.equal(od.get('k'), 5);
  t.same([...(od.attrs.get('_metadata') as Map<string, PyValue>).keys()], [''], 'BUILD set _metadata');
  t.ok(d.get('od2') instanceof OrderedDict, 'NEWOBJ OrderedDict');
  t.same(d.get('size'), [2, 3]);
  t.equal(d.get('dev'), 'cuda:1');
  t.equal(d.get('dev2'), 'cpu');
  t.same([...(d.get('intkeys') as Map<number, PyValue>).entries()], [[0, 'a'], [1, true]]);
  const p = d.get('param') as TensorDescriptor;
  t.ok(isTensor(p));
  t.match(p, { dtype: 'float32', shape: [2, 3], stride: [3, 1], storageOffset: 0, storageKey: '0', requiresGrad: false });
  t.equal(d.get('memo'), od);
});

t.test('the real pickles torch writes parse', async (t) => {
  // data.pkl of torch_misc.pt, extracted by the zip reader.
  const { ZipArchive } = await import('../../src/io/zip');
  const za = await ZipArchive.open(path.join(FIX, 'torch_misc.pt'));
  const buf = await za.read('torch_misc/data.pkl');
  await za.close();
  const v = load(buf) as Map<string, PyValue>;
  t.equal(v.get('epoch'), 3);
  t.equal(v.get('huge'), 2n ** 70n);
  t.same(v.get('names'), ['a', 'ü€']);
  t.same(v.get('size'), [2, 3]);
  t.equal(v.get('device'), 'cuda:0');
  t.same(v.get('flags'), [true, false, null]);
  t.equal(((v.get('nested') as Map<number, PyValue>).get(1) as Map<string, PyValue>).get('x')?.toString(), '1,2');
});

t.test('disallowed globals are refused, naming module.name, and nothing runs (canary)', async (t) => {
  const canary = '/tmp/ssl_inv_pickle_canary';
  fs.rmSync(canary, { force: true });
  for (const [f, name] of [
    ['evil_os_system.pkl', 'os.system'], ['evil_posix_system.pkl', 'posix.system'],
    ['evil_builtins_eval.pkl', 'builtins.eval'], ['evil_subprocess.pkl', 'subprocess.check_call'],
  ] as const) {
    refuse(t, fs.readFileSync(path.join(FIX, f)), 'ERR_CHECKPOINT_UNSAFE', new RegExp(`global ${name.replace('.', '\\.')}, which is not allowed at byte 2`), f);
  }
  const dynCanary = path.join(fs.mkdtempSync('/tmp/canary-'), 'touched');
  for (const [m, n] of [
    ['os', 'system'], ['posix', 'system'], ['nt', 'system'], ['builtins', 'eval'], ['builtins', 'exec'], ['__builtin__', 'eval'],
    ['builtins', 'getattr'], ['builtins', '__import__'], ['subprocess', 'Popen'], ['numpy.core.multiarray', '_reconstruct'],
    ['numpy', 'ndarray'], ['argparse', 'Namespace'], ['pathlib', 'PosixPath'], ['collections', 'defaultdict'],
    ['torch._utils', '_rebuild_tensor'], ['torch', 'load'], ['torch.nn.modules.conv', 'Conv2d'], ['sys', 'exit'],
    ['torch.serialization', '_get_layout'], ['_codecs', 'encode'],
  ]) {
    const bytes = pk().proto(2).global(m!, n!).str(`touch ${dynCanary}`).tuple1().reduce().stop().bytes();
    refuse(t, bytes, 'ERR_CHECKPOINT_UNSAFE', new RegExp(`global ${m!.replace(/\./g, '\\.')}\\.${n}`), `${m}.${n}`);
  }
  // The same payload inside a dict value, after harmless data.
  refuse(t, pk().proto(2).emptyDict().str('a').int(1).setitem().str('b').global('os', 'system').str('x').tuple1().reduce().setitem().stop().bytes(),
    'ERR_CHECKPOINT_UNSAFE', /os\.system/, 'nested payload');
  t.notOk(fs.existsSync(canary), 'fixture canary never created');
  t.notOk(fs.existsSync(dynCanary), 'canary never created');
  // Unknown storage types are refused as unsupported.
  refuse(t, pk().proto(2).global('torch', 'QInt8Storage').stop().bytes(), 'ERR_CHECKPOINT_UNSUPPORTED', /unsupported storage type torch\.QInt8Storage/, 'QInt8Storage');
  // Malformed GLOBAL operands.
  refuse(t, pk().proto(2).raw(0x63).raw(Buffer.from('os system\nx\n')).stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /dotted identifier/, 'space in GLOBAL');
  refuse(t, pk().proto(2).raw(0x63).raw(Buffer.from('a'.repeat(300) + '\nb\n')).stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /longer than 256/, 'long GLOBAL');
});

t.test('unsupported opcodes: protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE) and the rest', async (t) => {
  refuse(t, fs.readFileSync(path.join(FIX, 'proto4.pkl')), 'ERR_CHECKPOINT_UNSAFE', /unsupported pickle opcode 0x95 \(FRAME\) at byte 2/, 'pickle.dumps protocol 4');
  refuse(t, pk().proto(2).str('os').str('system').raw(0x93).stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /0x93 \(STACK_GLOBAL\) at byte 20/, 'STACK_GLOBAL');
  const ops: [number, string][] = [
    [0x94, 'MEMOIZE'], [0x69, 'INST'], [0x6f, 'OBJ'], [0x82, 'EXT1'], [0x83, 'EXT2'], [0x84, 'EXT4'], [0x30, 'POP'],
    [0x32, 'DUP'], [0x31, 'POP_MARK'], [0x42, 'BINBYTES'], [0x43, 'SHORT_BINBYTES'], [0x8f, 'EMPTY_SET'], [0x92, 'NEWOBJ_EX'],
    [0x8c, 'SHORT_BINUNICODE'], [0x49, 'INT'], [0x53, 'STRING'], [0x50, 'PERSID'], [0x64, 'DICT'], [0x6c, 'LIST'],
    [0x67, 'GET'], [0x70, 'PUT'], [0x8b, 'LONG4'], [0x96, 'BYTEARRAY8'], [0x97, 'NEXT_BUFFER'], [0xff, 'unknown'], [0x00, 'unknown'],
  ];
  for (const [op, name] of ops) {
    refuse(t, pk().proto(2).emptyList().raw(op).stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', new RegExp(`0x${op.toString(16).padStart(2, '0')} \\(${name}\\) at byte 3`), name);
  }
  refuse(t, pk().proto(6).none().stop().bytes(), 'ERR_CHECKPOINT_UNSUPPORTED', /protocol 6/, 'PROTO 6');
  refuse(t, pk().proto(2).none().proto(2).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /PROTO after/, 'PROTO twice');
});

t.test('operations on the wrong kind of object', async (t) => {
  refuse(t, pk().proto(2).emptyList().int(1).int(2).setitem().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /SETITEM on a list/, 'SETITEM on a list');
  refuse(t, pk().proto(2).emptyList().mark().int(1).int(2).setitems().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /SETITEMS on a list/, 'SETITEMS on a list');
  refuse(t, pk().proto(2).emptyTuple().int(1).int(2).setitem().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /SETITEM on a tuple/, 'SETITEM on a tuple');
  refuse(t, pk().proto(2).str('s').int(1).int(2).setitem().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /SETITEM on a str/, 'SETITEM on a str');
  refuse(t, pk().proto(2).emptyDict().int(1).append().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /APPEND to a dict/, 'APPEND on a dict');
  refuse(t, pk().proto(2).emptyDict().mark().int(1).appends().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /APPENDS to a dict/, 'APPENDS on a dict');
  refuse(t, pk().proto(2).int(1).int(2).tuple2().int(3).append().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /APPEND to a tuple/, 'APPEND on a tuple');
  refuse(t, pk().proto(2).emptyDict().emptyDict().build().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /BUILD on a dict/, 'BUILD on a dict');
  refuse(t, pk().proto(2).emptyList().emptyDict().build().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /BUILD on a list/, 'BUILD on a list');
  refuse(t, pk().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().emptyList().build().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /BUILD state must be a dict/, 'BUILD with list state');
  refuse(t, pk().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().emptyDict().int(1).int(2).setitem().build().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /keys must be strings/, 'BUILD with int keys');
  refuse(t, pk().proto(2).str('os.system').emptyTuple().reduce().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /REDUCE on a str/, 'REDUCE on a string');
  refuse(t, pk().proto(2).global('collections', 'OrderedDict').emptyList().reduce().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /arguments must be a tuple/, 'REDUCE with list args');
  refuse(t, pk().proto(2).global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /torch\.FloatStorage is not callable/, 'calling a storage class');
  refuse(t, pk().proto(2).global('torch', 'Size').emptyTuple().newobj().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /NEWOBJ of torch\.Size/, 'NEWOBJ torch.Size');
  refuse(t, pk().proto(2).global('collections', 'OrderedDict').int(1).int(2).tuple2().reduce().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /called with 2 arguments/, 'OrderedDict(1, 2)');
  refuse(t, pk().proto(2).emptyDict().emptyTuple().int(1).setitem().stop().bytes(), 'ERR_CHECKPOINT_UNSUPPORTED', /dict key of type tuple/, 'tuple key');
  refuse(t, pk().proto(2).emptyDict().long1(2n ** 60n).int(1).setitem().stop().bytes(), 'ERR_CHECKPOINT_UNSUPPORTED', /beyond 2\^53/, 'huge int key');
  refuse(t, pk().proto(2).emptyDict().mark().int(1).setitems().stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /odd number/, 'SETITEMS odd');
});

t.test('persistent ids', async (t) => {
  refuse(t, pk().proto(2).mark().str('module').str('x').tuple().persid().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /starting with 'storage', not a tuple starting with str 'module'/, "non-'storage' persid");
  refuse(t, pk().proto(2).str('storage').persid().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /not a str/, 'persid not a tuple');
  refuse(t, pk().proto(2).emptyList().persid().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /not a list/, 'persid a list');
  refuse(t, pk().proto(2).int(3).tuple1().persid().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /tuple starting with int/, 'int persid');
  refuse(t, pk().proto(2).storage('FloatStorage', '0', 4).stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /not allowed in this pickle/, 'no persistentLoad', { persistentLoad: undefined });
});

t.test('_rebuild_tensor_v2 arguments and bounds', async (t) => {
  const T = (o: Partial<Parameters<PickleWriter['tensor']>[0]>) => pk().proto(2).tensor({ key: '0', numel: 12, size: [3, 4], stride: [4, 1], ...o }).stop().bytes();
  t.match(load(T({})), { shape: [3, 4] }, 'in bounds');
  t.match(load(T({ size: [4, 3], stride: [1, 4] })), { stride: [1, 4] }, 'transposed view in bounds');
  t.match(load(T({ offset: 11, size: [1], stride: [1] })), { storageOffset: 11 }, 'last element');
  t.match(load(T({ offset: 500, size: [0, 4], stride: [4, 1] })), { shape: [0, 4] }, 'empty tensor: no extent check');
  t.match(load(T({ size: [1000, 12], stride: [0, 1] })), { shape: [1000, 12] }, 'stride-0 broadcast in bounds');
  t.match(load(T({ size: [], stride: [], offset: 3 })), { shape: [] }, '0-d');
  refuse(t, T({ size: [3, 5], stride: [5, 1] }), 'ERR_CHECKPOINT_CORRUPT', /reaches element 14, past its storage '0' of 12 elements/, 'extent past storage');
  refuse(t, T({ offset: 12, size: [1], stride: [1] }), 'ERR_CHECKPOINT_CORRUPT', /past its storage/, 'offset at the end');
  refuse(t, T({ stride: [4, -1] }), 'ERR_CHECKPOINT_CORRUPT', /negative stride\[1\] \(-1\)/, 'negative stride');
  refuse(t, T({ size: [-3, 4] }), 'ERR_CHECKPOINT_CORRUPT', /size\[0\] is negative/, 'negative size');
  refuse(t, T({ offset: -1 }), 'ERR_CHECKPOINT_CORRUPT', /negative storage_offset/, 'negative offset');
  refuse(t, T({ size: [2n ** 62n, 2n ** 62n], stride: [0, 0] }), 'ERR_CHECKPOINT_CORRUPT', /beyond 2\^53/, 'sizes beyond 2^53');
  refuse(t, T({ size: [2 ** 30, 2 ** 30, 2 ** 30], stride: [0, 0, 0] }), 'ERR_CHECKPOINT_CORRUPT', /more than 2\^53 elements/, 'element count overflow');
  refuse(t, T({ size: [2, 2], stride: [2 ** 52, 2 ** 52] }), 'ERR_CHECKPOINT_CORRUPT', /past its storage/, 'extent overflow past 2^53');
  refuse(t, T({ offset: 2n ** 64n }), 'ERR_CHECKPOINT_CORRUPT', /beyond 2\^53/, 'offset 2^64');
  refuse(t, T({ size: [3, 4], stride: [4] }), 'ERR_CHECKPOINT_CORRUPT', /size has 2 dimensions but stride has 1/, 'stride rank');
  refuse(t, T({ size: new Array(65).fill(1), stride: new Array(65).fill(1) }), 'ERR_CHECKPOINT_CORRUPT', /65 dimensions/, 'too many dims');
  // arity and types
  const args = (n: number) => {
    const w = pk().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark().storage('FloatStorage', '0', 4);
    for (let i = 1; i < n; i++) w.int(0);
    return w.tuple().reduce().stop().bytes();
  };
  refuse(t, args(5), 'ERR_CHECKPOINT_CORRUPT', /takes 6 or 7 arguments, got 5/, 'rebuild with 5 args');
  refuse(t, args(8), 'ERR_CHECKPOINT_CORRUPT', /got 8/, 'rebuild with 8 args');
  refuse(t, pk().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark().str('0').int(0).emptyTuple().emptyTuple().false().emptyDict().tuple().reduce().stop().bytes(),
    'ERR_CHECKPOINT_CORRUPT', /storage must be a storage, not str/, 'storage not a storage');
  refuse(t, pk().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark().storage('FloatStorage', '0', 4).int(0).emptyList().emptyTuple().false().emptyDict().tuple().reduce().stop().bytes(),
    'ERR_CHECKPOINT_CORRUPT', /size must be a tuple, not list/, 'size as list');
  refuse(t, pk().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark().storage('FloatStorage', '0', 4).int(0).emptyTuple().emptyTuple().int(0).emptyDict().tuple().reduce().stop().bytes(),
    'ERR_CHECKPOINT_CORRUPT', /requires_grad must be a bool/, 'requires_grad int');
  refuse(t, pk().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark().storage('FloatStorage', '0', 4).int(0).emptyTuple().emptyTuple().false().emptyDict().str('k').global('torch', 'Size').setitem().tuple().reduce().stop().bytes(),
    'ERR_CHECKPOINT_UNSAFE', /backward hooks/, 'backward hooks');
  refuse(t, pk().proto(2).global('torch._utils', '_rebuild_parameter').int(1).false().emptyDict().tuple3().reduce().stop().bytes(),
    'ERR_CHECKPOINT_CORRUPT', /data must be a tensor, not int/, '_rebuild_parameter of an int');
  refuse(t, pk().proto(2).global('torch._utils', '_rebuild_parameter').emptyTuple().tuple1().reduce().stop().bytes(),
    'ERR_CHECKPOINT_CORRUPT', /takes 3 arguments, got 1/, '_rebuild_parameter arity');
  refuse(t, pk().proto(2).global('torch', 'Size').int(1).int(2).tuple2().reduce().stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /takes 1 argument/, 'torch.Size arity');
  refuse(t, pk().proto(2).global('torch', 'device').str('rm -rf /').tuple1().reduce().stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /device string/, 'torch.device junk');
});

t.test('memo, stack, MARK and length bombs give bounded, typed errors', async (t) => {
  refuse(t, pk().proto(2).binget(5).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /memo index 5 is not defined at byte 2/, 'BINGET undefined');
  refuse(t, pk().proto(2).none().binput(0).longBinget(0xffffffff).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /memo index 4294967295/, 'LONG_BINGET 2^32-1');
  refuse(t, pk().proto(2).binput(0).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /stack underflow/, 'BINPUT on empty stack');
  // 10^6 MARKs
  const marks = Buffer.concat([Buffer.from([0x80, 2]), Buffer.alloc(1_000_000, 0x28), Buffer.from([0x4e, 0x2e])]);
  const t0 = Date.now();
  refuse(t, marks, 'ERR_CHECKPOINT_CORRUPT', /MARK nesting deeper than 10000 at byte 10002/, '10^6 MARKs');
  t.ok(Date.now() - t0 < 2000, '10^6 MARKs refused quickly');
  // 10^6 EMPTY_LISTs on the stack against a lowered limit
  const lists = Buffer.concat([Buffer.from([0x80, 2]), Buffer.alloc(1_000_000, 0x5d), Buffer.from([0x2e])]);
  refuse(t, lists, 'ERR_CHECKPOINT_CORRUPT', /stack exceeds 1000 items/, 'stack bomb', { maxStackItems: 1000 });
  const puts = pk().proto(2).none();
  for (let i = 0; i < 200; i++) puts.binput(i);
  refuse(t, puts.stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /memo exceeds 100 entries/, 'memo bomb', { maxMemo: 100 });
  // lengths far past the data: checked before allocating
  refuse(t, pk().proto(2).strLen(0xffffffff, Buffer.from('abc')).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /needs 4294967295 more bytes, 4 left/, 'BINUNICODE 2^32-1');
  refuse(t, pk().proto(2).raw(0x54, 0xff, 0xff, 0xff, 0x7f).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /needs 2147483647 more bytes/, 'BINSTRING 2^31-1');
  refuse(t, pk().proto(2).raw(0x54, 0xff, 0xff, 0xff, 0xff).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /negative length/, 'BINSTRING negative');
  refuse(t, pk().proto(2).raw(0x55, 200, 0x61).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /needs 200 more bytes/, 'SHORT_BINSTRING short');
  refuse(t, pk().proto(2).raw(0x8a, 255, 1, 2).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /needs 255 more bytes/, 'LONG1 short');
  refuse(t, pk().proto(2).raw(0x47, 1, 2, 3).bytes(), 'ERR_CHECKPOINT_CORRUPT', /needs 8 more bytes/, 'BINFLOAT short');
  refuse(t, pk().proto(2).raw(0x58, 2, 0, 0, 0, 0xc3, 0x28).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /not valid UTF-8/, 'bad UTF-8');
  refuse(t, pk().proto(2).raw(0x63).raw(Buffer.from('collections')).bytes(), 'ERR_CHECKPOINT_CORRUPT', /truncated/, 'GLOBAL cut');
});

t.test('structure: underflow, STOP rules, cycles, depth', async (t) => {
  refuse(t, pk().proto(2).reduce().stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /stack underflow at byte 2/, 'REDUCE on empty stack');
  refuse(t, pk().proto(2).int(1).int(2).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /STOP with 2 items/, 'two items at STOP');
  refuse(t, pk().proto(2).stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /STOP with 0 items/, 'empty STOP');
  refuse(t, pk().proto(2).int(1).mark().stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /STOP inside a MARK/, 'STOP inside MARK');
  refuse(t, pk().proto(2).appends().stop().bytes(), 'ERR_CHECKPOINT_CORRUPT', /no MARK/, 'APPENDS without MARK');
  refuse(t, pk().proto(2).int(1).bytes(), 'ERR_CHECKPOINT_CORRUPT', /truncated/, 'no STOP');
  refuse(t, Buffer.alloc(0), 'ERR_CHECKPOINT_CORRUPT', /truncated/, 'empty input');
  refuse(t, pk().proto(2).none().stop().raw(1, 2, 3).bytes(), 'ERR_CHECKPOINT_CORRUPT', /3 bytes after STOP/, 'trailing bytes');
  t.equal(unpickle(pk().proto(2).none().stop().raw(1).bytes(), { file: FILE, allowTrailing: true }).end, 4, 'allowTrailing');
  // a list that contains itself
  refuse(t, pk().proto(2).emptyList().binput(0).binget(0).append().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /contains itself/, 'self-containing list');
  refuse(t, pk().proto(2).emptyDict().binput(0).str('me').emptyList().binget(0).append().setitem().stop().bytes(), 'ERR_CHECKPOINT_UNSAFE', /contains itself/, 'dict cycle via a list');
  // shared (non-cyclic) references are fine
  t.same(load(pk().proto(2).emptyList().binput(0).binget(0).binget(0).tuple3().stop().bytes()), [[], [], []]);
  // 100,000 nested tuples
  const deep = pk().proto(2).none();
  for (let i = 0; i < 100_000; i++) deep.tuple1();
  refuse(t, deep.stop().bytes(), 'ERR_CHECKPOINT_UNSUPPORTED', /nested deeper than 1000/, 'deep nesting');
});

t.test('random byte flips never escape as untyped errors', async (t) => {
  const base = pk().proto(2).emptyDict().mark().str('w').tensor({ key: '0', numel: 6, size: [2, 3], stride: [3, 1] })
    .str('n').int(5).str('l').emptyList().mark().float(1.5).str('x').appends().setitems().stop().bytes();
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let typed = 0;
  let ok = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(base);
    const flips = 1 + Math.floor(rnd() * 3);
    for (let j = 0; j < flips; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    const cut = rnd() < 0.2 ? Math.floor(rnd() * b.length) : b.length;
    try {
      load(b.subarray(0, cut));
      ok++;
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('ERR_CHECKPOINT_')) typed++;
      else t.fail(`untyped error: ${String(e)}`);
    }
  }
  t.equal(typed + ok, 3000, `${typed} refused with typed errors, ${ok} parsed`);
});
