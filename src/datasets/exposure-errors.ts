/**
 * ExposureErrors (Afifi et al.) as the original's datasets/exposure_errors.py reads it, root =
 * `<data-root>/ExposureErrors`:
 *
 *     ExposureErrors/GT_IMAGES/a0001-jmac_DSC1459.jpg ...
 *     ExposureErrors/INPUT_IMAGES/a0001-jmac_DSC1459_0.JPG, _N1.5.JPG, _N1.JPG, _P1.5.JPG, _P1.JPG ...
 *
 * One group per ground-truth image (`GT_IMAGES/*.jpg`, lower case): the ground truth, then every
 * `INPUT_IMAGES/*.JPG` (upper case) containing the image id (the name before the first '-').
 * Differences, both deliberate: the original does not sort the globs (file-system order) — here both
 * lists are sorted by path, which changes only the order of groups and views, not the per-group
 * means; and it looks for the id anywhere in the input image's whole path (so an id that occurs in the
 * data-root path would match every image) — here in its file name.
 */
import * as path from 'node:path';
import { endsWith, globFiles, layoutError, pySorted } from './common';
import { RealWorldDataset } from './types';

/** The image id of a ground-truth file (the original's name.split('-')[0]). */
export function exposureImageId(gtPath: string): string {
  return path.basename(gtPath).split('-')[0]!;
}

export async function readExposureErrors(root: string): Promise<RealWorldDataset> {
  const inputs = pySorted(await globFiles(path.join(root, 'INPUT_IMAGES'), endsWith('.JPG'), 'the exposure variants INPUT_IMAGES/<id>-<name>_<exposure>.JPG'));
  const gts = pySorted(await globFiles(path.join(root, 'GT_IMAGES'), endsWith('.jpg'), 'the ground truths GT_IMAGES/<id>-<name>.jpg'));
  if (gts.length === 0) throw layoutError('no .jpg ground truth found; expected GT_IMAGES/<id>-<name>.jpg', path.join(root, 'GT_IMAGES'));
  const groups = gts.map((gt) => {
    const id = exposureImageId(gt);
    return { name: id, files: [gt, ...inputs.filter((p) => path.basename(p).includes(id))] };
  });
  return { name: 'ExposureErrors', root, k: 6, groups };
}
