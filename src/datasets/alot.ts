/**
 * ALOT (Amsterdam Library of Textures) as the original's datasets/alot.py reads it, root =
 * `<data-root>/ALOT` (the same folder for every mode):
 *
 *     ALOT/<texture 1..250>/<texture>_c<camera>l<light>[r<angle>].png, <texture>_c<camera>i.png, ...
 *
 * images = sorted(glob('** /*.png')) (one folder level). Class c selects, among the files of folder
 * int(name) == t + 1, with the original's string tests (reproduced literally, in its order):
 *   - viewpoint (1500 classes): t = c % 250, l = [1, 2, 3, 4, 5, 8][t % 6]; no 'i' in the name and
 *     the first character after the first 'l' is l. The light index comes from the texture, not from
 *     c // 250 as the class count suggests, so classes c, c + 250, ... are the same group six times:
 *     followed as the code computes it;
 *   - illumination (4000): t = c % 250, camera = (c % 1000) // 250 + 1, angle = (c // 1000) * 60; the
 *     second character of the part after the first '_' is the camera; the number after the first 'r'
 *     (up to '.') is the angle, 0 when there is no 'r'; no 'i' in the name;
 *   - temperature (1000): t = c % 250, camera = c // 250 + 1; the camera as above, and the part after
 *     the first '_' contains 'i.' or 'l8.'.
 * Checked (ERR_DATASET_LAYOUT naming the file): folder names are integers; every test the original
 * evaluates can be evaluated (its int() or indexing would fail otherwise); every class has views.
 */
import * as path from 'node:path';
import { endsWith, globOneLevel, layoutError, listSome, parentName, pyInt, pySorted } from './common';
import { RealWorldDataset, ViewGroup } from './types';

export type AlotMode = 'viewpoint' | 'illumination' | 'temperature';

export const ALOT_K: Readonly<Record<AlotMode, number>> = { viewpoint: 16, illumination: 6, temperature: 2 };
export const ALOT_NUM_CLASSES: Readonly<Record<AlotMode, number>> = { viewpoint: 1500, illumination: 4000, temperature: 1000 };
const LIGHTS = [1, 2, 3, 4, 5, 8];

function bad(file: string, why: string): never {
  throw layoutError(`${why}; expected <texture>_c<camera>l<light>[r<angle>].png or <texture>_c<camera>i.png`, file);
}

/** int(name.split('_')[1][1:2]) */
function cameraOf(file: string, name: string): number {
  const parts = name.split('_');
  if (parts.length < 2) bad(file, "no '_' in the file name");
  const v = pyInt(parts[1]!.slice(1, 2));
  if (v === null) bad(file, 'the camera character is not a digit');
  return v;
}

/** The group key of a file for one class, or null when the class does not take it. */
function selects(mode: AlotMode, c: number, file: string): boolean {
  const name = path.basename(file);
  if (mode === 'viewpoint') {
    const t = c % 250;
    const l = LIGHTS[t % 6]!;
    if (name.includes('i')) return false;
    const afterL = name.split('l')[1];
    if (afterL === undefined || afterL.length === 0) bad(file, "no light digit after an 'l'");
    const v = pyInt(afterL[0]!);
    if (v === null) bad(file, "the character after 'l' is not a digit");
    return v === l;
  }
  if (mode === 'illumination') {
    const camera = Math.trunc((c % 1000) / 250), angle = Math.trunc(c / 1000);
    if (cameraOf(file, name) !== camera + 1) return false;
    let a = 0;
    if (name.includes('r')) {
      const v = pyInt(name.split('r')[1]!.split('.')[0]!);
      if (v === null) bad(file, "the text after 'r' is not an angle");
      a = v;
    }
    if (a !== angle * 60) return false;
    return !name.includes('i');
  }
  const camera = Math.trunc(c / 250);
  if (cameraOf(file, name) !== camera + 1) return false;
  const part = name.split('_')[1]!;
  return part.includes('i.') || part.includes('l8.');
}

function label(mode: AlotMode, c: number): string {
  const t = c % 250 + 1;
  if (mode === 'viewpoint') return `${t}/l${LIGHTS[(c % 250) % 6]}`;
  if (mode === 'illumination') return `${t}/c${Math.trunc((c % 1000) / 250) + 1}/r${Math.trunc(c / 1000) * 60}`;
  return `${t}/c${Math.trunc(c / 250) + 1}`;
}

export async function readAlot(root: string, mode: AlotMode): Promise<RealWorldDataset> {
  const images = pySorted(await globOneLevel(root, endsWith('.png'), 'the ALOT images <texture number>/*.png'));
  const byTexture = new Map<number, string[]>();
  for (const p of images) {
    const t = pyInt(parentName(p));
    if (t === null) throw layoutError('the folder name is not an integer; expected <texture number>/*.png', p);
    if (!byTexture.has(t)) byTexture.set(t, []);
    byTexture.get(t)!.push(p);
  }
  const n = ALOT_NUM_CLASSES[mode];
  const groups: ViewGroup[] = [];
  const missing: string[] = [];
  for (let c = 0; c < n; c++) {
    const files = (byTexture.get(c % 250 + 1) ?? []).filter((f) => selects(mode, c, f));
    if (files.length === 0) missing.push(label(mode, c));
    groups.push({ name: label(mode, c), files });
  }
  if (missing.length > 0) {
    throw layoutError(`no views for ${missing.length} of the ${n} ALOT-${mode} classes (${listSome(missing, 8)}); ` +
      'expected textures 1..250 with every camera/light the mode uses', root);
  }
  return { name: `ALOT-${mode}`, root, k: ALOT_K[mode], groups };
}
