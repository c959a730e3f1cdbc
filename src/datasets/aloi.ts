/**
 * ALOI (Amsterdam Library of Object Images) as the original's datasets/aloi.py reads it, root =
 * `<data-root>/ALOI`, one folder per mode:
 *
 *     ALOI/viewpoint/<object 1..1000>/*.png      (e.g. 1/1_r0.png ... 1_r355.png: 72 rotations)
 *     ALOI/illumination/<object>/*.png           (e.g. 1/1_l1c1.png ... 1_l8c3.png: 8 lights x 3 cameras)
 *     ALOI/temperature/<object>/*.png            (e.g. 1/1_i110.png ... 1_i250.png: 12 colour temperatures)
 *
 * images = sorted(glob('<mode>/** /*.png')) (one folder level: the glob is not recursive). Classes:
 *   - viewpoint, temperature: 1000; class c holds the files of folder int(name) == c + 1;
 *   - illumination: 3000 (object x camera); class c holds the files of folder c % 1000 + 1 whose
 *     name's last character before '.png' is the camera digit c // 1000 + 1.
 * Views are in sorted path order. Checked (ERR_DATASET_LAYOUT): folder names are integers and, for
 * illumination, the camera character of the files in object folders is a digit (the original's int()
 * fails otherwise); every class has views (the original fails on an empty class).
 */
import * as path from 'node:path';
import { endsWith, globOneLevel, layoutError, listSome, parentName, pyInt, pySorted } from './common';
import { RealWorldDataset, ViewGroup } from './types';

export type AloiMode = 'viewpoint' | 'illumination' | 'temperature';

export const ALOI_K: Readonly<Record<AloiMode, number>> = { viewpoint: 72, illumination: 8, temperature: 12 };

export function aloiNumClasses(mode: AloiMode): number {
  return mode === 'illumination' ? 3000 : 1000;
}

export async function readAloi(root: string, mode: AloiMode): Promise<RealWorldDataset> {
  const dir = path.join(root, mode);
  const images = pySorted(await globOneLevel(dir, endsWith('.png'), `the ALOI ${mode} images ${mode}/<object number>/*.png`));
  const n = aloiNumClasses(mode);
  const byClass: string[][] = Array.from({ length: n }, () => []);
  for (const p of images) {
    const obj = pyInt(parentName(p));
    if (obj === null) throw layoutError(`the folder name is not an integer; expected ${mode}/<object number>/*.png`, p);
    if (obj < 1 || obj > 1000) continue;
    if (mode !== 'illumination') {
      byClass[obj - 1]!.push(p);
      continue;
    }
    const name = path.basename(p);
    const cam = pyInt(name.slice(-5, -4));
    if (cam === null) throw layoutError("the character before '.png' is not a camera number; expected <object>_l<light>c<camera>.png", p);
    if (cam >= 1 && cam <= 3) byClass[(cam - 1) * 1000 + obj - 1]!.push(p);
  }
  const label = (c: number): string => (mode === 'illumination' ? `${c % 1000 + 1}/c${Math.trunc(c / 1000) + 1}` : String(c + 1));
  const missing = byClass.map((f, c) => (f.length === 0 ? label(c) : '')).filter((s) => s);
  if (missing.length > 0) {
    throw layoutError(`no views for ${missing.length} of the ${n} classes (${listSome(missing, 8)}); expected ` +
      (mode === 'illumination' ? 'objects 1..1000 with cameras 1..3' : 'objects 1..1000'), dir);
  }
  const groups: ViewGroup[] = byClass.map((files, c) => ({ name: label(c), files }));
  return { name: `ALOI-${mode}`, root, k: ALOI_K[mode], groups };
}
