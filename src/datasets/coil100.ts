/**
 * COIL-100 as the original's datasets/coil100.py reads it, root = `<data-root>/COIL100`:
 *
 *     COIL100/obj1__0.png, obj1__5.png, ..., obj100__355.png   (72 views of each of 100 objects)
 *
 * images = sorted(glob('*.png')); the views of class c (0..99) are, in that order, the files with
 * `int(name.split('__')[0][3:]) == c + 1`. Checked (ERR_DATASET_LAYOUT): every .png name has that
 * form (the original's int() fails otherwise), and every one of the 100 objects has views (the
 * original fails on an empty class).
 */
import * as path from 'node:path';
import { endsWith, globFiles, layoutError, listSome, pyInt, pySorted } from './common';
import { RealWorldDataset, ViewGroup } from './types';

export const COIL100_NUM_CLASSES = 100;

/** The object number of a COIL-100 file name (the original's int(name.split('__')[0][3:])), or null. */
export function coil100Object(name: string): number | null {
  return pyInt(name.split('__')[0]!.slice(3));
}

export async function readCoil100(root: string): Promise<RealWorldDataset> {
  const images = pySorted(await globFiles(root, endsWith('.png'), 'the COIL-100 images obj<N>__<angle>.png'));
  const byClass: string[][] = Array.from({ length: COIL100_NUM_CLASSES }, () => []);
  for (const p of images) {
    const obj = coil100Object(path.basename(p));
    if (obj === null) throw layoutError('file name is not obj<N>__<angle>.png (the original reads N with int())', p);
    if (obj >= 1 && obj <= COIL100_NUM_CLASSES) byClass[obj - 1]!.push(p);
  }
  const missing = byClass.map((f, c) => (f.length === 0 ? `obj${c + 1}` : '')).filter((s) => s);
  if (missing.length > 0) {
    throw layoutError(`no views of ${missing.length} of the 100 objects (${listSome(missing, 8)}); expected ` +
      'obj<N>__<angle>.png for every N in 1..100', root);
  }
  const groups: ViewGroup[] = byClass.map((files, c) => ({ name: `obj${c + 1}`, files }));
  return { name: 'COIL100', root, k: 72, groups };
}
