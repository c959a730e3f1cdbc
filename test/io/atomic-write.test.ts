// writeFileAtomic: success (buffer, chunks, async chunks), missing directory, read-only directory,
// failures mid-write leave the old file intact and no temp file behind.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic, tempNameFor } from '../../src/io/atomic-write';

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
