/**
 * torchvision's ImageFolder listing (torchvision/datasets/folder.py, 0.14), reproduced:
 *
 *   - classes: the names of the root's entries that are directories, following symbolic links
 *     (`os.scandir` + `entry.is_dir()`), hidden ones included, sorted like Python sorts str (by
 *     code point; JavaScript's default sort compares UTF-16 units and differs above U+FFFF);
 *   - samples: for each class in that order, `sorted(os.walk(class_dir, followlinks=True))` — the
 *     walk's directories ordered by their full path string (so "a/sub c" comes between "a/sub" and
 *     "a/sub/deeper", not in depth-first order) — and in each directory the sorted names of its
 *     non-directory entries (files, symbolic links to files, broken links) whose lower-cased name
 *     ends with one of IMG_EXTENSIONS;
 *   - a class without any such file is an error listing the classes (torchvision raises
 *     FileNotFoundError "Found no valid file for the classes ..."), as is a root without class
 *     directories.
 *
 * Deliberate differences, all errors (ERR_DATASET_LAYOUT) where torchvision goes on silently:
 *   - a symbolic link back to a directory that contains it (a loop) is reported with both paths;
 *     os.walk would recurse until the OS refuses the path (ELOOP) and list the same files dozens
 *     of times;
 *   - a directory that cannot be read (permissions) is reported; os.walk skips it;
 *   - a name that is not valid UTF-8 is reported (Python would carry it as surrogate escapes).
 *
 * Files are listed whatever their content: the listed extensions include formats this package does
 * not decode (.ppm .bmp .pgm .tif .tiff .webp); such files are listed in torchvision's order and
 * refused when decoded (ERR_IMAGE_FORMAT, see decode.ts), so an evaluation never silently drops
 * or reorders samples.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SslInvError } from '../errors';

/** torchvision's IMG_EXTENSIONS. */
export const IMG_EXTENSIONS: readonly string[] = [
  '.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp',
];

export interface ImageFolderSample {
  /** root joined with the class directory, sub-directories and file name. */
  path: string;
  classIndex: number;
}

export interface ImageFolderListing {
  root: string;
  classes: string[];
  classToIdx: Map<string, number>;
  samples: ImageFolderSample[];
}

export interface ImageFolderOptions {
  /** Extensions to accept (compared with the lower-cased name); default IMG_EXTENSIONS. */
  extensions?: readonly string[];
}

/** Compares strings by Unicode code point, like Python's str ordering. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x === y) continue;
    // Different UTF-16 units: surrogates (0xD800-0xDFFF) stand for code points above 0xFFFF, so they
    // sort after every other unit.
    const xs = x >= 0xd800 && x <= 0xdfff, ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function layoutError(message: string, file?: string, cause?: unknown): SslInvError {
  return new SslInvError('ERR_DATASET_LAYOUT', message, { file, cause });
}

export interface DirEntry {
  name: string;
  isDir: boolean;
}

/**
 * Reads a directory's entries, deciding "is a directory" as Python's DirEntry.is_dir() does (links
 * followed). Errors (ERR_DATASET_LAYOUT) name the directory. Shared with the data-set readers.
 */
export async function readEntries(dir: string): Promise<DirEntry[]> {
  let dirents;
  try {
    dirents = await fsp.readdir(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw layoutError(`cannot list the directory (${code ?? (e as Error).message})`, dir, e);
  }
  const out: DirEntry[] = [];
  for (const d of dirents) {
    let name: string;
    try {
      name = utf8.decode(d.name as unknown as Buffer);
    } catch (e) {
      throw layoutError(`a name in this directory is not valid UTF-8: ${JSON.stringify((d.name as unknown as Buffer)
        .toString('latin1'))}`, dir, e);
    }
    let isDir = d.isDirectory();
    if (d.isSymbolicLink()) {
      try {
        isDir = (await fsp.stat(path.join(dir, name))).isDirectory();
      } catch {
        isDir = false;  // a broken link is listed with the files, as os.walk does
      }
    }
    out.push({ name, isDir });
  }
  return out;
}

async function dirKey(dir: string): Promise<string> {
  try {
    const st = await fsp.stat(dir);
    return `${st.dev}:${st.ino}`;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw layoutError(`cannot read the directory (${why})`, dir, e);
  }
}

interface WalkedDir {
  /** The directory's path relative to the class directory, with a leading separator ('' for the class directory). */
  rel: string;
  files: string[];
}

/** os.walk(top, followlinks=True), top-down, with loop detection. */
async function walk(top: string): Promise<WalkedDir[]> {
  const out: WalkedDir[] = [];
  // Depth-first with the chain of ancestors (device:inode -> path) for loop detection.
  const visit = async (dir: string, rel: string, ancestors: Map<string, string>): Promise<void> => {
    const entries = await readEntries(dir);
    out.push({ rel, files: entries.filter((e) => !e.isDir).map((e) => e.name) });
    for (const e of entries.filter((x) => x.isDir)) {
      const child = path.join(dir, e.name);
      const key = await dirKey(child);
      const seen = ancestors.get(key);
      if (seen !== undefined) {
        throw layoutError(`symbolic link loop: this directory is ${seen}, which contains it`, child);
      }
      ancestors.set(key, child);
      await visit(child, `${rel}${path.sep}${e.name}`, ancestors);
      ancestors.delete(key);
    }
  };
  await visit(top, '', new Map([[await dirKey(top), top]]));
  return out;
}

/** torchvision's find_classes: sorted names of the directories (links followed) in root. */
export async function findClasses(root: string): Promise<string[]> {
  let st;
  try {
    st = await fsp.stat(root);
  } catch (e) {
    throw layoutError('the dataset directory does not exist; expected a directory with one sub-directory per ' +
      'class (ImageFolder layout: root/<class>/<image>)', root, e);
  }
  if (!st.isDirectory()) {
    throw layoutError('not a directory; expected a directory with one sub-directory per class (ImageFolder layout)',
      root);
  }
  const classes = (await readEntries(root)).filter((e) => e.isDir).map((e) => e.name).sort(compareCodePoints);
  if (classes.length === 0) {
    throw layoutError('found no class directory; expected one sub-directory per class holding its images ' +
      '(ImageFolder layout: root/<class>/<image>)', root);
  }
  return classes;
}

function hasExtension(name: string, extensions: readonly string[]): boolean {
  const lower = name.toLowerCase();
  return extensions.some((e) => lower.endsWith(e));
}

/**
 * Lists an ImageFolder dataset exactly as torchvision's ImageFolder(root) does (see the module
 * comment for the rules and the deliberate differences).
 */
export async function listImageFolder(root: string, opts: ImageFolderOptions = {}): Promise<ImageFolderListing> {
  const extensions = (opts.extensions ?? IMG_EXTENSIONS).map((e) => e.toLowerCase());
  const classes = await findClasses(root);
  const classToIdx = new Map(classes.map((c, i) => [c, i] as [string, number]));
  const samples: ImageFolderSample[] = [];
  const empty: string[] = [];
  for (const cls of classes) {
    const classIndex = classToIdx.get(cls) as number;
    const classDir = path.join(root, cls);
    const dirs = await walk(classDir);
    dirs.sort((a, b) => compareCodePoints(a.rel, b.rel));
    let count = 0;
    for (const d of dirs) {
      for (const name of d.files.sort(compareCodePoints)) {
        if (!hasExtension(name, extensions)) continue;
        samples.push({ path: path.join(classDir + d.rel, name), classIndex });
        count++;
      }
    }
    if (count === 0) empty.push(cls);
  }
  if (empty.length > 0) {
    throw layoutError(`found no valid file for the classes ${empty.join(', ')}. Supported extensions are: ` +
      `${extensions.join(', ')}`, root);
  }
  return { root, classes, classToIdx, samples };
}
