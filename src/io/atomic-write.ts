/**
 * Durable, atomic file replacement (RELIABILITY §5):
 *   1. create a temp file in the target's directory with O_CREAT|O_EXCL (name has the pid and random bytes);
 *   2. write all the data;
 *   3. fsync it (`FileHandle.sync()`);
 *   4. rename it over the target;
 *   5. fsync the directory, so the rename itself survives a power loss.
 * On any failure before the rename the temp file is removed and ERR_FILE_WRITE names the target;
 * the previous file, if any, is untouched.
 *
 * Every writer of temp files (this one, torchSave, NpyRowWriter) registers each temp file until it is
 * renamed or removed, so that an interrupted process can remove what it left unfinished:
 * `removePendingTempFiles()` (the CLI calls it on SIGINT / SIGTERM; a checkpoint or a features .npy
 * of gigabytes would otherwise stay behind as a hidden .tmp file).
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { SslInvError } from '../errors';

export type AtomicWriteData = Buffer | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** Temp files are named `.<base>.<pid>.<random>.tmp` next to the target. */
export function tempNameFor(file: string): string {
  const dir = path.dirname(file);
  const base = path.basename(file);
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Temp files made by this process and not yet renamed into place or removed. */
const pendingTemps = new Set<string>();

/** Registers a temp file just created (see the module comment). */
export function trackTempFile(tmp: string): void {
  pendingTemps.add(tmp);
}

/** Unregisters a temp file once renamed into place or removed. */
export function untrackTempFile(tmp: string): void {
  pendingTemps.delete(tmp);
}

/**
 * Removes every registered temp file, synchronously (signal and exit handlers cannot wait), and
 * returns their names. Targets are untouched: the previous version of each file stays.
 */
export function removePendingTempFiles(): string[] {
  const removed: string[] = [];
  for (const tmp of pendingTemps) {
    try {
      fs.rmSync(tmp, { force: true });
      removed.push(tmp);
    } catch {
      // Nothing more can be done from a signal handler; the name stays registered.
      continue;
    }
    pendingTemps.delete(tmp);
  }
  return removed;
}

/** Writes all of `chunk` at the handle's position (a write that returns 0 bytes is an error, not a loop). */
export async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
    off += bytesWritten;
  }
}

function isAsyncIterable(x: unknown): x is AsyncIterable<Uint8Array> {
  return x != null && typeof (x as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

async function renameWithRetry(from: string, to: string): Promise<void> {
  // Windows reports EPERM/EACCES/EBUSY while another process (a virus scanner, an indexer) holds the target.
  const retries = process.platform === 'win32' ? 10 : 0;
  for (let i = 0; ; i++) {
    try {
      await fsp.rename(from, to);
      return;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (i >= retries || !(code === 'EPERM' || code === 'EACCES' || code === 'EBUSY')) throw e;
      await new Promise((r) => setTimeout(r, 20 * (i + 1)));
    }
  }
}

/** Whether a failed directory fsync is one a platform or filesystem is allowed (Windows cannot open
 *  directories; some filesystems refuse fsync on them). */
function dirSyncUnsupported(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'EISDIR' || code === 'EPERM' || code === 'EACCES' || code === 'EINVAL' || code === 'ENOTSUP' ||
    code === 'EOPNOTSUPP' || code === 'EBADF';
}

/** fsyncs a directory; filesystems and platforms that cannot do it are tolerated. */
async function syncDir(dir: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await fsp.open(dir, 'r');
    await dh.sync();
  } catch (e) {
    if (!dirSyncUnsupported(e)) throw e;
  } finally {
    await dh?.close().catch(() => undefined);
  }
}

function syncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    if (!dirSyncUnsupported(e)) throw e;
  } finally {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* already reported or irrelevant */ }
    }
  }
}

function renameWithRetrySync(from: string, to: string): void {
  const retries = process.platform === 'win32' ? 10 : 0;
  for (let i = 0; ; i++) {
    try {
      fs.renameSync(from, to);
      return;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (i >= retries || !(code === 'EPERM' || code === 'EACCES' || code === 'EBUSY')) throw e;
      // A synchronous sleep: this variant serves code that cannot yield (see writeFileAtomicSync).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 * (i + 1));
    }
  }
}

function fileWriteError(file: string, renamed: boolean, e: unknown): SslInvError {
  const why = (e as Error)?.message ?? String(e);
  return new SslInvError(
    'ERR_FILE_WRITE',
    renamed ? `written, but the directory could not be synced: ${why}` : `cannot write (previous contents kept): ${why}`,
    { file, cause: e },
  );
}

/**
 * Writes `data` to `file` atomically and durably. `data` is a buffer or an (async) iterable of chunks,
 * so large outputs can be streamed without being held in memory at once.
 */
export async function writeFileAtomic(file: string, data: AtomicWriteData): Promise<void> {
  const tmp = tempNameFor(file);
  let fh: FileHandle | undefined;
  let created = false;
  let renamed = false;
  try {
    fh = await fsp.open(tmp, 'wx', 0o666);
    created = true;
    trackTempFile(tmp);
    if (data instanceof Uint8Array) {
      await writeAll(fh, data);
    } else if (isAsyncIterable(data)) {
      for await (const chunk of data) {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('chunks must be Buffers or Uint8Arrays');
        await writeAll(fh, chunk);
      }
    } else if (data != null && typeof (data as Iterable<Uint8Array>)[Symbol.iterator] === 'function') {
      for (const chunk of data as Iterable<Uint8Array>) {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('chunks must be Buffers or Uint8Arrays');
        await writeAll(fh, chunk);
      }
    } else {
      throw new TypeError('data must be a Buffer, a Uint8Array or an iterable of them');
    }
    await fh.sync();
    const h = fh;
    fh = undefined;
    await h.close();
    await renameWithRetry(tmp, file);
    renamed = true;
    untrackTempFile(tmp);
    await syncDir(path.dirname(file));
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    if (created && !renamed) {
      await fsp.unlink(tmp).catch(() => undefined);
      untrackTempFile(tmp);
    }
    throw fileWriteError(file, renamed, e);
  }
}

/**
 * The synchronous form of writeFileAtomic, for the few writers that run inside synchronous code
 * (pretrain's log rewrite on resume runs in a step hook): same steps, same temp-file registration,
 * same errors. It blocks the event loop for the write, so it is meant for small files.
 */
export function writeFileAtomicSync(file: string, data: Uint8Array | Iterable<Uint8Array>): void {
  const tmp = tempNameFor(file);
  let fd: number | undefined;
  let created = false;
  let renamed = false;
  try {
    fd = fs.openSync(tmp, 'wx', 0o666);
    created = true;
    trackTempFile(tmp);
    const chunks: Iterable<Uint8Array> = data instanceof Uint8Array ? [data] : data;
    if (chunks == null || typeof (chunks as Iterable<Uint8Array>)[Symbol.iterator] !== 'function') {
      throw new TypeError('data must be a Buffer, a Uint8Array or an iterable of them');
    }
    for (const chunk of chunks) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError('chunks must be Buffers or Uint8Arrays');
      let off = 0;
      while (off < chunk.byteLength) {
        const n = fs.writeSync(fd, chunk, off, chunk.byteLength - off);
        if (n <= 0) throw new Error('write returned 0 bytes');
        off += n;
      }
    }
    fs.fsyncSync(fd);
    const h = fd;
    fd = undefined;
    fs.closeSync(h);
    renameWithRetrySync(tmp, file);
    renamed = true;
    untrackTempFile(tmp);
    syncDirSync(path.dirname(file));
  } catch (e) {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* the write's error is the one to report */ }
    }
    if (created && !renamed) {
      try { fs.rmSync(tmp, { force: true }); } catch { /* left for removePendingTempFiles */ }
      untrackTempFile(tmp);
    }
    throw fileWriteError(file, renamed, e);
  }
}
