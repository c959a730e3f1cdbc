// DecodePool (data/decode-pool.ts): decoding in memory-capped processes (RELIABILITY.md §4).
//   1. Every fixture image gives the in-process decode's pixels, size, format and mode (through the
//      slot files, also for 75 MB of pixels, which a slot file does not keep); every bad file the
//      same code and message, naming the file.
//   2. A decompression bomb (a 13000 x 13000 PNG of under 1 MB, 507 MB of pixels, inside the pixel
//      limit) under a 384 MiB cap is refused with ERR_IMAGE_TOO_LARGE naming the file and the cap, alone or shared; the
//      pool and this process go on.
//   3. A worker that aborts (a codec crash), hangs past the timeout or fails an allocation with other
//      files in flight: each other file is decoded alone and succeeds (also one that failed an
//      allocation only because of the others); the culprit alone is refused with a coded error
//      naming it. Worker deaths are counted and told.
//   4. A worker that cannot start: ERR_DECODE_WORKER with what it printed, no hang; too small a cap
//      the same.
//   5. close() refuses pending and later decodes and ends the processes; an unclosed idle pool does
//      not keep Node alive.
//   6. loadBatches through a pool: the in-process loader's bits; a crashing file is skipped by name.
//   7. The pixels over the IPC channel (slotFolder false, a folder where no slot file can be made, a
//      slot write that fails with ENOSPC): the same bytes, told; a slot file shorter than the worker
//      says: ERR_FILE_READ naming the file.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { decodeImageFile, DecodedImage } from '../../src/data/decode';
import { DecodePool, workerScriptPath } from '../../src/data/decode-pool';
import { loadBatches } from '../../src/data/loader';
import { SslInvError } from '../../src/errors';
import { writePngBomb } from '../helpers/png-bomb';

const FIX = path.join(__dirname, '..', 'fixtures');
const FAULTY = path.join(__dirname, '..', 'helpers', 'decode-worker-faulty.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-pool-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function imagesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...imagesUnder(p));
    else if (/\.(jpe?g|png)$/i.test(e.name)) out.push(p);
  }
  return out.sort();
}

async function settle(p: Promise<DecodedImage>): Promise<DecodedImage | SslInvError> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof SslInvError) return e;
    throw e;
  }
}

const good = path.join(FIX, 'images', 'inputs', 'china_333x251_420.jpg');
const good2 = path.join(FIX, 'images', 'inputs', 'coffee_rgb_151x101.png');
function copyAs(name: string, from = good): string {
  const p = path.join(tmp, name);
  fs.copyFileSync(from, p);
  return p;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('the worker script is built', async (t) => {
  t.ok(fs.existsSync(workerScriptPath()), workerScriptPath());
});

t.test('same pixels and the same errors as decoding in this process', async (t) => {
  const files = imagesUnder(path.join(FIX, 'images'));
  t.ok(files.length >= 20, `${files.length} fixture images`);
  // Bad files: truncated, another format under a .jpg name, missing, a header over the pixel limit.
  const bytes = fs.readFileSync(good);
  const truncated = path.join(tmp, 'truncated.jpg');
  fs.writeFileSync(truncated, bytes.subarray(0, bytes.length >> 1));
  const svg = path.join(tmp, 'svg.jpg');
  fs.writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
  const bad = [truncated, svg, path.join(tmp, 'missing.jpg')];
  // 75 MB of pixels: past the size a slot file keeps (64 MiB), so it is cut back after the read.
  const big = path.join(tmp, 'big.png');
  await sharp({ create: { width: 5000, height: 5000, channels: 3, background: '#3060a0' } }).png().toFile(big);
  files.push(big, good, big);
  const pool = new DecodePool({ workers: 2 });
  t.teardown(() => pool.close());
  const all = [...files, ...bad];
  const theirs = await Promise.all(all.map((f) => settle(decodeImageFile(f, { decoder: pool }))));
  let pixels = 0, errors = 0;
  for (let i = 0; i < all.length; i++) {
    const ours = await settle(decodeImageFile(all[i]!));
    const got = theirs[i]!;
    if (ours instanceof SslInvError) {
      t.ok(got instanceof SslInvError, `${all[i]}: refused in the worker too`);
      const e = got as SslInvError;
      t.same([e.code, e.file], [ours.code, ours.file], `${path.basename(all[i]!)}: ${ours.code}`);
      // libvips words the same failure differently from one call to the next; our own messages are fixed.
      if (!/^cannot decode: /.test(ours.message.slice((ours.file ?? '').length + 2))) t.equal(e.message, ours.message);
      errors++;
    } else {
      const g = got as DecodedImage;
      t.same([g.width, g.height, g.channels, g.format, g.sourceMode], [ours.width, ours.height, 3, ours.format, ours.sourceMode]);
      t.ok(Buffer.from(g.data).equals(Buffer.from(ours.data)), `${path.basename(all[i]!)}: identical pixels`);
      pixels++;
    }
  }
  t.ok(errors >= bad.length, `${errors} refusals compared`);
  t.ok(pixels >= 20, `${pixels} decodes compared`);
  // Options travel: a pixel limit below the image's size is applied in the worker.
  const small = await settle(decodeImageFile(good, { decoder: pool, limitInputPixels: 100 }));
  t.equal((small as SslInvError).code, 'ERR_IMAGE_TOO_LARGE');
  t.match((small as SslInvError).message, /over the limit of 100/);
  t.same(pool.stats.workerDeaths, 0);
  if (process.platform !== 'win32') t.equal(pool.stats.viaSlotFiles, pixels, 'every image came back through a slot file');
  if (process.platform === 'linux') {
    // The slot files this process holds (this pool's only): the ones that took 75 MB were cut back.
    const sizes = slotFileSizes();
    t.equal(sizes.length, 2 * 4, 'two workers, four slots each');
    t.ok(sizes.every((n) => n <= 64 << 20), `no slot file keeps more than 64 MiB: ${sizes.join(', ')}`);
    t.ok(sizes.some((n) => n > 0), 'smaller ones are kept for reuse');
  }
});

/** Sizes of the decode slot files open in this process (Linux: /proc/self/fd; unlinked, so "(deleted)"). */
function slotFileSizes(): number[] {
  const out: number[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;  // the descriptor readdir itself used
    }
    if (/ssl-inv-decode-[^/]*\/slot \(deleted\)$/.test(target)) out.push(fs.fstatSync(Number(fd)).size);
  }
  return out;
}

t.test('pixels over the IPC channel: no slot files, none can be made, or one cannot take them', async (t) => {
  const expect = async (f: string): Promise<Buffer> => Buffer.from((await decodeImageFile(f)).data);
  const same = async (p: DecodePool, f: string, what: string): Promise<void> => {
    const got = await settle(decodeImageFile(f, { decoder: p }));
    t.notOk(got instanceof Error, `${what}: decoded`);
    if (!(got instanceof Error)) t.ok(Buffer.from(got.data).equals(await expect(f)), `${what}: identical pixels`);
  };
  // Asked for: no slot files, and no notice about it.
  let notices: string[] = [];
  const channel = new DecodePool({ workers: 1, slotFolder: false, onNotice: (l) => notices.push(l) });
  t.teardown(() => channel.close());
  for (const f of [good, good2]) await same(channel, f, `slotFolder false, ${path.basename(f)}`);
  t.equal(channel.stats.viaSlotFiles, 0);
  t.same(notices, []);
  await channel.close();
  // A folder where no file can be made: told once per worker, then the channel.
  notices = [];
  const nowhere = path.join(tmp, 'no-such-folder', 'below');
  const noRoom = new DecodePool({ workers: 1, slotFolder: nowhere, onNotice: (l) => notices.push(l) });
  t.teardown(() => noRoom.close());
  for (const f of [good, good2]) await same(noRoom, f, `slotFolder missing, ${path.basename(f)}`);
  t.equal(noRoom.stats.viaSlotFiles, 0);
  t.equal(notices.length, 1, notices.join('\n'));
  t.match(notices[0], /no slot files in .*no-such-folder.*; pixels go over the IPC channel/);
  await noRoom.close();
  // A slot file that cannot take the pixels (ENOSPC in the worker): the same bytes over the channel,
  // told, naming the file; the next file goes through its slot again.
  notices = [];
  const full = copyAs('slotfull-1.jpg');
  const faulty = new DecodePool({ workers: 1, workerScript: FAULTY, onNotice: (l) => notices.push(l) });
  t.teardown(() => faulty.close());
  await same(faulty, full, 'slot write failed');
  t.equal(faulty.stats.viaSlotFiles, 0);
  t.equal(notices.length, 1, notices.join('\n'));
  t.match(notices[0], /cannot write the pixels to its slot file \(ENOSPC.*\); the pixels of .*slotfull-1\.jpg came over the IPC channel/);
  await same(faulty, good2, 'the next file');
  t.equal(faulty.stats.viaSlotFiles, 1);
  t.equal(faulty.stats.workerDeaths, 0);
  await faulty.close();
});

t.test('a slot file shorter than the worker says: ERR_FILE_READ naming the file, the pool goes on', async (t) => {
  const short = copyAs('slotshort-1.png', good2);
  const pool = new DecodePool({ workers: 1, workerScript: FAULTY });
  t.teardown(() => pool.close());
  const got = await settle(decodeImageFile(short, { decoder: pool }));
  t.ok(got instanceof SslInvError);
  const e = got as SslInvError;
  t.equal(e.code, 'ERR_FILE_READ');
  t.equal(e.file, short);
  t.match(e.message, /cannot read the pixels back from the decode worker's slot file: the slot file ends at byte 0 of 45753/);
  const next = await settle(decodeImageFile(good, { decoder: pool }));
  t.notOk(next instanceof Error, 'the next file decodes');
  t.same([pool.stats.decoded, pool.stats.refused, pool.stats.workerDeaths], [1, 1, 0]);
});

t.test('a decompression bomb costs a worker its memory, not this process', async (t) => {
  // 13000 x 13000 white PNG: under 1 MB of file, 507 MB of RGB, inside the pixel limit.
  const bomb = path.join(tmp, 'bomb.png');
  await writePngBomb(bomb);
  t.ok(fs.statSync(bomb).size < 2 << 20, `${fs.statSync(bomb).size} bytes`);
  const notices: string[] = [];
  const pool = new DecodePool({ workers: 1, inFlightPerWorker: 4, memoryMiB: 384, onNotice: (l) => notices.push(l) });
  t.teardown(() => pool.close());
  t.ok(pool.stats.memoryCapApplied || process.platform !== 'linux');
  if (!pool.stats.memoryCapApplied) return;
  const rssBefore = process.memoryUsage().rss;
  // Alone.
  const alone = await settle(decodeImageFile(bomb, { decoder: pool }));
  t.ok(alone instanceof SslInvError);
  t.equal((alone as SslInvError).code, 'ERR_IMAGE_TOO_LARGE');
  t.equal((alone as SslInvError).file, bomb);
  t.match((alone as SslInvError).message, /more memory than a decode worker may use \(384 MiB\)/);
  t.equal(pool.stats.retriedAlone, 0);
  // Shared with good files in the same worker: they decode; the bomb is retried alone, then refused.
  const mixed = await Promise.all([good, bomb, good2, good].map((f) => settle(decodeImageFile(f, { decoder: pool }))));
  t.equal((mixed[1] as SslInvError).code, 'ERR_IMAGE_TOO_LARGE');
  for (const i of [0, 2, 3]) t.notOk(mixed[i] instanceof Error, `file ${i} decoded`);
  t.ok(Buffer.from((mixed[0] as DecodedImage).data).equals(Buffer.from((await decodeImageFile(good)).data)));
  t.ok(process.memoryUsage().rss - rssBefore < 256 << 20, 'this process did not hold the bomb\'s pixels');
  // The pool goes on.
  t.notOk((await settle(decodeImageFile(good2, { decoder: pool }))) instanceof Error);
});

t.test('a crash, a hang or an allocation failure is pinned on its file alone', async (t) => {
  const crash = copyAs('crash-1.jpg'), hang = copyAs('hang-1.jpg'), nomem = copyAs('nomem-1.jpg'), crowded = copyAs('crowded-1.jpg');
  const notices: string[] = [];
  // 3 s: long enough for a good file on a loaded CI machine, which would otherwise be refused as hung.
  const pool = new DecodePool({ workers: 1, inFlightPerWorker: 4, timeoutSeconds: 3, workerScript: FAULTY, onNotice: (l) => notices.push(l) });
  t.teardown(() => pool.close());
  const reference = await decodeImageFile(good);
  // Squeezed out of the cap by the others only: decoded alone, the same pixels.
  const squeezed = await Promise.all([good, crowded, good2].map((f) => settle(decodeImageFile(f, { decoder: pool }))));
  t.notOk(squeezed.some((r) => r instanceof Error), 'an allocation failure while shared is retried alone');
  t.ok(Buffer.from((squeezed[1] as DecodedImage).data).equals(Buffer.from(reference.data)), 'with the same pixels');
  t.equal(pool.stats.retriedAlone, 1);
  t.equal(pool.stats.workerDeaths, 0);
  const files = [good, crash, good2, good, hang, good, nomem, good2];
  const got = await Promise.all(files.map((f) => settle(decodeImageFile(f, { decoder: pool }))));
  const byName = (f: string) => got[files.indexOf(f)] as SslInvError;
  t.equal(byName(crash).code, 'ERR_IMAGE_DECODE');
  t.equal(byName(crash).file, crash);
  t.match(byName(crash).message, /decode worker was killed by SIGABRT while decoding this file alone/);
  t.equal(byName(hang).code, 'ERR_IMAGE_DECODE');
  t.equal(byName(hang).file, hang);
  t.match(byName(hang).message, /took longer than 3 s to decode/);
  t.equal(byName(nomem).code, 'ERR_IMAGE_TOO_LARGE');
  t.match(byName(nomem).message, /Array buffer allocation failed/);
  for (let i = 0; i < files.length; i++) {
    if (files[i] === good) t.ok(Buffer.from((got[i] as DecodedImage).data).equals(Buffer.from(reference.data)), `file ${i} decoded, same pixels`);
    if (files[i] === good2) t.notOk(got[i] instanceof Error, `file ${i} decoded`);
  }
  const s = pool.stats;
  t.ok(s.workerDeaths >= 2, `${s.workerDeaths} worker deaths (the crash and the hang, at least)`);
  t.ok(s.retriedAlone >= 3, `${s.retriedAlone} files retried alone`);
  t.equal(s.refused, 3);
  t.ok(notices.some((l) => /SIGABRT/.test(l)) && notices.some((l) => /SIGKILL/.test(l)), notices.join('\n'));
  // One file at a time: a crash with nothing else in flight is refused at once.
  const again = await settle(decodeImageFile(crash, { decoder: pool }));
  t.equal((again as SslInvError).code, 'ERR_IMAGE_DECODE');
  t.notOk((await settle(decodeImageFile(good, { decoder: pool }))) instanceof Error, 'and the pool goes on');
});

t.test('a worker that cannot start fails the decodes, naming why', async (t) => {
  process.env.SSL_INV_TEST_WORKER_EXIT = '3';
  const pool = new DecodePool({ workers: 2, workerScript: FAULTY });
  try {
    const got = await Promise.all([good, good2].map((f) => settle(decodeImageFile(f, { decoder: pool }))));
    for (const e of got) {
      t.equal((e as SslInvError).code, 'ERR_DECODE_WORKER');
      t.match((e as SslInvError).message, /cannot start: it exited with code 3 \(cannot start \(test\)\)/);
    }
    t.same(got.map((e) => (e as SslInvError).file), [good, good2]);
  } finally {
    delete process.env.SSL_INV_TEST_WORKER_EXIT;
    await pool.close();
  }
  if (process.platform === 'linux') {
    const tiny = new DecodePool({ workers: 1, memoryMiB: 16, startTimeoutSeconds: 2 });
    t.teardown(() => tiny.close());
    const e = await settle(decodeImageFile(good, { decoder: tiny }));
    t.equal((e as SslInvError).code, 'ERR_DECODE_WORKER');
    t.match((e as SslInvError).message, /memory cap is 16 MiB/);
  }
});

t.test('options are checked', async (t) => {
  t.throws(() => new DecodePool({ workers: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => new DecodePool({ memoryMiB: 1.5 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => new DecodePool({ timeoutSeconds: -1 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => new DecodePool({ workerScript: path.join(tmp, 'nope.js') }), { code: 'ERR_DECODE_WORKER' });
});

t.test('close() ends the workers and refuses what is pending and what comes later', async (t) => {
  const pool = new DecodePool({ workers: 2, workerScript: FAULTY });
  await decodeImageFile(good, { decoder: pool });
  const pids = (pool as unknown as { workers: { child: { pid: number } }[] }).workers.map((w) => w.child.pid);
  t.ok(pids.length >= 1);
  const pending = settle(decodeImageFile(copyAs('hang-2.jpg'), { decoder: pool }));
  await new Promise((r) => setTimeout(r, 100));
  await pool.close();
  const e = await pending;
  t.equal((e as SslInvError).code, 'ERR_INVALID_ARGUMENT');
  t.match((e as SslInvError).message, /closed before this file was decoded/);
  const later = await settle(decodeImageFile(good, { decoder: pool }));
  t.match((later as SslInvError).message, /the decode pool is closed/);
  await pool.close();  // twice is fine
  for (const pid of pids) t.notOk(alive(pid), `worker ${pid} ended`);
  if (process.platform === 'linux') {
    // A worker stuck starting (Node under too small a cap neither starts nor exits) is killed at once.
    const stuck = new DecodePool({ workers: 1, memoryMiB: 16, startTimeoutSeconds: 60 });
    const waiting = settle(decodeImageFile(good, { decoder: stuck }));
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await stuck.close();
    t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`);
    t.match(((await waiting) as SslInvError).message, /closed before this file was decoded/);
  }
});

t.test('an idle pool that was never closed does not keep Node running', async (t) => {
  const script = `const { DecodePool } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'data', 'decode-pool.js'))});
    const { decodeImageFile } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'data', 'decode.js'))});
    const pool = new DecodePool({ workers: 1 });
    decodeImageFile(${JSON.stringify(good)}, { decoder: pool }).then((img) => console.log('decoded', img.width));`;
  const started = Date.now();
  const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(process.execPath, ['-e', script], { timeout: 30000 }, (err, stdout) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout }));
  });
  t.equal(out.code, 0);
  t.match(out.stdout, /decoded 333/);
  t.ok(Date.now() - started < 20000, `exited after ${Date.now() - started} ms`);
});

t.test('loadBatches through a pool: the same batches; a crashing file skipped by name', async (t) => {
  const files = imagesUnder(path.join(FIX, 'images', 'inputs')).slice(0, 10);
  const crash = copyAs('crash-3.jpg');
  const withCrash = [...files.slice(0, 4), crash, ...files.slice(4)];
  const tr = { resize: 64, crop: 56, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
  const pool = new DecodePool({ workers: 2, inFlightPerWorker: 3, workerScript: FAULTY });
  t.teardown(() => pool.close());
  const collect = async (list: string[], decode?: { decoder: DecodePool }) => {
    const rows: Float32Array[] = [];
    const skipped: string[] = [];
    for await (const b of loadBatches(list, tr, { batchSize: 4, onError: 'skip', ...(decode ? { decode } : {}) })) {
      rows.push(b.batch.toFloat32Array());
      skipped.push(...b.skipped.map((s) => `${s.error.code} ${s.file}`));
      b.batch.dispose();
    }
    return { data: Buffer.concat(rows.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength))), skipped };
  };
  const inProcess = await collect(files);
  const pooled = await collect(withCrash, { decoder: pool });
  t.same(pooled.skipped, [`ERR_IMAGE_DECODE ${crash}`]);
  t.ok(pooled.data.equals(inProcess.data), 'identical float32 batches');
});
