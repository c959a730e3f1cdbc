/**
 * DaLI (Simo-Serra et al.'s deformation and illumination data set: 12 objects, each photographed
 * under varying deformation and light) as the original's datasets/dali.py reads it, root = `<data-root>/DaLI`:
 *
 *     DaLI/input/png/1/*.png ... DaLI/input/png/12/*.png
 *
 * images = sorted(glob('input/png/** /*.png')) (one directory level: the glob is not recursive); the
 * views of class c (0..11) are the files whose folder name is the integer c + 1. Checked: every folder
 * holding .png files is named by an integer (the original's int() fails otherwise), and each of the 12
 * classes has views.
 */
import * as path from 'node:path';
import { endsWith, globOneLevel, layoutError, listSome, parentName, pyInt, pySorted } from './common';
import { RealWorldDataset, ViewGroup } from './types';

export const DALI_NUM_CLASSES = 12;

export async function readDali(root: string): Promise<RealWorldDataset> {
  const dir = path.join(root, 'input', 'png');
  const images = pySorted(await globOneLevel(dir, endsWith('.png'), 'the DaLI images input/png/<object number>/*.png'));
  const byClass: string[][] = Array.from({ length: DALI_NUM_CLASSES }, () => []);
  for (const p of images) {
    const c = pyInt(parentName(p));
    if (c === null) throw layoutError('the folder name is not an integer; expected input/png/<object number>/*.png', p);
    if (c >= 1 && c <= DALI_NUM_CLASSES) byClass[c - 1]!.push(p);
  }
  const missing = byClass.map((f, c) => (f.length === 0 ? String(c + 1) : '')).filter((s) => s);
  if (missing.length > 0) {
    throw layoutError(`no views of object${missing.length > 1 ? 's' : ''} ${listSome(missing, 12)}; expected input/png/<1..12>/*.png`, dir);
  }
  const groups: ViewGroup[] = byClass.map((files, c) => ({ name: String(c + 1), files }));
  return { name: 'DaLI', root, k: 32, groups };
}
