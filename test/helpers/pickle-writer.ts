// Hand-assembles pickle bytes for tests (valid, corrupt and hostile ones alike). Nothing here runs Python.

export class PickleWriter {
  private readonly out: number[] = [];

  raw(...bytes: (number | Uint8Array)[]): this {
    for (const b of bytes) {
      if (typeof b === 'number') this.out.push(b);
      else for (const x of b) this.out.push(x);
    }
    return this;
  }
  private u32(n: number): this {
    return this.raw(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }

  proto(v = 2): this { return this.raw(0x80, v); }
  stop(): this { return this.raw(0x2e); }
  mark(): this { return this.raw(0x28); }
  global(module: string, name: string): this { return this.raw(0x63, Buffer.from(`${module}\n${name}\n`, 'latin1')); }
  reduce(): this { return this.raw(0x52); }
  newobj(): this { return this.raw(0x81); }
  build(): this { return this.raw(0x62); }
  append(): this { return this.raw(0x61); }
  appends(): this { return this.raw(0x65); }
  setitem(): this { return this.raw(0x73); }
  setitems(): this { return this.raw(0x75); }
  tuple(): this { return this.raw(0x74); }
  tuple1(): this { return this.raw(0x85); }
  tuple2(): this { return this.raw(0x86); }
  tuple3(): this { return this.raw(0x87); }
  emptyTuple(): this { return this.raw(0x29); }
  emptyList(): this { return this.raw(0x5d); }
  emptyDict(): this { return this.raw(0x7d); }
  none(): this { return this.raw(0x4e); }
  true(): this { return this.raw(0x88); }
  false(): this { return this.raw(0x89); }
  persid(): this { return this.raw(0x51); }
  binget(i: number): this { return this.raw(0x68, i); }
  longBinget(i: number): this { return this.raw(0x6a).u32(i); }
  binput(i: number): this { return this.raw(0x71, i); }
  longBinput(i: number): this { return this.raw(0x72).u32(i); }

  /** The shortest int opcode, as pickle does. */
  int(n: number | bigint): this {
    const v = BigInt(n);
    if (v >= 0n && v < 256n) return this.raw(0x4b, Number(v));
    if (v >= 0n && v < 65536n) return this.raw(0x4d, Number(v) & 0xff, Number(v) >> 8);
    if (v >= -(2n ** 31n) && v < 2n ** 31n) return this.raw(0x4a).u32(Number(BigInt.asUintN(32, v)));
    return this.long1(v);
  }
  binint(n: number): this { return this.raw(0x4a).u32(n >>> 0); }
  long1(v: bigint): this {
    const bytes: number[] = [];
    let x = v;
    // two's complement little-endian, minimal length
    for (;;) {
      const b = Number(BigInt.asUintN(8, x));
      bytes.push(b);
      x >>= 8n;
      if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
    }
    return this.raw(0x8a, bytes.length, ...bytes);
  }
  float(x: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(x);
    return this.raw(0x47, b);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.raw(0x58).u32(b.length).raw(b);
  }
  /** BINUNICODE with a declared length that need not match. */
  strLen(declared: number, body: Uint8Array = new Uint8Array(0)): this {
    return this.raw(0x58).u32(declared).raw(body);
  }
  shortBinstring(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.raw(0x55, b.length, b);
  }
  binstring(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.raw(0x54).u32(b.length).raw(b);
  }

  /** ('storage', torch.<type>, key, location, numel[, extra...]) followed by BINPERSID. */
  storage(type: string, key: string, numel: number | bigint, location = 'cpu', extra?: (w: PickleWriter) => void): this {
    this.mark().str('storage').global('torch', type).str(key).str(location).int(numel);
    if (extra) extra(this);
    return this.tuple().persid();
  }

  /** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
  tensor(t: { type?: string; key: string; numel: number | bigint; offset?: number | bigint; size: (number | bigint)[]; stride: (number | bigint)[]; location?: string; legacy?: boolean }): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.storage(t.type ?? 'FloatStorage', t.key, t.numel, t.location ?? 'cpu', t.legacy ? (w) => w.none() : undefined);
    this.int(t.offset ?? 0);
    this.mark();
    for (const s of t.size) this.int(s);
    this.tuple().mark();
    for (const s of t.stride) this.int(s);
    this.tuple().false().global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    return this;
  }

  bytes(): Buffer {
    return Buffer.from(this.out);
  }
}

export const pk = (): PickleWriter => new PickleWriter();

/** A protocol-2 pickle of {name: tensor, ...} as torch.save writes a state dict (plain dict form). */
export function stateDictPickle(tensors: { name: string; key: string; numel: number | bigint; type?: string; offset?: number | bigint; size: (number | bigint)[]; stride: (number | bigint)[]; location?: string }[], legacy = false): Buffer {
  const w = pk().proto(2).emptyDict().mark();
  for (const t of tensors) {
    w.str(t.name);
    w.tensor({ ...t, legacy });
  }
  return w.setitems().stop().bytes();
}
