/**
 * Helpers shared by the data-set readers: Python's glob/sort/str semantics as the original relies on
 * them, file checks with errors that name what was expected, and image sizes from headers.
 *
 * Python behaviour reproduced here:
 *   - `glob(os.path.join(dir, '*.png'))`: the non-hidden entries (names not starting with '.') of
 *     `dir` whose name matches, case-sensitively (POSIX); `**` without `recursive=True` is the same as
 *     `*`: exactly one directory level. A directory that does not exist gives no match (the original
 *     then fails later, or silently has nothing); the readers turn that into an error naming it;
 *   - `sorted(paths)`: by code point over the whole path string (`compareCodePoints`);
 *   - `str.splitlines()`, `int(str)` and `round(float)` (half to even).
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { compareCodePoints, DirEntry, readEntries } from '../data/image-folder';
import { readImageHeader } from '../data/decode';

export { compareCodePoints };

export function layoutError(message: string, file?: string, field?: string, cause?: unknown): SslInvError {
  return new SslInvError('ERR_DATASET_LAYOUT', message, {
    ...(file !== undefined ? { file } : {}), ...(field !== undefined ? { field } : {}), ...(cause !== undefined ? { cause } : {}),
  });
}

/** Sorts strings as Python's sorted() sorts str (by code point). Returns a new array. */
export function pySorted(a: readonly string[]): string[] {
  return [...a].sort(compareCodePoints);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The entries of a directory (links followed for "is a directory"), or an error naming it. */
export async function listDir(dir: string, what: string): Promise<DirEntry[]> {
  let st;
  try {
    st = await fsp.stat(dir);
  } catch (e) {
    throw layoutError(`the directory does not exist; expected ${what}`, dir, undefined, e);
  }
  if (!st.isDirectory()) throw layoutError(`not a directory; expected ${what}`, dir);
  return readEntries(dir);
}

/**
 * `glob(os.path.join(dir, pattern))` for a pattern on file names: the paths of the non-hidden,
 * non-directory entries whose name satisfies `match`, in directory order (unsorted, as glob).
 * A directory whose name matches is an error (the original's loader would fail on it).
 */
export async function globFiles(dir: string, match: (name: string) => boolean, what: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await listDir(dir, what)) {
    if (e.name.startsWith('.') || !match(e.name)) continue;
    if (e.isDir) throw layoutError(`is a directory, but its name matches the image pattern; expected ${what}`, path.join(dir, e.name));
    out.push(path.join(dir, e.name));
  }
  return out;
}

/** `glob(os.path.join(dir, '*'))` restricted to directories (the `**` of a non-recursive glob). */
export async function globDirs(dir: string, what: string): Promise<string[]> {
  return (await listDir(dir, what)).filter((e) => e.isDir && !e.name.startsWith('.')).map((e) => path.join(dir, e.name));
}

/** `glob(os.path.join(dir, '**', <file pattern>))` without recursive=True: exactly one level down. */
export async function globOneLevel(dir: string, match: (name: string) => boolean, what: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await globDirs(dir, what)) out.push(...await globFiles(sub, match, what));
  return out;
}

export const endsWith = (suffix: string) => (name: string): boolean => name.endsWith(suffix);

/** Python's str.splitlines() (the line boundaries str recognises; no trailing empty line). */
export function pySplitlines(s: string): string[] {
  const out: string[] = [];
  const re = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    out.push(s.slice(last, m.index));
    last = m.index + m[0].length;
  }
  if (last < s.length) out.push(s.slice(last));
  return out;
}

/** Python's int(str) for ASCII decimal text (surrounding whitespace, a sign, '_' between digits); null if it would raise. */
export function pyInt(s: string): number | null {
  const m = /^[ \t\n\r\v\f]*([+-]?)(\d+(?:_\d+)*)[ \t\n\r\v\f]*$/.exec(s);
  if (!m) return null;
  const v = Number(m[2]!.replace(/_/g, ''));
  if (!Number.isSafeInteger(v)) return null;
  return m[1] === '-' ? -v : v;
}

/** Python 3's round(x) for a float: the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Reads a UTF-8 text file (as Python's open(f).read() on a UTF-8 locale); a missing file names what was expected. */
export async function readTextFile(file: string, what: string): Promise<string> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw layoutError(`missing file; expected ${what}`, file, undefined, e);
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    return utf8.decode(buf);
  } catch (e) {
    throw layoutError(`not valid UTF-8 text; expected ${what}`, file, undefined, e);
  }
}

/** Reads a whole file; a missing file is ERR_DATASET_LAYOUT naming what was expected. */
export async function readBinaryFile(file: string, what: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw layoutError(`missing file; expected ${what}`, file, undefined, e);
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Formats a list of paths for an error message: the first few and how many more. */
export function listSome(items: readonly string[], n = 5): string {
  const head = items.slice(0, n).join(', ');
  return items.length > n ? `${head} and ${items.length - n} more` : head;
}

/** Checks that every listed file exists and is not a directory; the error lists the missing ones. */
export async function checkFilesExist(files: readonly string[], what: string, listedIn?: string): Promise<void> {
  const missing: string[] = [];
  const unique = [...new Set(files)];
  await mapLimit(unique, 32, async (f) => {
    try {
      const st = await fsp.stat(f);
      if (st.isDirectory()) missing.push(f);
    } catch {
      missing.push(f);
    }
  });
  if (missing.length > 0) {
    missing.sort(compareCodePoints);
    throw layoutError(`${missing.length} of the ${unique.length} ${what}${listedIn ? ` listed in ${listedIn}` : ''} ` +
      `do not exist: ${listSome(missing)}`, missing[0]);
  }
}

export interface ImageSize {
  width: number;
  height: number;
}

/** Width and height from a JPEG or PNG header (what PIL's Image.open(f).size gives), without decoding. */
export async function readImageSize(file: string): Promise<ImageSize> {
  let fh;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw layoutError('missing image file', file, undefined, e);
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    const { size } = await fh.stat();
    const n = Math.min(size, 1 << 16);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, 0);
    try {
      const h = readImageHeader(buf, file);
      return { width: h.width, height: h.height };
    } catch (e) {
      if (size <= n) throw e;
    }
    const all = Buffer.alloc(size);
    await fh.read(all, 0, size, 0);
    const h = readImageHeader(all, file);
    return { width: h.width, height: h.height };
  } finally {
    await fh.close();
  }
}

export function md5Hex(buf: Uint8Array): string {
  return createHash('md5').update(buf).digest('hex');
}

/** Python's os.path.basename for '/'-separated paths and the component before it. */
export function basename(p: string): string {
  return path.basename(p);
}

/** The name of the directory holding `p` (Python's p.split('/')[-2]). */
export function parentName(p: string): string {
  return path.basename(path.dirname(p));
}
