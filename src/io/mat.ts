/**
 * MATLAB level-5 MAT-files (`save -v6` / `-v7`, scipy.io.savemat): a strict reader for the numeric
 * arrays the data sets need (Flowers' setid.mat / imagelabels.mat, LSP's joints.mat), with no
 * dependency beyond node:zlib.
 *
 * Format (MathWorks "MAT-File Format", constants as scipy/io/matlab/_mio5_params.py):
 *   - a 128-byte header: 116 bytes of text, an 8-byte subsystem offset, the version (0x0100) and the
 *     endian indicator 'IM' (little-endian file) or 'MI' (big-endian), both read in the file's order;
 *   - then data elements, each an 8-byte tag (u32 type, u32 byte count) and its data, padded to 8
 *     bytes inside a matrix. The small form packs type (low 16 bits) and a count <= 4 (high 16 bits)
 *     into one u32 with the data in the tag's other 4 bytes;
 *   - miMATRIX (14) holds: array flags (miUINT32 x2: class in the low byte, complex 0x800, global
 *     0x400, logical 0x200), dimensions (miINT32, at least 2), name (miINT8), the real part and, when
 *     complex, the imaginary part. The numbers are column-major and may be stored in a narrower type
 *     than their class (MATLAB saves a double array of small integers as miUINT8): they are widened
 *     to the class's type here and transposed to row-major (C order) with the same dimensions;
 *   - miCOMPRESSED (15) is a zlib stream holding one element; inflated with a cap.
 *
 * Refused with ERR_MAT_FORMAT naming the file and the variable or byte offset: MAT v4 files (first
 * bytes hold a zero, as scipy's detection), v7.3 files (HDF5; header version 0x0200), unknown endian
 * indicators, tags whose byte count runs past the end of the file or of their matrix, element counts
 * that do not match the dimensions, stored values that do not fit the class, truncated or corrupt
 * compressed data, inflated sizes over the cap (default 256 MiB for the whole file), nested
 * compression and trailing garbage. Variables of other classes (cell, struct, object, char, sparse,
 * function handles, complex numbers) are listed but not decoded: `getMatNumeric` refuses them, so a
 * reader gets an error only when it actually needs such a variable.
 */
import { promises as fsp } from 'node:fs';
import * as zlib from 'node:zlib';
import { SslInvError } from '../errors';

export type MatClass = 'double' | 'single' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' |
  'int64' | 'uint64';

export type MatData = Float64Array | Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array |
  Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** A real numeric (or logical) array, row-major with MATLAB's dimensions (at least 2). */
export interface MatNumericArray {
  kind: 'numeric';
  name: string;
  class: MatClass;
  /** A logical array (class uint8 with the logical flag). */
  logical: boolean;
  dims: number[];
  /** The values in C order: element (i0, i1, ..., ik) at ((i0 * d1 + i1) * d2 + ...) . */
  data: MatData;
}

/** A variable of a kind this reader does not decode (listed so that errors can name it). */
export interface MatOtherVariable {
  kind: 'other';
  name: string;
  /** 'cell', 'struct', 'object', 'char', 'sparse', 'function', 'opaque', or 'complex <class>'. */
  class: string;
  dims: number[];
}

export type MatVariable = MatNumericArray | MatOtherVariable;

export interface MatFile {
  file: string;
  /** The header's descriptive text (trailing spaces and NULs removed). */
  header: string;
  endian: 'little' | 'big';
  /** Variables in file order. */
  variables: Map<string, MatVariable>;
}

export interface MatReadOptions {
  /** Largest total size of inflated miCOMPRESSED data, in bytes. Default 256 MiB. */
  maxInflatedBytes?: number;
}

export const MAT_DEFAULT_MAX_INFLATED_BYTES = 256 * 1024 * 1024;

// miXXX data types: name, byte size.
const MI: Record<number, { name: string; size: number }> = {
  1: { name: 'miINT8', size: 1 },
  2: { name: 'miUINT8', size: 1 },
  3: { name: 'miINT16', size: 2 },
  4: { name: 'miUINT16', size: 2 },
  5: { name: 'miINT32', size: 4 },
  6: { name: 'miUINT32', size: 4 },
  7: { name: 'miSINGLE', size: 4 },
  9: { name: 'miDOUBLE', size: 8 },
  12: { name: 'miINT64', size: 8 },
  13: { name: 'miUINT64', size: 8 },
  14: { name: 'miMATRIX', size: 0 },
  15: { name: 'miCOMPRESSED', size: 0 },
  16: { name: 'miUTF8', size: 1 },
  17: { name: 'miUTF16', size: 2 },
  18: { name: 'miUTF32', size: 4 },
};
const miMATRIX = 14;
const miCOMPRESSED = 15;
const NUMERIC_MI = new Set([1, 2, 3, 4, 5, 6, 7, 9, 12, 13]);

// mxXXX array classes.
const MX_NUMERIC: Record<number, MatClass> = {
  6: 'double', 7: 'single', 8: 'int8', 9: 'uint8', 10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32',
  14: 'int64', 15: 'uint64',
};
const MX_OTHER: Record<number, string> = {
  1: 'cell', 2: 'struct', 3: 'object', 4: 'char', 5: 'sparse', 16: 'function', 17: 'opaque',
};

const INT_RANGE: Partial<Record<MatClass, [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
};

function matError(file: string, field: string | undefined, message: string): SslInvError {
  return new SslInvError('ERR_MAT_FORMAT', message, { file, ...(field !== undefined ? { field } : {}) });
}

interface Tag {
  type: number;
  nbytes: number;
  dataStart: number;
  /** Offset of the next element when elements are padded to 8 bytes (inside a matrix). */
  nextPadded: number;
  small: boolean;
}

class MatParser {
  private readonly le: boolean;
  private inflated = 0;
  private readonly maxInflated: number;

  constructor(private readonly file: string, le: boolean, opts: MatReadOptions) {
    this.le = le;
    this.maxInflated = opts.maxInflatedBytes ?? MAT_DEFAULT_MAX_INFLATED_BYTES;
  }

  fail(message: string, field?: string): never {
    throw matError(this.file, field, message);
  }

  /** The tag at `p`; its data must end by `end`. */
  tag(dv: DataView, p: number, end: number, where: string, field?: string): Tag {
    if (end - p < 8) this.fail(`${where}: data element tag cut short (${end - p} of 8 bytes)`, field);
    const w0 = dv.getUint32(p, this.le);
    if (w0 >>> 16 !== 0) {
      const nbytes = w0 >>> 16, type = w0 & 0xffff;
      if (nbytes > 4) this.fail(`${where}: small data element declares ${nbytes} bytes (at most 4)`, field);
      return { type, nbytes, dataStart: p + 4, nextPadded: p + 8, small: true };
    }
    const nbytes = dv.getUint32(p + 4, this.le);
    const dataStart = p + 8;
    if (nbytes > end - dataStart) {
      this.fail(`${where}: data element of type ${MI[w0]?.name ?? w0} declares ${nbytes} bytes but only ` +
        `${end - dataStart} remain`, field);
    }
    return { type: w0, nbytes, dataStart, nextPadded: dataStart + Math.ceil(nbytes / 8) * 8, small: false };
  }

  /** Parses the top-level elements of the file body. */
  body(buf: Uint8Array): Map<string, MatVariable> {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const vars = new Map<string, MatVariable>();
    let p = 128;
    while (p < buf.length) {
      const rest = buf.length - p;
      if (rest < 8 && buf.subarray(p).every((x) => x === 0)) break; // zero padding at the end
      const t = this.tag(dv, p, buf.length, `byte ${p}`);
      let v: MatVariable;
      if (t.type === miCOMPRESSED) {
        v = this.compressed(buf.subarray(t.dataStart, t.dataStart + t.nbytes), p);
      } else if (t.type === miMATRIX) {
        v = this.matrix(buf, dv, t.dataStart, t.dataStart + t.nbytes, `byte ${p}`);
      } else {
        this.fail(`byte ${p}: top-level data element of type ${MI[t.type]?.name ?? t.type} (expected miMATRIX or miCOMPRESSED)`);
      }
      if (vars.has(v.name)) this.fail(`variable '${v.name}' appears twice`, v.name);
      vars.set(v.name, v);
      p = t.dataStart + t.nbytes;
    }
    return vars;
  }

  private compressed(data: Uint8Array, at: number): MatVariable {
    const left = this.maxInflated - this.inflated;
    let out: Buffer;
    try {
      out = zlib.inflateSync(data, { maxOutputLength: Math.max(1, left) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
        this.fail(`byte ${at}: compressed element inflates to more than the ${this.maxInflated}-byte limit ` +
          '(maxInflatedBytes)');
      }
      this.fail(`byte ${at}: compressed element is corrupt or truncated (${(e as Error).message})`);
    }
    this.inflated += out.length;
    if (this.inflated > this.maxInflated) {
      this.fail(`byte ${at}: compressed data inflate to more than the ${this.maxInflated}-byte limit (maxInflatedBytes)`);
    }
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const where = `compressed element at byte ${at}`;
    const t = this.tag(dv, 0, out.length, where);
    if (t.type === miCOMPRESSED) this.fail(`${where}: nested compression is not valid`);
    if (t.type !== miMATRIX) this.fail(`${where}: holds a ${MI[t.type]?.name ?? t.type} element (expected miMATRIX)`);
    const end = t.dataStart + t.nbytes;
    if (out.length - end >= 8 || !out.subarray(end).every((x) => x === 0)) {
      this.fail(`${where}: ${out.length - end} bytes follow the matrix inside the compressed data`);
    }
    return this.matrix(out, dv, t.dataStart, end, where);
  }

  private matrix(b: Uint8Array, dv: DataView, s: number, e: number, where: string): MatVariable {
    // array flags
    const ft = this.tag(dv, s, e, `${where}: array flags`);
    if (ft.type !== 6 || ft.nbytes !== 8) this.fail(`${where}: array flags must be 8 bytes of miUINT32`);
    const flags = dv.getUint32(ft.dataStart, this.le);
    const cls = flags & 0xff;
    const complex = (flags & 0x800) !== 0;
    const logical = (flags & 0x200) !== 0;
    // dimensions
    const dt = this.tag(dv, ft.nextPadded, e, `${where}: dimensions`);
    if (dt.type !== 5 || dt.nbytes % 4 !== 0 || dt.nbytes < 8) {
      this.fail(`${where}: dimensions must be at least 2 miINT32 values`);
    }
    const dims: number[] = [];
    for (let i = 0; i < dt.nbytes / 4; i++) {
      const d = dv.getInt32(dt.dataStart + 4 * i, this.le);
      if (d < 0) this.fail(`${where}: negative dimension ${d}`);
      dims.push(d);
    }
    // name
    const nt = this.tag(dv, dt.nextPadded, e, `${where}: array name`);
    if (nt.type !== 1 && nt.type !== 2 && nt.type !== 16) this.fail(`${where}: array name must be miINT8 text`);
    const nameBytes = b.subarray(nt.dataStart, nt.dataStart + nt.nbytes);
    let name: string;
    try {
      name = new TextDecoder('utf-8', { fatal: true }).decode(nameBytes);
    } catch {
      this.fail(`${where}: array name is not valid text`);
    }
    const field = name;
    const otherClass = MX_OTHER[cls];
    const mclass = MX_NUMERIC[cls];
    if (otherClass !== undefined) return { kind: 'other', name, class: otherClass, dims };
    if (mclass === undefined) this.fail(`unknown array class ${cls}`, field);
    if (complex) return { kind: 'other', name, class: `complex ${mclass}`, dims };

    let count = 1;
    for (const d of dims) {
      count *= d;
      if (!Number.isSafeInteger(count)) this.fail(`dimensions ${dims.join('x')} overflow`, field);
    }
    const rt = this.tag(dv, nt.nextPadded, e, `${where}: real part`, field);
    if (!NUMERIC_MI.has(rt.type)) this.fail(`real part stored as ${MI[rt.type]?.name ?? `type ${rt.type}`} (expected a numeric type)`, field);
    const size = MI[rt.type]!.size;
    if (rt.nbytes % size !== 0) this.fail(`real part of ${rt.nbytes} bytes is not a whole number of ${MI[rt.type]!.name} values`, field);
    const stored = rt.nbytes / size;
    if (stored !== count) {
      this.fail(`${dims.join('x')} array needs ${count} values but ${stored} are stored`, field);
    }
    if (rt.nextPadded < e) {
      // Anything after the real part of a real array would be an imaginary part without the flag.
      this.fail(`${e - rt.nextPadded} unexpected bytes after the real part`, field);
    }
    const colMajor = this.values(dv, rt.dataStart, rt.type, count, mclass, field);
    return { kind: 'numeric', name, class: mclass, logical, dims, data: toRowMajor(colMajor, dims) };
  }

  /** Reads `count` stored values of miXXX `type` and converts them to `cls`'s array type. */
  private values(dv: DataView, p: number, type: number, count: number, cls: MatClass, field: string): MatData {
    const le = this.le;
    const out = allocate(cls, count);
    const big = cls === 'int64' || cls === 'uint64';
    const read64 = type === 12 || type === 13;
    const get = (i: number): number => {
      switch (type) {
        case 1: return dv.getInt8(p + i);
        case 2: return dv.getUint8(p + i);
        case 3: return dv.getInt16(p + 2 * i, le);
        case 4: return dv.getUint16(p + 2 * i, le);
        case 5: return dv.getInt32(p + 4 * i, le);
        case 6: return dv.getUint32(p + 4 * i, le);
        case 7: return dv.getFloat32(p + 4 * i, le);
        case 9: return dv.getFloat64(p + 8 * i, le);
        default: return NaN;
      }
    };
    const getBig = (i: number): bigint => (type === 12 ? dv.getBigInt64(p + 8 * i, le) : dv.getBigUint64(p + 8 * i, le));
    if (big) {
      const lo = cls === 'int64' ? -(2n ** 63n) : 0n, hi = cls === 'int64' ? 2n ** 63n - 1n : 2n ** 64n - 1n;
      const o = out as BigInt64Array | BigUint64Array;
      for (let i = 0; i < count; i++) {
        let v: bigint;
        if (read64) {
          v = getBig(i);
        } else {
          const x = get(i);
          if (!Number.isInteger(x)) this.fail(`stored value ${x} does not fit class ${cls}`, field);
          v = BigInt(x);
        }
        if (v < lo || v > hi) this.fail(`stored value ${v} does not fit class ${cls}`, field);
        o[i] = v;
      }
      return o;
    }
    const range = INT_RANGE[cls];
    const o = out as Exclude<MatData, BigInt64Array | BigUint64Array>;
    for (let i = 0; i < count; i++) {
      let x: number;
      if (read64) {
        const v = getBig(i);
        x = Number(v);
        if (BigInt(x) !== v) this.fail(`stored value ${v} does not fit class ${cls}`, field);
      } else {
        x = get(i);
      }
      if (range !== undefined && (!Number.isInteger(x) || x < range[0] || x > range[1])) {
        this.fail(`stored value ${x} does not fit class ${cls}`, field);
      }
      o[i] = x;
    }
    return o;
  }
}

function allocate(cls: MatClass, n: number): MatData {
  switch (cls) {
    case 'double': return new Float64Array(n);
    case 'single': return new Float32Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': return new Uint8Array(n);
    case 'int16': return new Int16Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint64': return new BigUint64Array(n);
  }
}

/** Column-major (Fortran) values to row-major (C) order, same dimensions. */
export function toRowMajor<T extends MatData>(src: T, dims: readonly number[]): T {
  const k = dims.length;
  const n = src.length;
  if (k <= 1 || n === 0 || dims.filter((d) => d > 1).length <= 1) return src;
  const out = new (src.constructor as { new(n: number): T })(n);
  // Fortran strides.
  const fstride: number[] = new Array(k);
  let s = 1;
  for (let i = 0; i < k; i++) { fstride[i] = s; s *= dims[i]!; }
  const idx = new Array<number>(k).fill(0);
  let f = 0;
  for (let c = 0; c < n; c++) {
    (out as unknown as ArrayLike<unknown> & Record<number, unknown>)[c] = (src as unknown as ArrayLike<unknown>)[f];
    // increment the C-order multi-index (last dimension fastest), keeping f in step
    for (let d = k - 1; d >= 0; d--) {
      idx[d]!++;
      f += fstride[d]!;
      if (idx[d]! < dims[d]!) break;
      f -= fstride[d]! * dims[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** Parses a MAT-file held in memory. `file` names it in errors. */
export function parseMat(buf: Uint8Array, file: string, opts: MatReadOptions = {}): MatFile {
  if (buf.length < 128) {
    if (buf.length >= 4 && buf.subarray(0, 4).includes(0)) {
      throw matError(file, 'header', 'MAT v4 files are not supported (save with -v6 or -v7, or scipy.io.savemat)');
    }
    throw matError(file, 'header', `not a MAT-file: ${buf.length} bytes, shorter than the 128-byte header`);
  }
  if (buf.subarray(0, 4).includes(0)) {
    throw matError(file, 'header', 'MAT v4 files are not supported (save with -v6 or -v7, or scipy.io.savemat)');
  }
  const endianChars = String.fromCharCode(buf[126]!, buf[127]!);
  if (endianChars !== 'IM' && endianChars !== 'MI') {
    throw matError(file, 'header', `not a MAT v5 file: endian indicator ${JSON.stringify(endianChars)} (expected 'IM' or 'MI')`);
  }
  const le = endianChars === 'IM';
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint16(124, le);
  const text = Buffer.from(buf.buffer, buf.byteOffset, 116).toString('latin1').replace(/[\0 ]+$/, '');
  if (version === 0x0200 || /^MATLAB 7\.3/.test(text)) {
    throw matError(file, 'header', 'MAT v7.3 files (HDF5) are not supported; save with -v7 or -v6 (or scipy.io.savemat)');
  }
  if (version !== 0x0100) {
    throw matError(file, 'header', `unknown MAT version 0x${version.toString(16).padStart(4, '0')} (expected 0x0100)`);
  }
  const parser = new MatParser(file, le, opts);
  const variables = parser.body(buf);
  return { file, header: text, endian: le ? 'little' : 'big', variables };
}

/** Reads and parses a MAT-file. A missing file is ERR_FILE_NOT_FOUND. */
export async function readMat(file: string, opts: MatReadOptions = {}): Promise<MatFile> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SslInvError('ERR_FILE_NOT_FOUND', 'no such file', { file, cause: e });
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  return parseMat(buf, file, opts);
}

/**
 * The numeric variable `name` of a parsed file. A missing variable, or one of another kind (cell,
 * struct, char, sparse, complex...), is ERR_DATASET_LAYOUT naming the file, the variable and what the
 * file holds instead.
 */
export function getMatNumeric(mat: MatFile, name: string, expected = 'a numeric array'): MatNumericArray {
  const v = mat.variables.get(name);
  if (v === undefined) {
    const have = [...mat.variables.keys()];
    throw new SslInvError('ERR_DATASET_LAYOUT', `no variable '${name}' (expected ${expected}); the file holds ` +
      (have.length ? have.map((n) => `'${n}'`).join(', ') : 'no variables'), { file: mat.file, field: name });
  }
  if (v.kind !== 'numeric') {
    throw new SslInvError('ERR_DATASET_LAYOUT', `is a ${v.class} array of size ${v.dims.join('x')} (expected ${expected})`,
      { file: mat.file, field: name });
  }
  return v;
}

/** The values of a numeric array as JavaScript numbers (64-bit integers must be safe integers). */
export function matValues(a: MatNumericArray, file: string): number[] {
  const out: number[] = new Array(a.data.length);
  for (let i = 0; i < a.data.length; i++) {
    const v = a.data[i]!;
    if (typeof v === 'bigint') {
      const x = Number(v);
      if (!Number.isSafeInteger(x)) throw matError(file, a.name, `value ${v} is beyond 2^53`);
      out[i] = x;
    } else {
      out[i] = v;
    }
  }
  return out;
}
