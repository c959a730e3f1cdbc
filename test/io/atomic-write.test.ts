// writeFileAtomic and writeFileAtomicSync: success (buffer, chunks, async chunks), missing directory, read-only directory,
// failures mid-write leave the old file intact and no temp file behind; an interrupted CLI process
// removes its unfinished temp files.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic, writeFileAtomicSync, tempNameFor, removePendingTempFiles } from '../../src/io/atomic-write';

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

t.test('read-only directory: refused, old file intact',
  { skip: canWriteReadOnlyDirs() ? 'this process may write read-only directories (root?)' : false }, async (t) => {
    const dir = tmpdir(t);
    const file = path.join(dir, 'keep.bin');
    fs.writeFileSync(file, 'old contents');
    fs.chmodSync(dir, 0o555);
    await t.rejects(writeFileAtomic(file, Buffer.from('new')), { code: 'ERR_FILE_WRITE', file });
    t.equal(fs.readFileSync(file, 'utf8'), 'old contents');
    t.same(fs.readdirSync(dir), ['keep.bin']);
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
