// ZipArchive: stored/deflated records, zip64, random access, caps checked before allocating, and
// corrupt archives (truncated, bad offsets, duplicates, lying sizes) as ERR_CHECKPOINT_CORRUPT.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { ZipArchive, readZipRecord } from '../../src/io/zip';
import { buildZip } from '../helpers/zip-writer';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
function write(buf: Buffer): string {
  const f = path.join(dir, `z${n++}.zip`);
  fs.writeFileSync(f, buf);
  return f;
}

t.test('reads stored and deflated records by name, zip and zip64', async (t) => {
  for (const zip64 of [false, true]) {
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const file = write(buildZip([
      { name: 'a/data.pkl', data: 'hello pickle', method: 8 },
      { name: 'a/data/0', data: big },
      { name: 'a/version', data: '3\n' },
      { name: 'a/empty', data: '' },
    ], { zip64 }));
    const za = await ZipArchive.open(file);
    t.same(za.names(), ['a/data.pkl', 'a/data/0', 'a/version', 'a/empty']);
    t.ok(za.has('a/version'));
    t.notOk(za.has('a/nope'));
    t.equal(za.entry('a/data.pkl')?.compressionMethod, 8);
    t.equal((await za.read('a/version')).toString(), '3\n');
    t.equal((await za.read('a/data.pkl')).toString(), 'hello pickle');
    t.ok((await za.read('a/data/0')).equals(big), `stored 100 kB record${zip64 ? ' (zip64)' : ''}`);
    t.equal((await za.read('a/empty')).length, 0);
    const ref = za.ref('a/data/0');
    await za.close();
    t.ok((await readZipRecord(ref)).equals(big), 'read again after close');
    await t.rejects(za.read('a/version'), { code: 'ERR_INVALID_ARGUMENT' });
  }
});

t.test('missing file and non-zip files', async (t) => {
  await t.rejects(ZipArchive.open(path.join(dir, 'missing.zip')), { code: 'ERR_FILE_NOT_FOUND' });
  const f = write(Buffer.from('this is not a zip file at all'));
  const err = await t.rejects(ZipArchive.open(f), { code: 'ERR_CHECKPOINT_CORRUPT', file: f });
  t.match((err as unknown as Error).message, /central directory/);
  await t.rejects(ZipArchive.open(dir), { code: 'ERR_FILE_READ' });
});

t.test('truncated at many offsets: always ERR_CHECKPOINT_CORRUPT naming the file', async (t) => {
  const good = buildZip([
    { name: 'a/data.pkl', data: Buffer.alloc(300, 1), method: 8 },
    { name: 'a/data/0', data: Buffer.alloc(500, 2) },
    { name: 'a/version', data: '3\n' },
  ]);
  const offsets = new Set<number>([0, 1, 4, 30, 100, 400, good.length - 100, good.length - 30, good.length - 22, good.length - 1]);
  for (let i = 0; i < 20; i++) offsets.add(Math.floor((good.length * (i + 0.5)) / 20));
  for (const off of offsets) {
    const f = write(good.subarray(0, off));
    let failed = false;
    try {
      const za = await ZipArchive.open(f);
      try {
        for (const name of za.names()) await za.read(name);
      } finally {
        await za.close();
      }
    } catch (e) {
      failed = true;
      t.equal((e as { code?: string }).code, 'ERR_CHECKPOINT_CORRUPT', `truncated at ${off}: code`);
      t.match((e as Error).message, f, `truncated at ${off}: names the file`);
    }
    t.ok(failed, `truncated at ${off} of ${good.length} is refused`);
  }
});

t.test('a zip64 locator pointing far past the file: a coded error, the process unharmed', async (t) => {
  // yauzl seeks to the locator's 64-bit offset. Past 2^53, fs.read throws synchronously inside an I/O
  // callback, which used to end the process (found by the readers' fuzz test); past the end of the
  // file it must be refused too.
  const good = buildZip([{ name: 'a/data.pkl', data: 'x' }, { name: 'a/version', data: '3\n' }], { zip64: true });
  const at = good.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]));
  t.ok(at > 0, 'the archive has a zip64 locator');
  for (const offset of [0xd900000000000000n, 2n ** 53n, BigInt(good.length), 2n ** 40n]) {
    const bad = Buffer.from(good);
    bad.writeBigUInt64LE(offset, at + 8);
    const f = write(bad);
    const err = await t.rejects(ZipArchive.open(f), { code: 'ERR_CHECKPOINT_CORRUPT', file: f }, `offset ${offset}`);
    t.match((err as unknown as Error).message, /outside the file/);
  }
  const za = await ZipArchive.open(write(good));
  t.equal((await za.read('a/version')).toString(), '3\n', 'the unaltered archive still reads');
  await za.close();
});

t.test('a deflated record over the cap is refused before allocating', async (t) => {
  // Declares 2^40 bytes (zip64) but holds a few: refused from the declaration alone.
  const liar = write(buildZip([{ name: 'a/data.pkl', data: 'x', method: 8, declaredSize: 2 ** 40 }], { zip64: true }));
  const za = await ZipArchive.open(liar);
  const err = await t.rejects(za.read('a/data.pkl'), { code: 'ERR_CHECKPOINT_UNSAFE', file: liar, field: 'a/data.pkl' });
  t.match((err as unknown as Error).message, /over the cap of 67108864 bytes/);
  await za.close();

  // A real bomb: 65 MiB of zeros deflate to ~64 kB.
  const bombFile = write(buildZip([{ name: 'a/data.pkl', data: Buffer.alloc(65 * 1024 * 1024), method: 8 }]));
  t.ok(fs.statSync(bombFile).size < 200_000);
  const zb = await ZipArchive.open(bombFile);
  await t.rejects(zb.read('a/data.pkl'), { code: 'ERR_CHECKPOINT_UNSAFE' });
  await zb.close();
  // The cap is configurable.
  const zc = await ZipArchive.open(bombFile, { maxDeflatedBytes: 70 * 1024 * 1024 });
  t.equal((await zc.read('a/data.pkl')).length, 65 * 1024 * 1024);
  await zc.close();
  // And can be lowered per read.
  const zd = await ZipArchive.open(write(buildZip([{ name: 'v', data: 'x'.repeat(100) }])));
  await t.rejects(zd.read('v', { maxBytes: 64 }), { code: 'ERR_CHECKPOINT_UNSAFE' });
  await zd.close();
});

t.test('a stored record declaring more than the file is corrupt', async (t) => {
  const f = write(buildZip([{ name: 'a/data/0', data: 'abcd', declaredSize: 10_000_000 }], { zip64: true }));
  const za = await ZipArchive.open(f).catch((e: unknown) => e);
  if (za instanceof ZipArchive) {
    await t.rejects(za.read('a/data/0'), { code: 'ERR_CHECKPOINT_CORRUPT', file: f });
    await za.close();
  } else {
    t.match(za, { code: 'ERR_CHECKPOINT_CORRUPT', file: f }, 'refused when listing');
  }
});

t.test('lying sizes, duplicates, bad compression, corrupt deflate', async (t) => {
  // deflated record declaring fewer bytes than it holds
  const under = write(buildZip([{ name: 'a/x', data: Buffer.alloc(10_000, 7), method: 8, declaredSize: 10 }]));
  let za = await ZipArchive.open(under);
  await t.rejects(za.read('a/x'), { code: 'ERR_CHECKPOINT_CORRUPT', file: under, field: 'a/x' });
  await za.close();
  // ... and more than it holds
  const over = write(buildZip([{ name: 'a/x', data: Buffer.alloc(100, 7), method: 8, declaredSize: 1000 }]));
  za = await ZipArchive.open(over);
  await t.rejects(za.read('a/x'), { code: 'ERR_CHECKPOINT_CORRUPT', file: over });
  await za.close();
  // duplicate names
  const dup = write(buildZip([{ name: 'a/data.pkl', data: '1' }, { name: 'a/data.pkl', data: '2' }]));
  await t.rejects(ZipArchive.open(dup), { code: 'ERR_CHECKPOINT_CORRUPT', file: dup, message: /two records are named/ });
  // corrupt deflate stream
  const good = buildZip([{ name: 'a/x', data: Buffer.alloc(1000, 3), method: 8 }]);
  const comp = deflateRawSync(Buffer.alloc(1000, 3));
  const bad = Buffer.from(good);
  const dataStart = 30 + 'a/x'.length;
  for (let i = 0; i < comp.length; i++) bad[dataStart + i] = 0xff;
  const badf = write(bad);
  za = await ZipArchive.open(badf);
  await t.rejects(za.read('a/x'), { code: 'ERR_CHECKPOINT_CORRUPT', file: badf });
  await za.close();
  // unsupported compression method (12 = bzip2)
  const bz = Buffer.from(buildZip([{ name: 'a/x', data: 'abc' }]));
  bz.writeUInt16LE(12, 8); // local header
  bz.writeUInt16LE(12, bz.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 10); // central header
  const bzf = write(bz);
  za = await ZipArchive.open(bzf);
  await t.rejects(za.read('a/x'), { code: 'ERR_CHECKPOINT_UNSUPPORTED', file: bzf });
  await za.close();
  // local header offset pointing at garbage
  const off = Buffer.from(buildZip([{ name: 'a/x', data: 'abc' }]));
  off.writeUInt32LE(5, off.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 42);
  const offf = write(off);
  za = await ZipArchive.open(offf);
  await t.rejects(za.read('a/x'), { code: 'ERR_CHECKPOINT_CORRUPT', file: offf });
  await za.close();
  // absolute and parent paths
  const evil = write(buildZip([{ name: '../etc/passwd', data: 'x' }]));
  await t.rejects(ZipArchive.open(evil), { code: 'ERR_CHECKPOINT_CORRUPT', file: evil });
});

t.test('readZipRecord refuses a file changed since it was listed', async (t) => {
  const f = write(buildZip([{ name: 'a/x', data: 'abc' }]));
  const za = await ZipArchive.open(f);
  const ref = za.ref('a/x');
  await za.close();
  fs.writeFileSync(f, buildZip([{ name: 'a/x', data: 'abcdef' }]));
  await t.rejects(readZipRecord(ref), { code: 'ERR_CHECKPOINT_CORRUPT', file: f, message: /changed on disk/ });
  fs.unlinkSync(f);
  await t.rejects(readZipRecord(ref), { code: 'ERR_FILE_NOT_FOUND', file: f });
});

t.test("a record whose bytes fail the archive's CRC-32 is corrupt, naming the file and the record", async (t) => {
  const data = Buffer.alloc(4096);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
  const good = buildZip([{ name: 'a/data/0', data }, { name: 'a/data.pkl', data: 'pickle bytes here', method: 8 }]);
  const centralOf = (buf: Buffer, k: number) => {
    let at = -1;
    for (let i = 0; i <= k; i++) at = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), at + 1);
    return at;
  };
  // One bit flipped in the stored record's data (30-byte local header + name before it).
  const flipped = Buffer.from(good);
  flipped[30 + 'a/data/0'.length + 1000]! ^= 0x10;
  const ff = write(flipped);
  let za = await ZipArchive.open(ff);
  const err = await t.rejects(za.read('a/data/0'), { code: 'ERR_CHECKPOINT_CORRUPT', file: ff, field: 'a/data/0' });
  t.match((err as unknown as Error).message, /CRC-32 0x[0-9a-f]{8}, the archive records 0x[0-9a-f]{8}/);
  t.equal((await za.read('a/data.pkl')).toString(), 'pickle bytes here', 'the undamaged record still reads');
  const ref = za.ref('a/data/0');
  await za.close();
  await t.rejects(readZipRecord(ref), { code: 'ERR_CHECKPOINT_CORRUPT', field: 'a/data/0' }, 'and so does a later read from a saved reference');
  // verifyCrc: false reads the damaged bytes (forensics).
  za = await ZipArchive.open(ff, { verifyCrc: false });
  const raw = await za.read('a/data/0');
  t.equal(raw[1000], data[1000]! ^ 0x10, 'verifyCrc: false returns the bytes as stored');
  await za.close();
  // A deflated record whose recorded CRC (central directory) is off by one.
  const wrongCrc = Buffer.from(good);
  const c1 = centralOf(wrongCrc, 1);
  wrongCrc.writeUInt32LE((wrongCrc.readUInt32LE(c1 + 16) + 1) >>> 0, c1 + 16);
  const wf = write(wrongCrc);
  za = await ZipArchive.open(wf);
  await t.rejects(za.read('a/data.pkl'), { code: 'ERR_CHECKPOINT_CORRUPT', file: wf, field: 'a/data.pkl' }, 'deflated records are checked too');
  await za.close();
  // A recorded CRC of 0 (torch.save under set_crc32_options(False)) means none was written.
  const noCrc = Buffer.from(good);
  for (const k of [0, 1]) noCrc.writeUInt32LE(0, centralOf(noCrc, k) + 16);
  noCrc.writeUInt32LE(0, 14);
  const nf = write(noCrc);
  za = await ZipArchive.open(nf);
  t.ok((await za.read('a/data/0')).equals(data), 'a record with no CRC reads');
  t.equal((await za.read('a/data.pkl')).toString(), 'pickle bytes here');
  await za.close();
});
