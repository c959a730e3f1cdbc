/**
 * safetensors files (huggingface/safetensors layout): u64 little-endian header length N, N bytes of
 * UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then
 * the tensors' bytes, little-endian, C order. Used for our caches (feature statistics) and exports,
 * and read as model weights (loadCheckpoint), whose F16 / BF16 tensors are widened to float32.
 *
 * Reading checks what the reference implementation checks: N <= 100 MB and 8 + N <= file size; the
 * header is valid UTF-8 JSON with no duplicate keys; known dtypes; offsets in order, contiguous from
 * 0, each region exactly numel x itemsize bytes (overflow-checked), the last ending at the end of
 * the file. Any violation is ERR_CHECKPOINT_CORRUPT naming the file and, in `field`, the tensor (or
 * '__metadata__', or 'header' for the length prefix and the header text as a whole).
 */
import { promises as fsp } from 'node:fs';
import { SslInvError } from '../errors';
import { writeFileAtomic } from './atomic-write';

/** F16 and BF16 are read only (widened to float32: model weights saved in half precision). */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';
const ITEMSIZE: Record<SafetensorsDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 };
const MAX_HEADER = 100 * 1024 * 1024;
/** Strict UTF-8: invalid bytes throw instead of becoming U+FFFD (a real U+FFFD in a name stays valid). */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type SafetensorsArray = Float64Array | Float32Array | BigInt64Array | Int32Array | Uint8Array;

export interface SafetensorsTensor {
  /** The dtype in the file (F16 and BF16 data come back as float32, exactly). */
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsArray;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

function dtypeOf(a: SafetensorsArray): SafetensorsDType {
  if (a instanceof Float64Array) return 'F64';
  if (a instanceof Float32Array) return 'F32';
  if (a instanceof BigInt64Array) return 'I64';
  if (a instanceof Int32Array) return 'I32';
  return 'U8';
}

/** Encodes tensors (in the given order) and string metadata. */
export function encodeSafetensors(tensors: Map<string, { shape: number[]; data: SafetensorsArray }>,
  metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new SslInvError('ERR_SHAPE_MISMATCH', `${name}: shape [${t.shape.join(', ')}] vs ${t.data.length} values`);
    header[name] = { dtype: dtypeOf(t.data), shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hb.length + offset);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  let p = 8 + hb.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

export async function writeSafetensors(file: string, tensors: Map<string, { shape: number[]; data: SafetensorsArray }>,
  metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Top-level keys of a JSON object text, in order (to detect duplicates JSON.parse would merge). */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(json.slice(i, j + 1)) as string);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1 && c === '{') expectKey = true;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

export function parseSafetensors(buf: Buffer, file = '<buffer>'): SafetensorsFile {
  const bad = (m: string, field?: string): never => {
    throw new SslInvError('ERR_CHECKPOINT_CORRUPT', m, field === undefined ? { file } : { file, field });
  };
  if (buf.length < 8) bad('not a safetensors file: shorter than its 8-byte header length', 'header');
  const n64 = buf.readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER)) bad(`header length ${n64} is over the 100 MB limit`, 'header');
  const n = Number(n64);
  if (8 + n > buf.length) bad(`header length ${n} runs past the end of the file (${buf.length} bytes)`, 'header');
  let text = '';
  try {
    text = UTF8.decode(buf.subarray(8, 8 + n));
  } catch {
    bad('the header is not valid UTF-8', 'header');
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return bad(`the header is not valid JSON (${(e as Error).message})`, 'header');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) bad('the header is not a JSON object', 'header');
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) bad('the header has a duplicate key', k);
    seen.add(k);
  }
  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: [string, { dtype: SafetensorsDType; shape: number[]; begin: number; end: number }][] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('__metadata__ is not an object', name);
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') bad(`metadata value '${k}' is not a string`, name);
        metadata[k] = s as string;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !(e.dtype in ITEMSIZE)) bad(`unsupported dtype ${JSON.stringify(e?.dtype)}`, name);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) bad('bad shape', name);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0)) bad('bad data_offsets', name);
    const [begin, end] = off as [number, number];
    let numel = 1n;
    for (const d of e.shape as number[]) numel *= BigInt(d);
    if (end < begin || BigInt(end - begin) !== numel * BigInt(ITEMSIZE[e.dtype as SafetensorsDType])) {
      bad(`data_offsets [${begin}, ${end}] do not hold [${(e.shape as number[]).join(', ')}] ${e.dtype}`, name);
    }
    entries.push([name, { dtype: e.dtype as SafetensorsDType, shape: e.shape as number[], begin, end }]);
  }
  entries.sort((a, b) => a[1].begin - b[1].begin);
  let expected = 0;
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, e] of entries) {
    if (e.begin !== expected) bad(`tensor data is not contiguous at byte ${e.begin} (expected ${expected})`, name);
    if (e.end > dataLen) bad(`data_offsets [${e.begin}, ${e.end}] run past the end of the file (the data section is ${dataLen} bytes)`, name);
    expected = e.end;
    const bytes = buf.subarray(dataStart + e.begin, dataStart + e.end);
    if (e.dtype === 'F16' || e.dtype === 'BF16') {
      tensors.set(name, { dtype: e.dtype, shape: e.shape, data: widenHalf(bytes, e.dtype) });
      continue;
    }
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    const Ctor = { F64: Float64Array, F32: Float32Array, I64: BigInt64Array, I32: Int32Array, U8: Uint8Array }[e.dtype];
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data: new Ctor(copy.buffer, 0, copy.length / ITEMSIZE[e.dtype]) });
  }
  if (expected !== dataLen) {
    bad(`the data section is ${dataLen} bytes but the tensors cover ${expected}`, entries.length ? entries[entries.length - 1]![0] : 'header');
  }
  return { tensors, metadata };
}

/**
 * Little-endian IEEE half (F16) or bfloat16 (BF16) values as float32. Both widen exactly, as
 * torch's `.float()` does: BF16 is the top half of a float32; F16's subnormals become normal float32s,
 * its infinities and NaNs stay so (NaN payloads kept in the top bits).
 */
export function widenHalf(bytes: Uint8Array, dtype: 'F16' | 'BF16'): Float32Array {
  const n = bytes.length >> 1;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const h = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    if (dtype === 'BF16') {
      bits[i] = h << 16 >>> 0;
      continue;
    }
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      bits[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0;  // inf, NaN
    } else if (exp !== 0) {
      bits[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;  // rebias 15 -> 127
    } else {
      out[i] = (mant * 2 ** -24) * (sign ? -1 : 1);  // zero or subnormal: exact in float32
      if (mant === 0 && sign) bits[i] = 0x80000000;  // -0
    }
  }
  return out;
}

export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    const code = (e as { code?: string }).code === 'ENOENT' ? 'ERR_FILE_NOT_FOUND' : 'ERR_FILE_READ';
    throw new SslInvError(code, `cannot read (${(e as Error).message})`, { file, cause: e });
  }
  return parseSafetensors(buf, file);
}
