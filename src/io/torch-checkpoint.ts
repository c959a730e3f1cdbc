/**
 * Loading PyTorch checkpoints safely (RELIABILITY §1): no code from the file ever runs.
 *
 * Formats, sniffed from the first bytes:
 *  - zip (torch >= 1.6): `<prefix>/data.pkl` (an allowlisted pickle, see ./pickle), `<prefix>/data/<key>`
 *    raw storages, `<prefix>/version` or `.data/version` (1..10), optional `<prefix>/byteorder`.
 *  - the pre-1.6 legacy stream: pickled magic number, protocol 1001, sys_info, the main pickle, the
 *    sorted storage keys, then per storage an int64 LE element count and the raw bytes.
 *  - safetensors (./safetensors-checkpoint): a flat state dict, F16/BF16 widened to float32.
 * Refused with ERR_CHECKPOINT_UNSUPPORTED and a message saying what the file is: the legacy `.tar`
 * format, TorchScript archives, the `PYTORCH1` preview format, Git LFS pointers, HTML pages, `.npy`
 * files, plain pickles and anything unrecognised.
 *
 * Tensors are lazy: the pickle yields descriptors (dtype, shape, stride, storage offset, storage key),
 * checked against their storage; `read()` reads only that storage's bytes from disk and returns a
 * C-ordered typed array (gathering non-contiguous views, widening float16/bfloat16 to float32 and
 * int16/int8 to int32, byte-swapping big-endian archives).
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { SslInvError } from '../errors';
import type { DType, TypedArray } from '../tensor';
import { byteswap, HOST_LITTLE_ENDIAN } from './byte-order';
import { loadSafetensorsCheckpoint } from './safetensors-checkpoint';
import { ZipArchive, ZipOptions, ZipRecordRef, readZipRecord } from './zip';
import {
  PyValue, StorageRef, TensorDescriptor, TorchDType, UnpickleLimits, isList, isTruncationError, pyTypeName,
  storageTypeOf, unpickle,
} from './pickle';

export interface CheckpointOptions extends ZipOptions, UnpickleLimits {
  /** Largest tensor `read()` may return, in bytes. Default 2 GiB. */
  maxTensorBytes?: number;
  /** Largest legacy-format metadata (the pickles before the storages), in bytes. Default 256 MiB. */
  maxLegacyHeaderBytes?: number;
}

/** A tensor in a checkpoint, not yet read. */
export interface CheckpointTensor extends TensorDescriptor {
  /** The dtype of the array `read()` returns (float16 and bfloat16 widen to float32; int16/int8 to int32; bool to uint8). */
  readonly outDtype: DType;
  /** Reads the storage from disk and returns this tensor's elements in C order. */
  read(): Promise<TypedArray>;
}

export interface Checkpoint {
  file: string;
  format: 'zip' | 'legacy' | 'safetensors';
  /** The unpickled object; tensors in it are `CheckpointTensor`s. */
  root: PyValue;
  /** zip: the archive's top directory (e.g. `archive`). */
  prefix?: string;
  /** zip: the format version record. */
  version?: number;
  byteorder: 'little' | 'big';
  /** safetensors: the header's `__metadata__` strings. */
  metadata?: Record<string, string>;
}

/** The newest zip format version PyTorch reads (caffe2/serialize/versions.h kMaxSupportedFileFormatVersion). */
export const MAX_ZIP_FORMAT_VERSION = 10;
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
const DEFAULT_MAX_TENSOR_BYTES = 2 * 1024 ** 3;
const DEFAULT_MAX_LEGACY_HEADER = 256 * 1024 ** 2;

/** What a checkpoint's tensors become on the host (bf16 and fp16 are widened to float32). */
type OutDType = Exclude<DType, 'bfloat16'>;

const OUT_DTYPE: Record<TorchDType, OutDType> = {
  float32: 'float32', float64: 'float64', float16: 'float32', bfloat16: 'float32',
  int64: 'int64', int32: 'int32', int16: 'int32', int8: 'int32', uint8: 'uint8', bool: 'uint8',
};
const OUT_BYTES: Record<OutDType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1 };

function unsupported(file: string, message: string, field?: string): SslInvError {
  return new SslInvError('ERR_CHECKPOINT_UNSUPPORTED', message, { file, ...(field !== undefined ? { field } : {}) });
}

function corrupt(file: string, message: string, field?: string, cause?: unknown): SslInvError {
  return new SslInvError('ERR_CHECKPOINT_CORRUPT', message, { file, ...(field !== undefined ? { field } : {}), ...(cause !== undefined ? { cause } : {}) });
}

// ---------------------------------------------------------------------------------------------
// Element conversion
// ---------------------------------------------------------------------------------------------

let HALF_TABLE: Float32Array | undefined;
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    t[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
  }
  return (HALF_TABLE = t);
}

/** Source view of storage bytes (already copied to an aligned buffer and in host byte order). */
function sourceView(dtype: TorchDType, buf: ArrayBuffer): ArrayLike<number> | BigInt64Array {
  switch (dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'float16': case 'bfloat16': return new Uint16Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'uint8': case 'bool': return new Uint8Array(buf);
  }
}

function allocOut(dtype: OutDType, n: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint8': return new Uint8Array(n);
  }
}

/**
 * Gathers a (possibly strided) tensor from its storage bytes into a C-ordered array.
 * `raw` holds the whole storage; the descriptor was bounds-checked when it was unpickled.
 */
export function gatherTensor(d: TensorDescriptor, raw: Uint8Array, storageBigEndian: boolean): TypedArray {
  const itemsize = d.storage.itemsize;
  const outDtype = OUT_DTYPE[d.dtype];
  const n = d.shape.reduce((a, b) => a * b, 1);
  const out = allocOut(outDtype, n);
  if (n === 0) return out;
  // Copy just the reachable range [offset, extent] into an aligned buffer in host order.
  let extent = d.storageOffset;
  for (let k = 0; k < d.shape.length; k++) extent += (d.shape[k]! - 1) * d.stride[k]!;
  const lo = d.storageOffset * itemsize;
  const hi = (extent + 1) * itemsize;
  if (hi > raw.length) throw new SslInvError('ERR_CHECKPOINT_CORRUPT', `tensor reaches byte ${hi} of a ${raw.length}-byte storage`, { field: d.storageKey });
  const aligned = new Uint8Array(hi - lo);
  aligned.set(raw.subarray(lo, hi));
  if (storageBigEndian === HOST_LITTLE_ENDIAN) byteswap(aligned, itemsize);
  const src = sourceView(d.dtype, aligned.buffer);

  // Element converter.
  let conv: ((v: number) => number) | undefined;
  if (d.dtype === 'float16') {
    const table = halfTable();
    conv = (v) => table[v]!;
  } else if (d.dtype === 'bfloat16') {
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    conv = (v) => {
      u[0] = v << 16;
      return f[0]!;
    };
  } else if (d.dtype === 'bool') {
    conv = (v) => (v ? 1 : 0);
  }

  // C-contiguous and no conversion: one copy.
  const nd = d.shape.length;
  let contiguous = true;
  for (let k = nd - 1, expect = 1; k >= 0; k--) {
    if (d.shape[k] !== 1 && d.stride[k] !== expect) contiguous = false;
    expect *= d.shape[k]!;
  }
  if (contiguous && !conv) {
    (out as unknown as { set(a: ArrayLike<unknown>): void }).set((src as unknown as { subarray(a: number, b: number): ArrayLike<unknown> }).subarray(0, n));
    return out;
  }
  const o = out as unknown as { [i: number]: unknown };
  const s = src as unknown as { [i: number]: number };
  if (nd === 0) {
    o[0] = conv ? conv(s[0]!) : s[0];
    return out;
  }
  const idx = new Array<number>(nd).fill(0);
  const last = nd - 1;
  const lastLen = d.shape[last]!;
  const lastStride = d.stride[last]!;
  let base = 0;
  for (let w = 0; w < n; ) {
    let p = base;
    if (conv) for (let j = 0; j < lastLen; j++, p += lastStride) o[w++] = conv(s[p]!);
    else for (let j = 0; j < lastLen; j++, p += lastStride) o[w++] = s[p];
    for (let k = last - 1; k >= 0; k--) {
      idx[k]!++;
      base += d.stride[k]!;
      if (idx[k]! < d.shape[k]!) break;
      base -= d.stride[k]! * d.shape[k]!;
      idx[k] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lazy tensors and storages
// ---------------------------------------------------------------------------------------------

interface LoadableStorage extends StorageRef {
  /** Reads the storage's raw bytes (exactly numel × itemsize). */
  load(): Promise<Uint8Array>;
}

class LazyTensor implements CheckpointTensor {
  readonly kind = 'tensor' as const;
  readonly dtype: TorchDType;
  readonly shape: number[];
  readonly stride: number[];
  readonly storageOffset: number;
  readonly storageKey: string;
  readonly storage: LoadableStorage;
  readonly requiresGrad: boolean;
  readonly outDtype: DType;

  constructor(d: TensorDescriptor, private readonly file: string, private readonly bigEndian: boolean) {
    this.dtype = d.dtype;
    this.shape = d.shape;
    this.stride = d.stride;
    this.storageOffset = d.storageOffset;
    this.storageKey = d.storageKey;
    this.storage = d.storage as LoadableStorage;
    this.requiresGrad = d.requiresGrad;
    this.outDtype = OUT_DTYPE[d.dtype];
  }

  async read(): Promise<TypedArray> {
    const raw = await this.storage.load();
    try {
      return gatherTensor(this, raw, this.bigEndian);
    } catch (e) {
      if (e instanceof SslInvError) throw new SslInvError(e.code, e.message, { file: this.file, field: this.storageKey, cause: e });
      throw corrupt(this.file, `cannot read tensor: ${(e as Error).message}`, this.storageKey, e);
    }
  }
}

function makeTensorFactory(file: string, bigEndian: boolean, maxTensorBytes: number): (d: TensorDescriptor) => TensorDescriptor {
  return (d) => {
    const n = d.shape.reduce((a, b) => a * b, 1);
    const bytes = n * OUT_BYTES[OUT_DTYPE[d.dtype]];
    if (!Number.isSafeInteger(bytes) || bytes > maxTensorBytes) {
      throw unsupported(file, `tensor of size (${d.shape.join(', ')}) would take ${bytes} bytes, over the ${maxTensorBytes}-byte limit`, d.storageKey);
    }
    return new LazyTensor(d, file, bigEndian);
  };
}

const KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const LOCATION_RE = /^(cpu|cuda|mps|xpu|hpu|meta)(:\d{1,4})?$/;

/** Validates the common part of a persistent id: ('storage', StorageClass, key, location, numel, ...). */
function parsePid(pid: readonly PyValue[], file: string, record: string, arity: number, at: number) {
  if (pid.length !== arity) throw corrupt(file, `persistent id has ${pid.length} elements, expected ${arity} at byte ${at}`, record);
  const st = storageTypeOf(pid[1]!);
  if (!st) throw unsupported(file, `unknown storage type ${pyTypeName(pid[1])} at byte ${at}`, record);
  let key = pid[2];
  if (typeof key === 'number' && Number.isSafeInteger(key) && key >= 0) key = String(key);
  if (typeof key !== 'string' || !KEY_RE.test(key)) throw corrupt(file, `bad storage key ${JSON.stringify(typeof key === 'bigint' ? String(key) : key)} at byte ${at}`, record);
  const location = pid[3];
  if (typeof location !== 'string' || !LOCATION_RE.test(location)) {
    throw unsupported(file, `storage '${key}' has unsupported location ${JSON.stringify(typeof location === 'string' ? location : pyTypeName(location))} at byte ${at}`, record);
  }
  const numelV = pid[4];
  const numel = typeof numelV === 'number' ? numelV : NaN;
  if (!Number.isSafeInteger(numel) || numel < 0) throw corrupt(file, `storage '${key}' has bad element count ${String(numelV)} at byte ${at}`, record);
  const nbytes = numel * st.itemsize;
  if (!Number.isSafeInteger(nbytes)) throw corrupt(file, `storage '${key}' is too large`, record);
  return { st, key, location, numel, nbytes };
}

/** Keeps one StorageRef per key and refuses a key read as two dtypes or sizes. */
class StorageTable {
  readonly byKey = new Map<string, LoadableStorage>();
  constructor(private readonly file: string, private readonly record: string) {}

  get(key: string, dtype: TorchDType, numel: number, at: number, make: () => LoadableStorage): LoadableStorage {
    const prev = this.byKey.get(key);
    if (prev) {
      if (prev.dtype !== dtype) throw corrupt(this.file, `storage '${key}' is read as both ${prev.dtype} and ${dtype} at byte ${at}`, this.record);
      if (prev.numel !== numel) throw corrupt(this.file, `storage '${key}' is declared with ${prev.numel} and ${numel} elements at byte ${at}`, this.record);
      return prev;
    }
    const s = make();
    this.byKey.set(key, s);
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Sniffing
// ---------------------------------------------------------------------------------------------

async function openForRead(file: string): Promise<{ fh: FileHandle; size: number; mtimeMs: number }> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new SslInvError('ERR_FILE_NOT_FOUND', 'no such file', { file, cause: e });
    throw new SslInvError('ERR_FILE_READ', `cannot open: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SslInvError('ERR_FILE_READ', 'not a regular file', { file });
    return { fh, size: st.size, mtimeMs: st.mtimeMs };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e instanceof SslInvError ? e : new SslInvError('ERR_FILE_READ', `cannot stat: ${(e as Error).message}`, { file, cause: e });
  }
}

async function readAt(fh: FileHandle, file: string, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  let got = 0;
  try {
    while (got < len) {
      const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
  } catch (e) {
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  if (got !== len) throw corrupt(file, `file truncated: needed ${len} bytes at offset ${pos}, got ${got}`);
  return buf;
}

type Sniffed = 'zip' | 'legacy' | 'safetensors';

function sniff(head: Buffer, size: number, file: string): Sniffed {
  if (size === 0) throw corrupt(file, 'file is empty');
  const ascii = head.toString('latin1');
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) return 'zip';
  if (head.length < 4 && Buffer.from('PK\x03\x04', 'latin1').subarray(0, head.length).equals(head)) throw corrupt(file, `truncated zip archive (${size} bytes)`);
  if (head.length >= 262 && ascii.slice(257, 262) === 'ustar') {
    throw unsupported(file, 'unsupported legacy tar checkpoint (torch < 0.4 format); load it in Python and re-save it with torch.save');
  }
  if (ascii.startsWith('PYTORCH1')) throw unsupported(file, 'not a weights checkpoint: this is the PYTORCH1 preview format (early TorchScript), which is not supported');
  if (ascii.startsWith('version https://git-lfs.github.com/spec/')) {
    throw unsupported(file, 'not a weights checkpoint: this is a Git LFS pointer file, not the checkpoint itself (run `git lfs pull`)');
  }
  const text = ascii.replace(/^\ufeff|^\xef\xbb\xbf/, '').trimStart().slice(0, 64).toLowerCase();
  if (text.startsWith('<!doctype html') || text.startsWith('<html') || text.startsWith('<head') || text.startsWith('<?xml') || text.startsWith('<!--')) {
    throw unsupported(file, 'not a weights checkpoint: this is an HTML/XML page (a failed or login-walled download?)');
  }
  if (ascii.startsWith('\x93NUMPY')) throw unsupported(file, 'not a PyTorch checkpoint: this is a NumPy .npy file');
  // safetensors: a u64 LE header length inside the file, then the JSON header (`{"`).
  if (head.length >= 10 && head.readBigUInt64LE(0) < BigInt(size) && head[8] === 0x7b && head[9] === 0x22) return 'safetensors';
  if (head[0] === 0x80) return 'legacy';
  const hex = [...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw unsupported(file, `not a PyTorch checkpoint (unrecognised format, first bytes ${hex})`);
}

// ---------------------------------------------------------------------------------------------
// zip
// ---------------------------------------------------------------------------------------------

async function loadZip(file: string, opts: CheckpointOptions): Promise<Checkpoint> {
  const za = await ZipArchive.open(file, opts);
  try {
    const names = za.names();
    if (names.length === 0) throw corrupt(file, 'zip archive has no records');
    const first = names[0]!;
    const slash = first.indexOf('/');
    if (slash <= 0) throw corrupt(file, `first record '${first}' is not inside a top-level directory`);
    const prefix = first.slice(0, slash);
    const p = `${prefix}/`;
    const other = names.find((n) => !n.startsWith(p));
    if (other !== undefined) {
      throw corrupt(file, `records in two top-level directories: '${p}' and '${other.includes('/') ? other.slice(0, other.indexOf('/') + 1) : other}'`);
    }
    if (names.some((n) => n.startsWith(`${p}code/`)) || za.has(`${p}constants.pkl`) || za.has(`${p}bytecode.pkl`)) {
      throw unsupported(file, 'not a weights checkpoint: this is a TorchScript archive (torch.jit.save); load it in Python and torch.save its state_dict()');
    }
    const pkl = `${p}data.pkl`;
    if (!za.has(pkl)) throw corrupt(file, `no '${pkl}' record: not a torch.save archive`);

    // byteorder: absent = little (torch < 2.1).
    let byteorder: 'little' | 'big' = 'little';
    if (za.has(`${p}byteorder`)) {
      const b = (await za.read(`${p}byteorder`, { maxBytes: 64 })).toString('latin1');
      if (b === 'little' || b === 'big') byteorder = b;
      else throw unsupported(file, `unsupported byteorder ${JSON.stringify(b)} (little or big)`, `${p}byteorder`);
    }

    // version: `.data/version` (newer) or `version`.
    const vnames = [`${p}.data/version`, `${p}version`].filter((n) => za.has(n));
    if (vnames.length === 0) throw corrupt(file, `no version record ('${p}version' or '${p}.data/version')`);
    let version: number | undefined;
    for (const vn of vnames) {
      const s = (await za.read(vn, { maxBytes: 64 })).toString('latin1');
      const m = /^\s*(\d{1,9})\s*$/.exec(s);
      if (!m) throw corrupt(file, `version record is not an integer: ${JSON.stringify(s.slice(0, 32))}`, vn);
      const v = Number(m[1]);
      if (version !== undefined && v !== version) throw corrupt(file, `version records disagree (${version} and ${v})`, vn);
      version = v;
      if (v < 1 || v > MAX_ZIP_FORMAT_VERSION) {
        throw unsupported(file, `zip format version ${v} is not supported (1 to ${MAX_ZIP_FORMAT_VERSION}; newer PyTorch wrote it?)`, vn);
      }
    }

    const pickleBytes = await za.read(pkl);
    const storages = new StorageTable(file, pkl);
    const bigEndian = byteorder === 'big';
    const { value } = unpickle(pickleBytes, {
      ...opts,
      file,
      record: pkl,
      persistentLoad: (pid, at) => {
        const { st, key, location, numel, nbytes } = parsePid(pid, file, pkl, 5, at);
        return storages.get(key, st.dtype, numel, at, () => {
          const rec = `${p}data/${key}`;
          if (!za.has(rec)) throw corrupt(file, `storage '${key}' has no record '${rec}'`, rec);
          const info = za.entry(rec)!;
          if (info.uncompressedSize !== nbytes) {
            throw corrupt(file, `storage has wrong byte size: ${info.uncompressedSize} bytes, but ${numel} ${st.dtype} elements need ${nbytes}`, rec);
          }
          const ref: ZipRecordRef = za.ref(rec);
          return {
            kind: 'storage', dtype: st.dtype, itemsize: st.itemsize, key, location, numel,
            load: () => readZipRecord(ref, opts),
          };
        });
      },
      makeTensor: makeTensorFactory(file, bigEndian, opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES),
    });
    return { file, format: 'zip', root: value, prefix, version: version!, byteorder };
  } finally {
    await za.close();
  }
}

// ---------------------------------------------------------------------------------------------
// legacy stream (torch < 1.6)
// ---------------------------------------------------------------------------------------------

interface LegacyHead {
  root: PyValue;
  keys: string[];
  end: number;
  storages: StorageTable;
}

function parseLegacyHead(head: Buffer, file: string, opts: CheckpointOptions, readStorage: (key: string) => Promise<Uint8Array>): LegacyHead {
  const base = { ...opts, file, allowTrailing: true };
  const magic = unpickle(head, { ...base, record: 'magic number', start: 0 });
  if (magic.value !== LEGACY_MAGIC) {
    if (typeof magic.value === 'number' || typeof magic.value === 'bigint') {
      throw corrupt(file, `bad magic number ${magic.value.toString(16)} (a legacy torch checkpoint starts with ${LEGACY_MAGIC.toString(16)})`, 'magic number');
    }
    throw unsupported(file, `not a PyTorch checkpoint: a plain pickle holding a ${pyTypeName(magic.value)}`);
  }
  const proto = unpickle(head, { ...base, record: 'protocol version', start: magic.end });
  if (proto.value !== LEGACY_PROTOCOL) {
    throw unsupported(file, `legacy protocol version ${String(proto.value)} is not supported (${LEGACY_PROTOCOL})`, 'protocol version');
  }
  const sys = unpickle(head, { ...base, record: 'sys_info', start: proto.end });
  if (!(sys.value instanceof Map)) throw corrupt(file, `sys_info must be a dict, not ${pyTypeName(sys.value)}`, 'sys_info');
  if (sys.value.get('little_endian') === false) throw unsupported(file, 'checkpoint was saved on a big-endian machine', 'sys_info');
  const storages = new StorageTable(file, 'main pickle');
  const main = unpickle(head, {
    ...base,
    record: 'main pickle',
    start: sys.end,
    persistentLoad: (pid, at) => {
      const { st, key, location, numel } = parsePid(pid, file, 'main pickle', 6, at);
      if (pid[5] !== null) throw unsupported(file, `storage '${key}' is a storage view (legacy view_metadata), which is not supported`, 'main pickle');
      return storages.get(key, st.dtype, numel, at, () => ({
        kind: 'storage', dtype: st.dtype, itemsize: st.itemsize, key, location, numel,
        load: () => readStorage(key),
      }));
    },
    makeTensor: makeTensorFactory(file, false, opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES),
  });
  const keysRes = unpickle(head, { ...base, record: 'storage keys', start: main.end });
  const kv = keysRes.value;
  if (!isList(kv)) throw corrupt(file, `storage key list must be a list, not ${pyTypeName(kv)}`, 'storage keys');
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const k of kv) {
    if (typeof k !== 'string') throw corrupt(file, `storage key of type ${pyTypeName(k)}`, 'storage keys');
    if (seen.has(k)) throw corrupt(file, `storage key '${k}' listed twice`, 'storage keys');
    if (!storages.byKey.has(k)) throw corrupt(file, `storage key '${k}' is listed but no tensor uses it`, 'storage keys');
    seen.add(k);
    keys.push(k);
  }
  for (const k of storages.byKey.keys()) if (!seen.has(k)) throw corrupt(file, `storage '${k}' is used but not listed, so it has no data`, 'storage keys');
  return { root: main.value, keys, end: keysRes.end, storages };
}

async function loadLegacy(file: string, opts: CheckpointOptions): Promise<Checkpoint> {
  const { fh, size, mtimeMs } = await openForRead(file);
  try {
    const locations = new Map<string, { offset: number; nbytes: number }>();
    const readStorage = async (key: string): Promise<Uint8Array> => {
      const loc = locations.get(key)!;
      const { fh: h, size: s2, mtimeMs: m2 } = await openForRead(file);
      try {
        if (s2 !== size || m2 !== mtimeMs) throw corrupt(file, 'file changed on disk since the checkpoint was opened', key);
        return await readAt(h, file, loc.offset, loc.nbytes);
      } finally {
        await h.close().catch(() => undefined);
      }
    };
    // The pickles come first; their length is unknown, so read more of the file until they parse.
    const maxHead = Math.min(size, opts.maxLegacyHeaderBytes ?? DEFAULT_MAX_LEGACY_HEADER);
    let len = Math.min(size, 1 << 20);
    let head: LegacyHead;
    for (;;) {
      const buf = await readAt(fh, file, 0, len);
      try {
        head = parseLegacyHead(buf, file, opts, readStorage);
        break;
      } catch (e) {
        if (!isTruncationError(e) || len >= maxHead) {
          if (isTruncationError(e) && len < size) {
            throw unsupported(file, `legacy checkpoint metadata is larger than ${maxHead} bytes (maxLegacyHeaderBytes)`);
          }
          throw e;
        }
        len = Math.min(maxHead, len * 4);
      }
    }
    // Then each storage: int64 LE element count + count × itemsize bytes, in key-list order.
    let pos = head.end;
    for (const key of head.keys) {
      const s = head.storages.byKey.get(key)!;
      if (pos + 8 > size) throw corrupt(file, `file truncated: storage '${key}' should start at byte ${pos} but the file has ${size} bytes`, key);
      const count = (await readAt(fh, file, pos, 8)).readBigInt64LE(0);
      if (count !== BigInt(s.numel)) {
        throw corrupt(file, `storage has wrong byte size: '${key}' holds ${count} elements, the pickle says ${s.numel}`, key);
      }
      const nbytes = s.numel * s.itemsize;
      if (pos + 8 + nbytes > size) {
        throw corrupt(file, `file truncated: storage '${key}' needs ${nbytes} bytes at offset ${pos + 8} but the file has ${size} bytes`, key);
      }
      locations.set(key, { offset: pos + 8, nbytes });
      pos += 8 + nbytes;
    }
    if (pos !== size) throw corrupt(file, `${size - pos} unexpected bytes after the last storage`);
    return { file, format: 'legacy', root: head.root, byteorder: 'little' };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------

/** Loads a PyTorch checkpoint's object tree, with lazy tensors. See the file comment for what is accepted. */
export async function loadCheckpoint(file: string, opts: CheckpointOptions = {}): Promise<Checkpoint> {
  const { fh, size } = await openForRead(file);
  let head: Buffer;
  try {
    head = await readAt(fh, file, 0, Math.min(size, 512));
  } finally {
    await fh.close().catch(() => undefined);
  }
  const kind = sniff(head, size, file);
  if (kind === 'safetensors') return loadSafetensorsCheckpoint(file, opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES);
  return kind === 'zip' ? loadZip(file, opts) : loadLegacy(file, opts);
}
