// CRC-32 of zip members (src/io/crc32.ts): the portable loop used on Node releases without
// zlib.crc32 against the check value of the CRC catalogue ("123456789" -> 0xCBF43926), against
// zlib's own CRC-32 (zlib.crc32 where this Node has it, else the CRC a deflate-raw + gzip trailer
// records) on random buffers of every length 0..70 and 1 MB, and at unaligned offsets.
import t from 'tap';
import * as zlib from 'node:zlib';
import { crc32, crc32Portable } from '../../src/io/crc32';

/** zlib's CRC-32 of data: the gzip trailer's first 4 bytes. */
function zlibCrc(data: Uint8Array): number {
  const gz = zlib.gzipSync(data, { level: 0 });
  return gz.readUInt32LE(gz.length - 8);
}

function random(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

t.test('check values', async (t) => {
  const check = Buffer.from('123456789', 'ascii');
  t.equal(crc32Portable(check), 0xcbf43926, 'portable: 123456789');
  t.equal(crc32(check), 0xcbf43926, 'crc32: 123456789');
  t.equal(crc32Portable(new Uint8Array(0)), 0, 'empty');
  t.equal(crc32Portable(new Uint8Array([0])), 0xd202ef8d, 'one zero byte');
});

t.test('the portable loop gives zlib\'s CRC on every length and alignment', async (t) => {
  let bad = 0;
  for (let n = 0; n <= 70; n++) {
    const b = random(n + 3, n + 1);
    for (const off of [0, 1, 3]) {
      const v = b.subarray(off, off + n);
      if (crc32Portable(v) !== zlibCrc(v) || crc32(v) !== zlibCrc(v)) bad++;
    }
  }
  t.equal(bad, 0, '213 buffers of 0..70 bytes at offsets 0, 1 and 3');
  const big = random(1 << 20, 99);
  t.equal(crc32Portable(big), zlibCrc(big), '1 MiB');
  t.equal(crc32(big), zlibCrc(big), '1 MiB (crc32)');
});
