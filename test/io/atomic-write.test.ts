// writeFileAtomic and writeFileAtomicSync: success (buffer, chunks, async chunks), missing directory, read-only directory,
// failures mid-write leave the old file intact and no temp file behind; an interrupted CLI process
// removes its unfinished temp files.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { writeFileAtomic, writeFileAtomicSync, tempNameFor, removePendingTempFiles } from '../../src/io/atomic-write';
import { PyDict, TorchTensor, torchSave } from '../../src/io/torch-save';

function tmpdir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-'));
  t.teardown(() => {
    try {
      fs.chmodSync(dir, 0o755);
    } catch {
      /* gone */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

t.test('writes a buffer, chunks and async chunks; replaces the old file; leaves no temp file', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'out.bin');
  await writeFileAtomic(file, Buffer.from('first'));
  t.equal(fs.readFileSync(file, 'utf8'), 'first');
  await writeFileAtomic(file, [Buffer.from('sec'), new Uint8Array([0x6f, 0x6e, 0x64])]);
  t.equal(fs.readFileSync(file, 'utf8'), 'second');
  async function* gen() {
    for (let i = 0; i < 100; i++) yield Buffer.alloc(1000, i);
  }
  await writeFileAtomic(file, gen());
  const back = fs.readFileSync(file);
  t.equal(back.length, 100_000);
  t.equal(back[99_999], 99);
  await writeFileAtomic(file, new Uint8Array(0));
  t.equal(fs.statSync(file).size, 0, 'empty data');
  t.same(fs.readdirSync(dir), ['out.bin'], 'no temp files left');
});

t.test('temp names are in the same directory, unique, with the pid', async (t) => {
  const a = tempNameFor('/x/y/ckpt.pth');
  const b = tempNameFor('/x/y/ckpt.pth');
  t.equal(path.dirname(a), '/x/y');
  t.not(a, b);
  t.match(path.basename(a), new RegExp(`^\\.ckpt\\.pth\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
});

t.test('target directory missing: ERR_FILE_WRITE naming the file', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'no', 'such', 'dir', 'out.bin');
  const err = await t.rejects(writeFileAtomic(file, Buffer.from('x')), { code: 'ERR_FILE_WRITE', file });
  t.match((err as unknown as Error)?.message ?? String(err), file);
});

/** root (and CAP_DAC_OVERRIDE) can write into a read-only directory anyway: probe once. */
function canWriteReadOnlyDirs(): boolean {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ro-probe-'));
  try {
    fs.chmodSync(d, 0o555);
    fs.writeFileSync(path.join(d, 'probe'), 'x');
    return true;
  } catch {
    return false;
  } finally {
    fs.chmodSync(d, 0o755);
    fs.rmSync(d, { recursive: true, force: true });
  }
}

/** The TypeScript loader this file runs under (tap's), for a child process that runs a .ts helper. */
const tsLoaderArgs = process.execArgv.filter((a) => /@tapjs[\\/]typescript/.test(a));

/**
 * How the read-only-directory case can be seen here: in this process (not root); in a child that
 * drops to nobody first (root on Linux: test/helpers/read-only-dir-child.ts); or not at all.
 */
const readOnlyMode: 'in-process' | 'child' | undefined = !canWriteReadOnlyDirs() ? 'in-process'
  : process.platform === 'linux' && process.getuid?.() === 0 && typeof process.setuid === 'function' &&
      tsLoaderArgs.length > 0 ? 'child'
    : undefined;

t.test(`read-only directory: refused, old file intact (${readOnlyMode ?? 'skipped'})`,
  { skip: readOnlyMode === undefined ? 'this process may write read-only directories and cannot drop to an unprivileged user' : false },
  async (t) => {
    const dir = tmpdir(t);
    const file = path.join(dir, 'keep.bin');
    fs.writeFileSync(file, 'old contents');
    if (readOnlyMode === 'in-process') {
      fs.chmodSync(dir, 0o555);
      await t.rejects(writeFileAtomic(file, Buffer.from('new')), { code: 'ERR_FILE_WRITE', file });
      t.throws(() => writeFileAtomicSync(file, Buffer.from('new')), { code: 'ERR_FILE_WRITE', file });
      t.equal(fs.readFileSync(file, 'utf8'), 'old contents');
      t.same(fs.readdirSync(dir), ['keep.bin']);
      return;
    }
    // As root: a child loads the writers, drops to nobody (65534) and tries each one in `dir`.
    const ckpt = path.join(dir, 'ckpt.pth.tar');
    const oldCkpt = randomBytes(3000);
    fs.writeFileSync(ckpt, oldCkpt);
    fs.chmodSync(dir, 0o555); // r-x for everyone: nobody may enter it and read, not create files.
    const { spawnSync } = await import('node:child_process');
    const env: NodeJS.ProcessEnv = {};
    // tap's coverage hooks (NODE_OPTIONS, _TAPJS_*) would write as nobody into .tap/: leave them out.
    for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS_')) env[k] = v;
    const child = spawnSync(process.execPath, [...tsLoaderArgs, path.join(__dirname, '..', 'helpers', 'read-only-dir-child.ts'), dir],
      { env, encoding: 'utf8', timeout: 60_000 });
    t.equal(child.status, 0, 'the child ran', { stderr: child.stderr });
    const report = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as {
      uid: number; gid: number; probe: string | null;
      results: { writer: string; code: string | null; file?: string; message?: string; cause?: string }[];
    };
    t.equal(report.uid, 65534, 'the child runs as nobody');
    t.equal(report.gid, 65534);
    t.equal(report.probe, 'EACCES', 'so the directory is read-only for it');
    t.match(report.results, [
      { writer: 'writeFileAtomic', code: 'ERR_FILE_WRITE', file, cause: 'EACCES' },
      { writer: 'writeFileAtomicSync', code: 'ERR_FILE_WRITE', file, cause: 'EACCES' },
      { writer: 'torchSave', code: 'ERR_FILE_WRITE', file: ckpt, cause: 'EACCES' },
    ], 'each writer refuses with ERR_FILE_WRITE naming the target');
    t.equal(report.results.length, 3);
    for (const r of report.results) t.match(r.message ?? '', r.file ?? '\0', `${r.writer}: the message names the file`);
    t.equal(fs.readFileSync(file, 'utf8'), 'old contents', 'old file intact');
    t.ok(fs.readFileSync(ckpt).equals(oldCkpt), 'old checkpoint intact');
    t.same(fs.readdirSync(dir).sort(), ['ckpt.pth.tar', 'keep.bin'], 'nothing added');
  });

t.test('a failure mid-write keeps the old file and removes the temp file', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'ckpt.bin');
  fs.writeFileSync(file, 'good checkpoint');
  async function* failing() {
    yield Buffer.alloc(4096, 1);
    yield Buffer.alloc(4096, 2);
    throw new Error('disk on fire');
  }
  const err = await t.rejects(writeFileAtomic(file, failing()), { code: 'ERR_FILE_WRITE', file });
  t.match((err as unknown as Error)?.message ?? '', /disk on fire/);
  t.equal(fs.readFileSync(file, 'utf8'), 'good checkpoint', 'old file intact');
  t.same(fs.readdirSync(dir), ['ckpt.bin'], 'temp file removed');

  await t.rejects(writeFileAtomic(file, [Buffer.from('a'), 'not bytes' as unknown as Uint8Array]), { code: 'ERR_FILE_WRITE' });
  await t.rejects(writeFileAtomic(file, 42 as unknown as Uint8Array), { code: 'ERR_FILE_WRITE' });
  t.equal(fs.readFileSync(file, 'utf8'), 'good checkpoint');
  t.same(fs.readdirSync(dir), ['ckpt.bin']);
});

/** An error as a full disk gives it (write(2) and fsync(2) report ENOSPC). */
function enospc(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`),
    { code: 'ENOSPC', errno: -(os.constants.errno.ENOSPC ?? 28), syscall });
}

type FhWrite = (this: FileHandle, buffer: unknown, offset?: number, length?: number, position?: number | null) =>
  Promise<{ bytesWritten: number; buffer: unknown }>;

/** What the disk held when it first reported ENOSPC: every file of `dir` and its size. */
type DiskSnapshot = Map<string, number>;

function snapshot(dir: string): DiskSnapshot {
  return new Map(fs.readdirSync(dir).map((f) => [f, fs.statSync(path.join(dir, f)).size]));
}

/**
 * Runs `fn` on a disk that fills up after `budget` bytes: FileHandle.write (what writeFileAtomic and
 * torchSave write through) writes the bytes that still fit (a short write, as write(2) gives on a
 * nearly full disk), and every write after that rejects with ENOSPC. The prototype is restored after.
 * Returns how many writes were refused and the directory as it was at the first refusal.
 */
async function onFullDisk(dir: string, budget: number, fn: () => Promise<unknown>): Promise<{ refused: number; atFull?: DiskSnapshot }> {
  const probe = await fsp.open(__filename, 'r');
  const proto = Object.getPrototypeOf(probe) as { write: FhWrite };
  await probe.close();
  const original = proto.write;
  let left = budget;
  const out: { refused: number; atFull?: DiskSnapshot } = { refused: 0 };
  proto.write = function (this: FileHandle, buffer: unknown, offset?: number, length?: number, position?: number | null) {
    if (!ArrayBuffer.isView(buffer)) return original.call(this, buffer, offset, length, position);
    const off = offset ?? 0;
    const len = length ?? buffer.byteLength - off;
    if (left <= 0 && len > 0) {
      out.refused++;
      out.atFull ??= snapshot(dir);
      return Promise.reject(enospc('write'));
    }
    const n = Math.min(len, left);
    left -= n;
    return original.call(this, buffer, off, n, position);
  };
  try {
    await fn();
  } finally {
    proto.write = original;
  }
  return out;
}

t.test('ENOSPC part-way through: ERR_FILE_WRITE naming the file, old contents intact, no temp file', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'ckpt.bin');
  const old = randomBytes(10_000);
  fs.writeFileSync(file, old);
  const chunks = [randomBytes(65_536), randomBytes(65_536), randomBytes(65_536)];
  // The disk fills inside the second chunk, on the first write and (buffer form) inside the only write.
  for (const [budget, data] of [[100_000, chunks], [0, chunks], [4_321, Buffer.concat(chunks)]] as const) {
    let err: unknown;
    const full = await onFullDisk(dir, budget, () => writeFileAtomic(file, data).catch((e: unknown) => { err = e; }));
    t.equal(full.refused, 1, `budget ${budget}: the write hit ENOSPC once`);
    t.match(err, { code: 'ERR_FILE_WRITE', file, message: /no space left on device/ }, `budget ${budget}: ERR_FILE_WRITE`);
    t.equal((err as { cause?: { code?: string } } | undefined)?.cause?.code, 'ENOSPC', 'caused by ENOSPC');
    t.match((err as Error | undefined)?.message ?? '', file, 'the message names the file');
    // While the disk was full, the bytes that fitted were in a temp file beside the target, not in it.
    const at = [...(full.atFull ?? new Map<string, number>())];
    t.same(at.filter(([f]) => f !== 'ckpt.bin').map(([f, size]) => [f.endsWith('.tmp'), size]), [[true, budget]],
      `budget ${budget}: the partial data went to one temp file`);
    t.ok(fs.readFileSync(file).equals(old), `budget ${budget}: previous contents intact, byte for byte`);
    t.same(fs.readdirSync(dir), ['ckpt.bin'], `budget ${budget}: no temp file left`);
  }
  t.same(removePendingTempFiles(), [], 'nothing left registered');
  // Delayed allocation and network filesystems report a full disk at fsync.
  const probe = await fsp.open(__filename, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const sync = proto.sync;
  proto.sync = () => Promise.reject(enospc('fsync'));
  try {
    await t.rejects(writeFileAtomic(file, chunks), { code: 'ERR_FILE_WRITE', file, cause: { code: 'ENOSPC' } }, 'ENOSPC at fsync');
  } finally {
    proto.sync = sync;
  }
  t.ok(fs.readFileSync(file).equals(old), 'previous contents intact');
  t.same(fs.readdirSync(dir), ['ckpt.bin'], 'no temp file left');
  await writeFileAtomic(file, chunks);
  t.ok(fs.readFileSync(file).equals(Buffer.concat(chunks)), 'with space again, the write succeeds');
});

t.test('writeFileAtomicSync: ENOSPC part-way through keeps the old contents, leaves no temp file', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'log.csv');
  const old = randomBytes(5_000);
  fs.writeFileSync(file, old);
  // The module reads fs.writeSync from the fs module at each call, so replacing it there is seen.
  // Nothing else runs while the synchronous write does.
  const nodeFs = require('node:fs') as { writeSync: typeof fs.writeSync };
  const original = nodeFs.writeSync;
  let left = 6_000;
  let refused = 0;
  let atFull: DiskSnapshot | undefined;
  nodeFs.writeSync = ((fd: number, buffer: NodeJS.ArrayBufferView, offset?: number, length?: number, position?: number | null) => {
    const len = length ?? buffer.byteLength - (offset ?? 0);
    if (left <= 0 && len > 0) {
      refused++;
      atFull ??= snapshot(dir);
      throw enospc('write');
    }
    const n = Math.min(len, left);
    left -= n;
    return original(fd, buffer, offset ?? 0, n, position);
  }) as typeof fs.writeSync;
  let err: unknown;
  try {
    writeFileAtomicSync(file, [randomBytes(4_096), randomBytes(4_096), randomBytes(4_096)]);
  } catch (e) {
    err = e;
  } finally {
    nodeFs.writeSync = original;
  }
  t.equal(refused, 1, 'the write hit ENOSPC once');
  t.match(err, { code: 'ERR_FILE_WRITE', file, cause: { code: 'ENOSPC' } });
  t.same([...(atFull ?? new Map<string, number>())].filter(([f]) => f !== 'log.csv').map(([f, size]) => [f.endsWith('.tmp'), size]),
    [[true, 6_000]], 'the partial data went to one temp file');
  t.ok(fs.readFileSync(file).equals(old), 'previous contents intact, byte for byte');
  t.same(fs.readdirSync(dir), ['log.csv'], 'no temp file left');
  t.same(removePendingTempFiles(), [], 'nothing left registered');
});

t.test('torchSave: a checkpoint write that hits ENOSPC keeps the old checkpoint', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'default_0003.pth.tar');
  const value = (n: number, fill: number) => new PyDict(new Map<string | number, TorchTensor | number>([
    ['epoch', fill],
    ['w', new TorchTensor('float32', [n], new Float32Array(n).fill(fill))],
    ['b', new TorchTensor('float32', [n], new Float32Array(n).fill(-fill))],
  ]));
  await torchSave(file, value(1000, 1));
  const old = fs.readFileSync(file);
  const scratch = tmpdir(t);
  await torchSave(path.join(scratch, 'full.pth.tar'), value(50_000, 2));
  const size = fs.statSync(path.join(scratch, 'full.pth.tar')).size;
  // Full: inside the first record's header; inside the first tensor; in the end records (the last 30 bytes).
  for (const budget of [10, 70_000, size - 30]) {
    let err: unknown;
    const full = await onFullDisk(dir, budget, () => torchSave(file, value(50_000, 2)).catch((e: unknown) => { err = e; }));
    t.equal(full.refused, 1, `budget ${budget}: the save hit ENOSPC once`);
    t.match(err, { code: 'ERR_FILE_WRITE', file, message: /no space left on device/ }, `budget ${budget}: ERR_FILE_WRITE naming the checkpoint`);
    t.equal((err as { cause?: { code?: string } } | undefined)?.cause?.code, 'ENOSPC', 'caused by ENOSPC');
    t.same([...(full.atFull ?? new Map<string, number>())].filter(([f]) => f !== 'default_0003.pth.tar').map(([f, size]) => [f.endsWith('.tmp'), size]),
      [[true, budget]], `budget ${budget}: the partial checkpoint was a temp file`);
    t.ok(fs.readFileSync(file).equals(old), `budget ${budget}: the old checkpoint intact, byte for byte`);
    t.same(fs.readdirSync(dir), ['default_0003.pth.tar'], `budget ${budget}: no temp file left`);
  }
  t.same(removePendingTempFiles(), [], 'nothing left registered');
});

t.test('a failed rename (target is a directory) keeps everything and removes the temp file', async (t) => {
  const dir = tmpdir(t);
  const target = path.join(dir, 'adir');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'inside'), 'x');
  await t.rejects(writeFileAtomic(target, Buffer.from('data')), { code: 'ERR_FILE_WRITE', file: target });
  t.ok(fs.statSync(target).isDirectory());
  t.same(fs.readdirSync(dir).sort(), ['adir'], 'temp file removed');
});

t.test('writeFileAtomicSync: the same contract, synchronously', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'log.csv');
  writeFileAtomicSync(file, Buffer.from('epoch,loss\n0,1.5\n'));
  t.equal(fs.readFileSync(file, 'utf8'), 'epoch,loss\n0,1.5\n');
  writeFileAtomicSync(file, [Buffer.from('epoch,'), new Uint8Array([0x6c, 0x6f, 0x73, 0x73, 0x0a])]);
  t.equal(fs.readFileSync(file, 'utf8'), 'epoch,loss\n', 'chunks, old contents replaced');
  writeFileAtomicSync(file, new Uint8Array(0));
  t.equal(fs.statSync(file).size, 0, 'empty data');
  t.same(fs.readdirSync(dir), ['log.csv'], 'no temp files left');

  fs.writeFileSync(file, 'good log');
  function* failing() {
    yield Buffer.alloc(4096, 1);
    throw new Error('disk on fire');
  }
  t.throws(() => writeFileAtomicSync(file, failing()), { code: 'ERR_FILE_WRITE', file, message: /disk on fire/ });
  t.throws(() => writeFileAtomicSync(file, [Buffer.from('a'), 'text' as unknown as Uint8Array]), { code: 'ERR_FILE_WRITE' });
  t.throws(() => writeFileAtomicSync(file, 7 as unknown as Uint8Array), { code: 'ERR_FILE_WRITE' });
  t.equal(fs.readFileSync(file, 'utf8'), 'good log', 'old file intact after each failure');
  t.same(fs.readdirSync(dir), ['log.csv'], 'temp files removed');
  t.same(removePendingTempFiles(), [], 'and unregistered');

  const missing = path.join(dir, 'no', 'dir', 'x.csv');
  t.throws(() => writeFileAtomicSync(missing, Buffer.from('x')), { code: 'ERR_FILE_WRITE', file: missing });
  const sub = path.join(dir, 'adir');
  fs.mkdirSync(sub);
  t.throws(() => writeFileAtomicSync(sub, Buffer.from('x')), { code: 'ERR_FILE_WRITE', file: sub });
  t.ok(fs.statSync(sub).isDirectory());
  t.same(fs.readdirSync(dir).sort(), ['adir', 'log.csv'], 'failed rename: temp file removed');
});

t.test('interrupted: the pending temp files are removed, the old files stay', async (t) => {
  // A child process (the built lib, as bin/ssl-inv.js runs it) installs the CLI's SIGINT cleanup and
  // starts a writeFileAtomic and an NpyRowWriter (features) without finishing them; the parent
  // interrupts it. (torchSave registers its temp file the same way; its write cannot be held open
  // from outside.)
  const lib = path.join(__dirname, '..', '..', 'lib');
  if (!fs.existsSync(path.join(lib, 'cli', 'main.js'))) {
    t.skip('lib/ not built (npm test builds it)');
    return;
  }
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'a.json'), 'old a');
  fs.writeFileSync(path.join(dir, 'feats.npy'), 'old npy');
  const script = path.join(dir, 'child.js');
  fs.writeFileSync(script, `
const path = require('node:path');
const { installInterruptCleanup } = require(${JSON.stringify(path.join(lib, 'cli', 'main.js'))});
const { writeFileAtomic } = require(${JSON.stringify(path.join(lib, 'io', 'atomic-write.js'))});
const { NpyRowWriter } = require(${JSON.stringify(path.join(lib, 'io', 'npy-writer.js'))});
installInterruptCleanup();
const dir = ${JSON.stringify(dir)};
async function* never() { yield Buffer.from('new a, first chunk'); await new Promise(() => {}); }
writeFileAtomic(path.join(dir, 'a.json'), never());
NpyRowWriter.open(path.join(dir, 'feats.npy'), 'float32', [4], 10).then((w) => w.append(new Float32Array(8)));
setInterval(() => {}, 1000);
const poll = setInterval(() => {
  if (require('node:fs').readdirSync(dir).filter((f) => f.endsWith('.tmp')).length === 2) { clearInterval(poll); process.stdout.write('ready\\n'); }
}, 10);
`);
  const { spawn } = await import('node:child_process');
  // Twice: as a person reads it, and with SSL_INV_PROGRESS=json (one JSON event).
  for (const json of [false, true]) {
    const env = { ...process.env, SSL_INV_PROGRESS: json ? 'json' : '' };
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += String(d); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the child never got ready')), 20000);
      child.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(timer); resolve(); } });
    });
    t.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 2, 'two unfinished temp files before');
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    t.equal(code, 130, 'exit code 128 + SIGINT');
    if (json) {
      const ev = JSON.parse(stderr.trim()) as { type: string; signal: string; removed: string[] };
      t.match(ev, { type: 'interrupted', signal: 'SIGINT' }, 'one JSON event');
      t.equal(ev.removed.length, 2, 'naming the 2 removed files');
    } else {
      t.match(stderr, /ssl-inv: interrupted \(SIGINT\); removed 2 unfinished file\(s\)/);
    }
    t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
    t.equal(fs.readFileSync(path.join(dir, 'a.json'), 'utf8'), 'old a', 'the previous versions are untouched');
    t.equal(fs.readFileSync(path.join(dir, 'feats.npy'), 'utf8'), 'old npy');
  }
});
