/**
 * Flickr1024 (stereo pairs) as the original's datasets/flickr1024.py reads it, root =
 * `<data-root>/Flickr1024`:
 *
 *     Flickr1024/Train/0001_L.png, 0001_R.png, ...   (any sub-folder, one level deep)
 *
 * One group per `*_L.png` found by glob('** /*_L.png') (one directory level), holding the left view and
 * `path[:-5] + 'R.png'`. The original does not sort the glob (file-system order); here the groups are
 * sorted by path, which changes only the order of the per-group results, not their means. Checked:
 * at least one pair, and every right view exists.
 */
import * as path from 'node:path';
import { checkFilesExist, endsWith, globOneLevel, layoutError, pySorted } from './common';
import { RealWorldDataset } from './types';

export async function readFlickr1024(root: string): Promise<RealWorldDataset> {
  const lefts = pySorted(await globOneLevel(root, endsWith('_L.png'), 'the Flickr1024 pairs <folder>/<id>_L.png and <id>_R.png'));
  if (lefts.length === 0) throw layoutError('no <folder>/<id>_L.png found; expected Flickr1024 stereo pairs one folder deep', root);
  const groups = lefts.map((l) => ({ name: path.relative(root, l).slice(0, -'_L.png'.length), files: [l, `${l.slice(0, -5)}R.png`] }));
  await checkFilesExist(groups.map((g) => g.files[1]!), 'right views (<id>_R.png)');
  return { name: 'Flickr1024', root, k: 2, groups };
}
