// A TypeScript port of make_dataset_fixtures.py's Py2Pickler: CIFAR-10 batches in the format Python 2's
// cPickle.dump(obj, f, 2) writes (the real files' format), for full-size and hostile test batches.

export class Py2Pickle {
  private readonly parts: Buffer[] = [Buffer.from([0x80, 0x02])];
  private memo = 0;

  raw(b: Buffer | number[] | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.isBuffer(b) ? b : Buffer.from(b));
    return this;
  }
  put(): this {
    this.memo++;
    if (this.memo < 256) return this.raw([0x71, this.memo]);
    const b = Buffer.alloc(5);
    b[0] = 0x72;
    b.writeUInt32LE(this.memo, 1);
    return this.raw(b);
  }
  s(v: string | Uint8Array): this {
    const b = typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v.buffer, v.byteOffset, v.length);
    if (b.length < 256) this.raw([0x55, b.length]);
    else {
      const h = Buffer.alloc(5);
      h[0] = 0x54;
      h.writeInt32LE(b.length, 1);
      this.raw(h);
    }
    return this.raw(b).put();
  }
  i(n: number): this {
    if (n >= 0 && n < 256) return this.raw([0x4b, n]);
    if (n >= 0 && n < 65536) return this.raw([0x4d, n & 0xff, n >> 8]);
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return this.raw(b);
  }
  glob(module: string, name: string): this {
    return this.raw(`c${module}\n${name}\n`).put();
  }
  dtype(name: string, order: string): this {
    this.glob('numpy', 'dtype').s(name).i(0).i(1).raw([0x87]).put().raw('R').put();
    this.raw('(').i(3).s(order).raw('NNN').raw([0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff]).i(0).raw('t').put();
    return this.raw('b');
  }
  ndarray(shape: [number, number], data: Uint8Array, module = 'numpy.core.multiarray', dtype: [string, string] = ['u1', '|']): this {
    this.glob(module, '_reconstruct').glob('numpy', 'ndarray').i(0).raw([0x85]).put().s('b').raw([0x87]).put().raw('R').put();
    this.raw('(').i(1).i(shape[0]).i(shape[1]).raw([0x86]).put();
    this.dtype(dtype[0], dtype[1]);
    return this.raw([0x89]).s(data).raw('t').put().raw('b');
  }
  list(items: readonly (number | string)[]): this {
    this.raw(']').put();
    for (let k = 0; k < items.length; k += 1000) {
      const chunk = items.slice(k, k + 1000);
      const emit = (x: number | string): this => (typeof x === 'number' ? this.i(x) : this.s(x));
      if (chunk.length === 1) {
        emit(chunk[0]!);
        this.raw('a');
      } else {
        this.raw('(');
        for (const x of chunk) emit(x);
        this.raw('e');
      }
    }
    return this;
  }
  bytes(): Buffer {
    return Buffer.concat([...this.parts, Buffer.from('.')]);
  }
}

export interface BatchSpec {
  rows: number;
  data: Uint8Array;
  labels: number[];
  batchLabel: string;
  filenames: string[];
  module?: string;
  extra?: (p: Py2Pickle) => void;
}

/** A CIFAR-10 batch dict {data, labels, batch_label, filenames} as cPickle protocol 2 writes it. */
export function cifarBatchPickle(b: BatchSpec): Buffer {
  const p = new Py2Pickle();
  p.raw('}').put().raw('(');
  p.s('data').ndarray([b.rows, b.data.length / b.rows], b.data, b.module);
  p.s('labels').list(b.labels);
  p.s('batch_label').s(b.batchLabel);
  p.s('filenames').list(b.filenames);
  b.extra?.(p);
  p.raw('u');
  return p.bytes();
}
