/**
 * Writing PyTorch checkpoints that `torch.load` reads (the zip format of torch >= 1.6), for the
 * `random` model the invariance evaluation saves on first use and for training checkpoints.
 *
 * `torchSave(file, value)` pickles a value tree (protocol 2, as torch.save does) whose tensors are
 * `TorchTensor`s, and writes the archive `<stem>/data.pkl`, `<stem>/data/<i>` (raw little-endian
 * storages, one per tensor, 64-byte aligned like PyTorch's writer) and `<stem>/version`, using zip64
 * records when offsets or sizes pass 4 GiB. The file is written to a temp name, fsynced and renamed:
 * an interrupted save leaves the previous file intact. Only what a state dict needs is supported:
 * None, booleans, numbers, bigints, strings, lists, tuples, dicts and OrderedDicts (Map), tensors.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from './crc32';
import { SslInvError } from '../errors';
import { tempNameFor, trackTempFile, untrackTempFile, writeAll } from './atomic-write';

export type TorchSaveDType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8';

/** A dense C-ordered tensor to save. */
export class TorchTensor {
  constructor(
    readonly dtype: TorchSaveDType,
    readonly shape: readonly number[],
    readonly data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array,
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new SslInvError('ERR_SHAPE_MISMATCH', `tensor of shape [${shape.join(', ')}] needs ${n} values, got ${data.length}`);
  }
}

/** A Python tuple (arrays pickle as lists). */
export class PyTuple {
  constructor(readonly items: SaveValue[]) {}
}

/** A Python dict; a plain Map pickles as collections.OrderedDict (a state dict). */
export class PyDict {
  constructor(readonly entries: Map<string | number, SaveValue>) {}
}

/**
 * A Python float even when the value is integral: a plain number that is a safe integer pickles as
 * an int, as `0` and `1` are in Python, but PyTorch keeps the type it was given (main_moco.py's
 * `--lr 1` is 1.0 in the optimiser's state dict, where `dampening`'s default is the int 0).
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type SaveValue = null | boolean | number | bigint | string | SaveValue[] | PyTuple | PyDict | PyFloat
  | Map<string | number, SaveValue> | TorchTensor;

const STORAGE: Record<TorchSaveDType, string> = {
  float32: 'FloatStorage', float64: 'DoubleStorage', int64: 'LongStorage', int32: 'IntStorage', uint8: 'ByteStorage',
};

/** Protocol-2 pickle of a value tree; tensors become persistent storage ids, in order. */
class Pickler {
  private readonly chunks: Buffer[] = [];
  readonly storages: TorchTensor[] = [];

  private op(...bytes: number[]): void {
    this.chunks.push(Buffer.from(bytes));
  }

  private u32(n: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n >>> 0);
    return b;
  }

  private global(module: string, name: string): void {
    this.chunks.push(Buffer.from(`c${module}\n${name}\n`, 'latin1'));
  }

  private str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.chunks.push(Buffer.from([0x58]), this.u32(b.length), b); // BINUNICODE
  }

  private int(v: bigint): void {
    if (v >= 0n && v < 256n) this.op(0x4b, Number(v)); // BININT1
    else if (v >= 0n && v < 65536n) this.op(0x4d, Number(v) & 0xff, Number(v) >> 8); // BININT2
    else if (v >= -(2n ** 31n) && v < 2n ** 31n) this.chunks.push(Buffer.from([0x4a]), this.u32(Number(BigInt.asUintN(32, v)))); // BININT
    else {
      const bytes: number[] = [];
      let x = v;
      for (;;) {
        bytes.push(Number(BigInt.asUintN(8, x)));
        x >>= 8n;
        const top = bytes[bytes.length - 1]!;
        if ((x === 0n && !(top & 0x80)) || (x === -1n && top & 0x80)) break;
      }
      this.op(0x8a, bytes.length, ...bytes); // LONG1
    }
  }

  private tupleOf(items: (() => void)[]): void {
    if (items.length === 0) return this.op(0x29); // EMPTY_TUPLE
    if (items.length <= 3) {
      for (const f of items) f();
      return this.op([0x85, 0x86, 0x87][items.length - 1]!); // TUPLE1..3
    }
    this.op(0x28); // MARK
    for (const f of items) f();
    this.op(0x74); // TUPLE
  }

  private setItems(entries: Map<string | number, SaveValue>): void {
    if (entries.size === 0) return;
    this.op(0x28);
    for (const [k, v] of entries) {
      if (typeof k === 'number') this.int(BigInt(k));
      else this.str(k);
      this.value(v);
    }
    this.op(0x75); // SETITEMS
  }

  private tensor(t: TorchTensor): void {
    const key = String(this.storages.length);
    this.storages.push(t);
    const strides: number[] = [];
    let s = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      strides[i] = s;
      s *= t.shape[i]!;
    }
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tupleOf([
      () => {
        // ('storage', torch.<Type>Storage, key, 'cpu', numel) as a persistent id
        this.tupleOf([() => this.str('storage'), () => this.global('torch', STORAGE[t.dtype]), () => this.str(key),
          () => this.str('cpu'), () => this.int(BigInt(t.data.length))]);
        this.op(0x51); // BINPERSID
      },
      () => this.int(0n),
      () => this.tupleOf(t.shape.map((d) => () => this.int(BigInt(d)))),
      () => this.tupleOf(strides.map((d) => () => this.int(BigInt(d)))),
      () => this.op(0x89), // requires_grad False
      () => {
        this.global('collections', 'OrderedDict');
        this.op(0x29, 0x52); // () REDUCE: empty backward hooks
      },
    ]);
    this.op(0x52); // REDUCE
  }

  value(v: SaveValue): void {
    if (v === null) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number' || v instanceof PyFloat) {
      const x = typeof v === 'number' ? v : v.value;
      if (typeof v === 'number' && Number.isSafeInteger(x) && !Object.is(x, -0)) return this.int(BigInt(x));
      const b = Buffer.alloc(9);
      b[0] = 0x47; // BINFLOAT, big-endian double
      b.writeDoubleBE(x, 1);
      this.chunks.push(b);
      return;
    }
    if (typeof v === 'string') return this.str(v);
    if (v instanceof TorchTensor) return this.tensor(v);
    if (v instanceof PyTuple) return this.tupleOf(v.items.map((x) => () => this.value(x)));
    if (v instanceof PyDict) {
      this.op(0x7d); // EMPTY_DICT
      return this.setItems(v.entries);
    }
    if (v instanceof Map) {
      this.global('collections', 'OrderedDict');
      this.op(0x29, 0x52);
      return this.setItems(v);
    }
    if (Array.isArray(v)) {
      this.op(0x5d); // EMPTY_LIST
      if (v.length) {
        this.op(0x28);
        for (const x of v) this.value(x);
        this.op(0x65); // APPENDS
      }
      return;
    }
    throw new SslInvError('ERR_INVALID_ARGUMENT', `torchSave: cannot pickle a ${typeof v}`);
  }

  finish(): Buffer {
    return Buffer.concat([Buffer.from([0x80, 0x02]), ...this.chunks, Buffer.from([0x2e])]);
  }
}

interface CentralEntry {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
}

const ALIGN = 64;
const ZIP64_LIMIT = 0xffffffff;

/** Writes stored (uncompressed) zip records with PyTorch's 64-byte data alignment, zip64 as needed. */
class ZipWriter {
  private offset = 0;
  private readonly entries: CentralEntry[] = [];

  constructor(private readonly fh: FileHandle) {}

  private async write(b: Uint8Array): Promise<void> {
    await writeAll(this.fh, b);
    this.offset += b.byteLength;
  }

  async add(name: string, data: Uint8Array): Promise<void> {
    const nameBuf = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const size = data.byteLength;
    const big = size >= ZIP64_LIMIT || this.offset >= ZIP64_LIMIT;
    const zip64Extra = big ? 20 : 0; // id, len, uncompressed, compressed
    const headerLen = 30 + nameBuf.length + zip64Extra;
    // Padding extra field ('FB', as PyTorch's writer) so the data starts on a 64-byte boundary.
    const pad = (ALIGN - ((this.offset + headerLen + 4) % ALIGN)) % ALIGN;
    const extra = Buffer.alloc(zip64Extra + 4 + pad);
    let e = 0;
    if (big) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(size), 12);
      e = 20;
    }
    extra.writeUInt16LE(0x4246, e); // 'FB'
    extra.writeUInt16LE(pad, e + 2);
    extra.fill(0x5a, e + 4); // 'Z'
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(big ? 45 : 20, 4);
    h.writeUInt16LE(0, 6);   // flags
    h.writeUInt16LE(0, 8);   // stored
    h.writeUInt16LE(0, 10);  // time
    h.writeUInt16LE(0x21, 12); // date: 1980-01-01
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(big ? ZIP64_LIMIT : size, 18);
    h.writeUInt32LE(big ? ZIP64_LIMIT : size, 22);
    h.writeUInt16LE(nameBuf.length, 26);
    h.writeUInt16LE(extra.length, 28);
    const offset = this.offset;
    await this.write(h);
    await this.write(nameBuf);
    await this.write(extra);
    await this.write(data);
    this.entries.push({ name: nameBuf, crc, size, offset });
  }

  async finish(): Promise<void> {
    const cdStart = this.offset;
    for (const en of this.entries) {
      const big = en.size >= ZIP64_LIMIT || en.offset >= ZIP64_LIMIT;
      const extra = Buffer.alloc(big ? 28 : 0);
      if (big) {
        extra.writeUInt16LE(0x0001, 0);
        extra.writeUInt16LE(24, 2);
        extra.writeBigUInt64LE(BigInt(en.size), 4);
        extra.writeBigUInt64LE(BigInt(en.size), 12);
        extra.writeBigUInt64LE(BigInt(en.offset), 20);
      }
      const c = Buffer.alloc(46);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(big ? 45 : 20, 4);
      c.writeUInt16LE(big ? 45 : 20, 6);
      c.writeUInt16LE(0, 8);
      c.writeUInt16LE(0, 10);
      c.writeUInt16LE(0, 12);
      c.writeUInt16LE(0x21, 14);
      c.writeUInt32LE(en.crc, 16);
      c.writeUInt32LE(big ? ZIP64_LIMIT : en.size, 20);
      c.writeUInt32LE(big ? ZIP64_LIMIT : en.size, 24);
      c.writeUInt16LE(en.name.length, 28);
      c.writeUInt16LE(extra.length, 30);
      c.writeUInt32LE(big ? ZIP64_LIMIT : en.offset, 42);
      await this.write(c);
      await this.write(en.name);
      await this.write(extra);
    }
    const cdSize = this.offset - cdStart;
    const n = this.entries.length;
    const needs64 = cdStart >= ZIP64_LIMIT || n >= 0xffff || this.entries.some((x) => x.size >= ZIP64_LIMIT || x.offset >= ZIP64_LIMIT);
    if (needs64) {
      const eocd64At = this.offset;
      const r = Buffer.alloc(56);
      r.writeUInt32LE(0x06064b50, 0);
      r.writeBigUInt64LE(44n, 4);
      r.writeUInt16LE(45, 12);
      r.writeUInt16LE(45, 14);
      r.writeBigUInt64LE(BigInt(n), 24);
      r.writeBigUInt64LE(BigInt(n), 32);
      r.writeBigUInt64LE(BigInt(cdSize), 40);
      r.writeBigUInt64LE(BigInt(cdStart), 48);
      await this.write(r);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(0x07064b50, 0);
      loc.writeBigUInt64LE(BigInt(eocd64At), 8);
      loc.writeUInt32LE(1, 16);
      await this.write(loc);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(Math.min(n, 0xffff), 8);
    end.writeUInt16LE(Math.min(n, 0xffff), 10);
    end.writeUInt32LE(Math.min(cdSize, ZIP64_LIMIT), 12);
    end.writeUInt32LE(Math.min(cdStart, ZIP64_LIMIT), 16);
    await this.write(end);
  }
}

/** The archive's top directory, as torch.save names it: the file name without its last extension. */
export function archiveName(file: string): string {
  const base = path.basename(file);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Saves `value` as torch.save(value, file) would, atomically. */
export async function torchSave(file: string, value: SaveValue): Promise<void> {
  const pickler = new Pickler();
  pickler.value(value);
  const pkl = pickler.finish();
  const prefix = archiveName(file);
  const tmp = tempNameFor(file);
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx');
    trackTempFile(tmp);
    const zip = new ZipWriter(fh);
    await zip.add(`${prefix}/data.pkl`, pkl);
    for (let i = 0; i < pickler.storages.length; i++) {
      const d = pickler.storages[i]!.data;
      await zip.add(`${prefix}/data/${i}`, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
    await zip.add(`${prefix}/version`, Buffer.from('3\n'));
    await zip.finish();
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
    untrackTempFile(tmp);
    const dir = await fsp.open(path.dirname(file), 'r').catch(() => undefined);
    await dir?.sync().catch(() => undefined);
    await dir?.close();
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    untrackTempFile(tmp);
    if (e instanceof SslInvError) throw e;
    throw new SslInvError('ERR_FILE_WRITE', `cannot write the checkpoint (${(e as Error).message})`, { file, cause: e });
  }
}
