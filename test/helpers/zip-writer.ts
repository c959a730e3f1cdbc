// A tiny zip writer for tests: stored or deflated records, optional zip64 records, and ways to lie
// (declared sizes, duplicate names) so readers can be tested on hostile archives.
import { deflateRawSync } from 'node:zlib';

export interface ZipEntrySpec {
  name: string;
  data: Uint8Array | string;
  /** 0 stored (default), 8 deflated. */
  method?: 0 | 8;
  /** Lie about the uncompressed size in both headers. */
  declaredSize?: number;
}

export interface ZipWriteOptions {
  /** Write zip64 extra fields and the zip64 end-of-central-directory records. */
  zip64?: boolean;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

export function buildZip(entries: ZipEntrySpec[], opts: ZipWriteOptions = {}): Buffer {
  const z64 = !!opts.zip64;
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const raw = typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    const method = e.method ?? 0;
    const comp = method === 8 ? deflateRawSync(raw) : raw;
    const usize = e.declaredSize ?? raw.length;
    const csize = comp.length;
    const crc = crc32(raw);
    const name = Buffer.from(e.name, 'utf8');
    const version = z64 ? 45 : 20;
    const localExtra = z64 ? Buffer.concat([u16(1), u16(16), u64(usize), u64(csize)]) : Buffer.alloc(0);
    const local = Buffer.concat([
      u32(0x04034b50), u16(version), u16(0x0800), u16(method), u16(0), u16(0x21), u32(crc),
      u32(z64 ? 0xffffffff : csize), u32(z64 ? 0xffffffff : usize), u16(name.length), u16(localExtra.length), name, localExtra,
    ]);
    const cdExtra = z64 ? Buffer.concat([u16(1), u16(24), u64(usize), u64(csize), u64(offset)]) : Buffer.alloc(0);
    central.push(Buffer.concat([
      u32(0x02014b50), u16(version), u16(version), u16(0x0800), u16(method), u16(0), u16(0x21), u32(crc),
      u32(z64 ? 0xffffffff : csize), u32(z64 ? 0xffffffff : usize), u16(name.length), u16(cdExtra.length), u16(0),
      u16(0), u16(0), u32(0), u32(z64 ? 0xffffffff : offset), name, cdExtra,
    ]));
    parts.push(local, comp);
    offset += local.length + comp.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = offset;
  const tail: Buffer[] = [cd];
  if (z64) {
    const z64eocdOffset = cdOffset + cd.length;
    tail.push(Buffer.concat([
      u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(entries.length), u64(entries.length), u64(cd.length), u64(cdOffset),
    ]));
    tail.push(Buffer.concat([u32(0x07064b50), u32(0), u64(z64eocdOffset), u32(1)]));
    tail.push(Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(0xffff), u16(0xffff), u32(0xffffffff), u32(0xffffffff), u16(0)]));
  } else {
    tail.push(Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(entries.length), u16(entries.length), u32(cd.length), u32(cdOffset), u16(0)]));
  }
  return Buffer.concat([...parts, ...tail]);
}

/** A torch.save-style zip checkpoint: `<prefix>/data.pkl`, `<prefix>/data/<key>`, `<prefix>/version`. */
export function torchZip(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  o: { prefix?: string; version?: string | null; dataVersion?: string; byteorder?: string; more?: ZipEntrySpec[]; pklMethod?: 0 | 8; zip64?: boolean } = {},
): Buffer {
  const p = o.prefix ?? 'archive';
  const entries: ZipEntrySpec[] = [{ name: `${p}/data.pkl`, data: pickle, method: o.pklMethod ?? 0 }];
  if (o.byteorder !== undefined) entries.push({ name: `${p}/byteorder`, data: o.byteorder });
  for (const [k, v] of Object.entries(storages)) entries.push({ name: `${p}/data/${k}`, data: v });
  if (o.version !== null) entries.push({ name: `${p}/version`, data: o.version ?? '3\n' });
  if (o.dataVersion !== undefined) entries.push({ name: `${p}/.data/version`, data: o.dataVersion });
  entries.push(...(o.more ?? []));
  return buildZip(entries, { zip64: !!o.zip64 });
}
