/**
 * NumPy `.npy` files: a strict reader and a writer, with no dependency.
 *
 * Format (numpy/lib/_format_impl.py): `\x93NUMPY`, major and minor version bytes, the header length
 * (u16 LE in version 1.0, u32 LE in 2.0 and 3.0), then the header: a Python dict literal with exactly
 * the keys `descr`, `fortran_order` and `shape`, padded with spaces and ended by `\n`. The data follow:
 * `prod(shape) * itemsize` bytes, nothing more and nothing less.
 *
 * The header is parsed by a small grammar (never evaluated), capped at 10000 bytes as numpy caps it.
 * Only plain numeric dtypes are read: `<f4 <f8 <i4 <i8 |u1` and their big-endian forms (byte-swapped
 * on read), and `|b1` (bool, read as uint8). Object (`O`), void (`V`), structured and every other
 * dtype is refused with ERR_NPY_FORMAT naming the file and the field. Fortran-ordered arrays are
 * transposed to C order on read. The data are always copied into a fresh, aligned typed array (the
 * header makes data offsets aligned to 16 or 64 bytes only, and Buffers from Node's pool are not
 * aligned at all).
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { SslInvError } from '../errors';
import { writeFileAtomic } from './atomic-write';
import { byteswap, HOST_LITTLE_ENDIAN } from './byte-order';
import { NPY_WRITE_DESCR, npyHeader } from './npy-writer';

export type NpyDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8';

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** numpy's own cap on the header length (it refuses longer headers unless told otherwise). */
export const NPY_MAX_HEADER_BYTES = 10000;

const ITEMSIZE: Record<NpyDType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1 };

/** descr strings we read, and what they become. */
const DESCRS: Record<string, { dtype: NpyDType; bigEndian: boolean }> = {
  '<f4': { dtype: 'float32', bigEndian: false },
  '<f8': { dtype: 'float64', bigEndian: false },
  '<i4': { dtype: 'int32', bigEndian: false },
  '<i8': { dtype: 'int64', bigEndian: false },
  '>f4': { dtype: 'float32', bigEndian: true },
  '>f8': { dtype: 'float64', bigEndian: true },
  '>i4': { dtype: 'int32', bigEndian: true },
  '>i8': { dtype: 'int64', bigEndian: true },
  '|u1': { dtype: 'uint8', bigEndian: false },
  '<u1': { dtype: 'uint8', bigEndian: false },
  '>u1': { dtype: 'uint8', bigEndian: false },
  '|b1': { dtype: 'uint8', bigEndian: false },
};

function fail(file: string | undefined, field: string, message: string): never {
  throw new SslInvError('ERR_NPY_FORMAT', message, { file: file ?? '<buffer>', field });
}

// ---------------------------------------------------------------------------------------------
// Header grammar. A tiny tokenizer and recursive-descent parser for exactly this subset of Python:
//   header  := ws '{' ws entry (ws ',' ws entry)* (ws ',')? ws '}' ws
//   entry   := string ws ':' ws value
//   value   := string | 'True' | 'False' | tuple
//   tuple   := '(' ws ')' | '(' ws int ws ',' ws ')' | '(' ws int (ws ',' ws int)+ (ws ',')? ws ')'
//   int     := [0-9]+            (no sign, no underscores, no 'L' suffix)
//   string  := '...' | "..."     (no escapes, printable ASCII only)
//   ws      := [ \t\n\r]*
// Anything else is an error. Nothing is ever evaluated.
// ---------------------------------------------------------------------------------------------

type HeaderValue = { kind: 'str'; value: string } | { kind: 'bool'; value: boolean } | { kind: 'tuple'; value: string[] };

class HeaderParser {
  private pos = 0;
  constructor(private readonly s: string, private readonly file: string | undefined) {}

  private err(message: string, field = 'header'): never {
    return fail(this.file, field, `${message} at header offset ${this.pos}`);
  }

  private ws(): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  private peek(): string {
    return this.s[this.pos] ?? '';
  }

  private expect(ch: string): void {
    if (this.s[this.pos] !== ch) this.err(`expected '${ch}' but found ${JSON.stringify(this.peek() || 'end of header')}`);
    this.pos++;
  }

  private string(): string {
    const q = this.peek();
    if (q !== "'" && q !== '"') this.err('expected a quoted string');
    this.pos++;
    const start = this.pos;
    while (this.pos < this.s.length && this.s[this.pos] !== q) {
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x5c) this.err('escape sequences are not allowed in header strings');
      if (c < 0x20 || c > 0x7e) this.err('non-printable character in header string');
      this.pos++;
    }
    if (this.pos >= this.s.length) this.err('unterminated string');
    const v = this.s.slice(start, this.pos);
    this.pos++;
    return v;
  }

  private int(field: string): string {
    const start = this.pos;
    if (this.peek() === '-') this.err('negative dimension', field);
    while (this.pos < this.s.length && this.s.charCodeAt(this.pos) >= 0x30 && this.s.charCodeAt(this.pos) <= 0x39) this.pos++;
    if (this.pos === start) this.err(`expected a non-negative integer but found ${JSON.stringify(this.peek() || 'end of header')}`, field);
    return this.s.slice(start, this.pos);
  }

  private tuple(field: string): string[] {
    this.expect('(');
    this.ws();
    const items: string[] = [];
    if (this.peek() === ')') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.int(field));
      this.ws();
      if (this.peek() === ',') {
        this.pos++;
        this.ws();
        if (this.peek() === ')') {
          this.pos++;
          return items;
        }
        continue;
      }
      if (this.peek() === ')') {
        // "(3)" is an int in Python, not a tuple.
        if (items.length === 1) this.err('a one-element tuple needs a trailing comma', field);
        this.pos++;
        return items;
      }
      this.err(`expected ',' or ')' in tuple but found ${JSON.stringify(this.peek() || 'end of header')}`, field);
    }
  }

  private value(field: string): HeaderValue {
    const c = this.peek();
    if (c === "'" || c === '"') return { kind: 'str', value: this.string() };
    if (c === '(') return { kind: 'tuple', value: this.tuple(field) };
    if (this.s.startsWith('True', this.pos)) {
      this.pos += 4;
      return { kind: 'bool', value: true };
    }
    if (this.s.startsWith('False', this.pos)) {
      this.pos += 5;
      return { kind: 'bool', value: false };
    }
    if (c === '[' || c === '{') this.err('nested lists and dicts are not allowed (structured dtypes are refused)', field);
    return this.err(`unexpected value ${JSON.stringify(this.s.slice(this.pos, this.pos + 16))}`, field);
  }

  parse(): Map<string, HeaderValue> {
    const out = new Map<string, HeaderValue>();
    this.ws();
    this.expect('{');
    this.ws();
    if (this.peek() === '}') this.err('empty header dict');
    for (;;) {
      const key = this.string();
      if (!['descr', 'fortran_order', 'shape'].includes(key)) this.err(`unexpected header key '${key}'`, key);
      if (out.has(key)) this.err(`duplicate header key '${key}'`, key);
      this.ws();
      this.expect(':');
      this.ws();
      out.set(key, this.value(key));
      this.ws();
      if (this.peek() === ',') {
        this.pos++;
        this.ws();
        if (this.peek() === '}') break;
        continue;
      }
      if (this.peek() === '}') break;
      this.err(`expected ',' or '}' but found ${JSON.stringify(this.peek() || 'end of header')}`);
    }
    this.pos++; // '}'
    this.ws();
    if (this.pos !== this.s.length) this.err('trailing characters after the header dict');
    for (const k of ['descr', 'fortran_order', 'shape']) if (!out.has(k)) fail(this.file, k, `header has no '${k}' key`);
    return out;
  }
}

function allocate(dtype: NpyDType, n: number): NpyArray['data'] {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint8': return new Uint8Array(n);
  }
}

function bytesOf(a: NpyArray['data']): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Reorders a column-major (Fortran) array into row-major (C) order. */
function fortranToC(src: NpyArray['data'], shape: number[]): NpyArray['data'] {
  const nd = shape.length;
  if (nd < 2) return src;
  const n = src.length;
  const dst = allocate(dtypeOfData(src), n) as typeof src;
  // Fortran strides (in elements): stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
  const fstride = new Array<number>(nd);
  fstride[0] = 1;
  for (let k = 1; k < nd; k++) fstride[k] = fstride[k - 1]! * shape[k - 1]!;
  const idx = new Array<number>(nd).fill(0);
  let srcOff = 0;
  const last = nd - 1;
  const lastLen = shape[last]!;
  const lastStride = fstride[last]!;
  for (let o = 0; o < n; ) {
    // Inner loop over the last (fastest in C) axis.
    let s = srcOff;
    for (let j = 0; j < lastLen; j++, s += lastStride) (dst as unknown as { [i: number]: unknown })[o++] = (src as unknown as { [i: number]: unknown })[s];
    // Increment the outer index.
    for (let k = last - 1; k >= 0; k--) {
      idx[k]!++;
      srcOff += fstride[k]!;
      if (idx[k]! < shape[k]!) break;
      srcOff -= fstride[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
  return dst;
}

function dtypeOfData(a: NpyArray['data']): NpyDType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  return 'uint8';
}

/** Parses a whole `.npy` file held in memory. `file` is used in error messages. */
export function parseNpy(buf: Buffer, file?: string): NpyArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail(file, 'magic', 'not a .npy file (bad magic string)');
  const major = buf[6]!;
  const minor = buf[7]!;
  if (!(major === 1 || major === 2 || major === 3) || minor !== 0) {
    fail(file, 'version', `unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are read)`);
  }
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else {
    if (buf.length < 12) fail(file, 'header', 'file ends inside the header length');
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  }
  if (headerLen > NPY_MAX_HEADER_BYTES) fail(file, 'header', `header length ${headerLen} exceeds the ${NPY_MAX_HEADER_BYTES}-byte limit`);
  if (headerStart + headerLen > buf.length) fail(file, 'header', `file ends inside the header (${buf.length} bytes, header needs ${headerStart + headerLen})`);
  const hbytes = buf.subarray(headerStart, headerStart + headerLen);
  let header: string;
  if (major === 3) {
    try {
      header = new TextDecoder('utf-8', { fatal: true }).decode(hbytes);
    } catch {
      return fail(file, 'header', 'header is not valid UTF-8');
    }
  } else {
    header = hbytes.toString('latin1');
  }
  const dict = new HeaderParser(header, file).parse();

  const descrV = dict.get('descr')!;
  if (descrV.kind !== 'str') fail(file, 'descr', 'descr must be a string (structured dtypes are refused)');
  const descr = DESCRS[descrV.value];
  if (!descr) {
    const d = descrV.value;
    const why = /O/.test(d) ? 'object arrays hold pickles and are refused'
      : /V/.test(d) ? 'void/structured dtypes are refused'
        : 'only <f4 <f8 <i4 <i8 |u1 |b1 (and big-endian forms) are read';
    fail(file, 'descr', `unsupported dtype '${d}': ${why}`);
  }
  const fo = dict.get('fortran_order')!;
  if (fo.kind !== 'bool') fail(file, 'fortran_order', 'fortran_order must be True or False');
  const sh = dict.get('shape')!;
  if (sh.kind !== 'tuple') fail(file, 'shape', 'shape must be a tuple of non-negative integers');

  const shape: number[] = [];
  let count = 1;
  for (const s of sh.value) {
    const d = Number(s);
    if (!Number.isSafeInteger(d)) fail(file, 'shape', `dimension ${s} is too large`);
    shape.push(d);
    count *= d;
    if (!Number.isSafeInteger(count)) fail(file, 'shape', `element count of shape (${sh.value.join(', ')}) overflows`);
  }
  const itemsize = ITEMSIZE[descr.dtype];
  const nbytes = count * itemsize;
  if (!Number.isSafeInteger(nbytes)) fail(file, 'shape', `byte size of shape (${sh.value.join(', ')}) overflows`);
  const dataStart = headerStart + headerLen;
  const have = buf.length - dataStart;
  if (have !== nbytes) {
    fail(file, 'data', `data is ${have} bytes but shape (${shape.join(', ')}) of ${descrV.value} needs ${nbytes}` +
      (have < nbytes ? ' (file truncated?)' : ' (trailing bytes)'));
  }

  let data = allocate(descr.dtype, count);
  const dst = bytesOf(data);
  dst.set(buf.subarray(dataStart, dataStart + nbytes));
  if (descr.bigEndian === HOST_LITTLE_ENDIAN) byteswap(dst, itemsize);
  if (fo.value) data = fortranToC(data, shape);
  return { dtype: descr.dtype, shape, data };
}

function readError(e: unknown, file: string): SslInvError {
  const code = (e as { code?: string })?.code;
  if (code === 'ENOENT') return new SslInvError('ERR_FILE_NOT_FOUND', 'no such file', { file, cause: e });
  return new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error)?.message ?? String(e)}`, { file, cause: e });
}

export function readNpySync(file: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw readError(e, file);
  }
  return parseNpy(buf, file);
}

export async function readNpy(file: string): Promise<NpyArray> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    throw readError(e, file);
  }
  return parseNpy(buf, file);
}

function checkArray(arr: NpyArray): void {
  const bad = (m: string): never => {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `encodeNpy: ${m}`);
  };
  if (!(arr.dtype in NPY_WRITE_DESCR)) bad(`unsupported dtype '${String(arr.dtype)}'`);
  if (dtypeOfData(arr.data) !== arr.dtype || (arr.dtype === 'uint8' && !(arr.data instanceof Uint8Array))) {
    bad(`data is a ${arr.data?.constructor?.name} but dtype is ${arr.dtype}`);
  }
  if (!Array.isArray(arr.shape)) bad('shape must be an array');
  let n = 1;
  for (const d of arr.shape) {
    if (!Number.isSafeInteger(d) || d < 0) bad(`bad dimension ${d} in shape [${arr.shape.join(', ')}]`);
    n *= d;
  }
  if (!Number.isSafeInteger(n) || n !== arr.data.length) bad(`shape [${arr.shape.join(', ')}] has ${n} elements but data has ${arr.data.length}`);
}

/** Encodes an array as a version-1.0, little-endian, C-ordered `.npy` file, byte-identical to numpy's. */
export function encodeNpy(arr: NpyArray): Buffer {
  checkArray(arr);
  const header = npyHeader(arr.dtype, arr.shape);
  if (header.length > 0xffff + 10) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `encodeNpy: header of ${header.length} bytes does not fit a version 1.0 file`);
  }
  const out = Buffer.alloc(header.length + arr.data.byteLength);
  header.copy(out, 0);
  const body = out.subarray(header.length);
  body.set(bytesOf(arr.data));
  if (!HOST_LITTLE_ENDIAN) byteswap(body, ITEMSIZE[arr.dtype]);
  return out;
}

/** Writes an array as `.npy`, atomically (temp file, fsync, rename, directory fsync). */
export async function writeNpy(file: string, arr: NpyArray): Promise<void> {
  const buf = encodeNpy(arr);
  await writeFileAtomic(file, buf);
}
