/**
 * CRC-32 (the zip / IEEE 802.3 polynomial, reflected 0xEDB88320) of a byte buffer, as the zip format
 * records it for each member. Node's zlib.crc32 does it natively since Node 20.15 / 22.2; on the
 * older Node 20 releases package.json admits (>= 20.9) this falls back to a table-driven loop
 * (slicing by 4: 0.32 GB/s on the 2-core Xeon, zlib.crc32 1.7 GB/s), so saving and loading
 * checkpoints work there too.
 */
import * as zlib from 'node:zlib';

type Crc32Fn = (data: Uint8Array) => number;

/** The 4 x 256 lookup tables of slicing by 4 (tables[0] is the classic byte-at-a-time table). */
function makeTables(): Uint32Array[] {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables = [t0];
  for (let s = 1; s < 4; s++) {
    const prev = tables[s - 1]!, t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!;
    tables.push(t);
  }
  return tables;
}

let tables: Uint32Array[] | undefined;

/** The portable CRC-32 (exported for its test; use crc32). */
export function crc32Portable(data: Uint8Array): number {
  tables ??= makeTables();
  const [t0, t1, t2, t3] = tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = 0xffffffff, i = 0;
  const n4 = data.length & ~3;
  for (; i < n4; i += 4) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c = t3[c & 0xff]! ^ t2[(c >>> 8) & 0xff]! ^ t1[(c >>> 16) & 0xff]! ^ t0[c >>> 24]!;
  }
  for (; i < data.length; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const native = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 of `data` as an unsigned 32-bit number. */
export const crc32: Crc32Fn = native ? (data) => native(data) >>> 0 : crc32Portable;
