/**
 * RealBlur (RealBlur-J) as the original's datasets/real_blur.py reads it, root = `<data-root>/RealBlur`:
 *
 *     RealBlur/RealBlur-J_ECC_IMCORR_centroid_itensity_ref/scene001/gt/gt_1.png, .../blur/blur_1.png, ...
 *
 * sharp = sorted(glob('RealBlur-J_.../** /gt/*.png')), blur = sorted(glob('RealBlur-J_.../** /blur/*.png'))
 * (one scene level); group i is (sharp[i], blur[i]). Checked: both lists are non-empty and equally long
 * (the original would index past the end or pair the wrong images), and each pair is from the same scene.
 */
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { endsWith, globDirs, globFiles, layoutError, pySorted } from './common';
import { RealWorldDataset } from './types';

export const REALBLUR_DIR = 'RealBlur-J_ECC_IMCORR_centroid_itensity_ref';

async function list(base: string, sub: 'gt' | 'blur'): Promise<string[]> {
  const out: string[] = [];
  for (const scene of await globDirs(base, `the RealBlur-J scenes <scene>/gt/*.png and <scene>/blur/*.png`)) {
    // A literal component of a glob pattern matches only a directory; scenes without one are skipped.
    const d = path.join(scene, sub);
    const isDir = await fsp.stat(d).then((st) => st.isDirectory(), () => false);
    if (isDir) out.push(...await globFiles(d, endsWith('.png'), `RealBlur ${sub} images`));
  }
  return pySorted(out);
}

export async function readRealBlur(root: string): Promise<RealWorldDataset> {
  const base = path.join(root, REALBLUR_DIR);
  const sharp = await list(base, 'gt');
  const blur = await list(base, 'blur');
  if (sharp.length === 0) throw layoutError('no <scene>/gt/*.png found; expected the RealBlur-J scenes', base);
  if (sharp.length !== blur.length) {
    throw layoutError(`${sharp.length} sharp (gt) and ${blur.length} blurred images; expected one blurred image per sharp one`, base);
  }
  const groups = sharp.map((s, i) => {
    const b = blur[i]!;
    const sceneOf = (p: string): string => path.basename(path.dirname(path.dirname(p)));
    if (sceneOf(s) !== sceneOf(b)) {
      throw layoutError(`sorted position ${i} pairs ${s} with ${b}, from another scene; expected the same images in gt/ and blur/`, b);
    }
    return { name: path.relative(base, s), files: [s, b] };
  });
  return { name: 'RealBlur', root, k: 2, groups };
}
